"""Fixtures: a small park, settings isolated per test on the shared Mosquitto, a private Mosquitto."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from exporters.mqtt.settings import MqttSettings
from models.assets import DataType
from models.park import AssetRef, Park, SignalRef
from tests.brokers import HOST, PORT, PrivateBroker, broker, private_broker

__all__ = ["HOST", "PORT", "PrivateBroker", "broker", "private_broker"]  # fixtures for this folder

# (name, data type) of every asset's signals, in index order per asset
SIGNALS: list[tuple[str, DataType]] = [("state", "int16"), ("temperature", "float64"), ("good", "uint32")]


def make_park(assets: int = 2) -> Park:
    """Park 'p', company acme, site north; asset m0 sits in area 'hall', the others directly on the site."""
    refs = [
        AssetRef("acme", "north", "hall" if i == 0 else "", "l1", f"m{i}", f"Machine {i}", "t", "c", None)
        for i in range(assets)
    ]
    signals = [
        SignalRef(i * len(SIGNALS) + j, ref, name, None, "", data_type, None)
        for i, ref in enumerate(refs)
        for j, (name, data_type) in enumerate(SIGNALS)
    ]
    return Park("p", "Park", {"acme": "Acme"}, {("acme", "north"): "UTC"}, refs, signals, [])


@pytest.fixture
def park() -> Park:
    return make_park()


def settings_for(port: int, tmp_path: Path, **overrides: Any) -> MqttSettings:
    """Settings with a prefix, group and client id of their own, so parallel runs never cross."""
    token = secrets.token_hex(4)
    raw: dict[str, Any] = {
        "host": HOST,
        "port": port,
        "topic_prefix": f"pltest-{token}",
        "retain": False,  # nothing left behind on the shared broker
        "client_id": f"pltest-{token}",
        "flush_interval": 0.02,
        "keepalive": 5,
        "store": {"path": str(tmp_path / f"queue-{token}.sqlite")},
        "reconnect": {"initial": 0.05, "cap": 0.3},
        "sparkplug": {"group_id": f"g-{token}", "edge_node_id": "edge1", "publish_interval": 0.02},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return MqttSettings.model_validate(raw)
