"""MqttSettings: defaults, validation at load, secrets never printed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from exporters.mqtt.settings import MqttSettings


def test_defaults() -> None:
    """QoS 1, prefix 'parklink', UNS JSON only, a bounded on-disk queue."""
    settings = MqttSettings()
    assert (settings.qos, settings.topic_prefix, settings.payloads) == (1, "parklink", ["uns_json"])
    assert settings.store.max_messages > 0 and settings.store.max_age > 0
    assert settings.sparkplug.group_id is None and settings.sparkplug.primary_host_id is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"topic_prefix": "a/+/b"}, "topic_prefix"),
        ({"topic_prefix": "/lead"}, "topic_prefix"),
        ({"topic_prefix": "spBv1.0"}, "Sparkplug"),
        ({"clean_start": False}, "client_id"),
        ({"password": "x"}, "username"),
        ({"payloads": ["uns_json", "uns_json"]}, "twice"),
        ({"payloads": ["csv"]}, "payloads"),
        ({"qos": 3}, "qos"),
        ({"tls": {"cert_file": "c.pem"}}, "key_file"),
        ({"sparkplug": {"edge_node_id": "a/b"}}, "edge_node_id"),
        ({"store": {"max_messages": 0}}, "max_messages"),
        ({"hots": "x"}, "hots"),
    ],
)
def test_rejected(raw: dict[str, object], message: str) -> None:
    """Bad values and unknown keys are errors that name the field."""
    with pytest.raises(ValidationError, match=message):
        MqttSettings.model_validate(raw)


def test_password_is_secret() -> None:
    """The password never shows in repr or dumps."""
    settings = MqttSettings.model_validate({"username": "u", "password": "hunter2"})
    assert "hunter2" not in repr(settings) and "hunter2" not in settings.model_dump_json()
    assert settings.password is not None and settings.password.get_secret_value() == "hunter2"
