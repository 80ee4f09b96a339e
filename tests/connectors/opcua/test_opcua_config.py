"""The OPC UA connection and binding models, and the ConnectorKind contract."""

from __future__ import annotations

from typing import Any

import pytest
from asyncua import ua
from pydantic import ValidationError

from connectors.base import ConnectorKind, LinkHealth
from connectors.opcua import KIND, OpcUaBinding, OpcUaConnection
from connectors.opcua.connector import OpcUaConnector

BASE: dict[str, Any] = {"kind": "opcua", "endpoint": "opc.tcp://plc1.local:4840/"}


def test_defaults() -> None:
    """A minimal connection gets the documented defaults."""
    conn = OpcUaConnection.model_validate(BASE)
    assert (conn.discard_oldest, conn.trigger, conn.deadband_type, conn.deadband_value, conn.groups) == (
        True,
        "status_value",
        "none",
        0.0,
        {},
    )
    assert (conn.load_data_types, conn.data_types_timeout) == (True, 10.0)
    assert (conn.timeout, conn.publishing_interval, conn.sampling_interval) == (5.0, 500.0, 250.0)
    assert (conn.queue_size, conn.subscribe_batch_size, conn.mode, conn.poll_interval) == (
        1,
        1000,
        "subscribe",
        1.0,
    )
    assert (conn.reconnect_initial, conn.reconnect_max, conn.watchdog_interval) == (0.5, 30.0, 5.0)
    assert (conn.security_policy, conn.security_mode, conn.username, conn.password) == (
        "None",
        "None",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"endpoint": "http://plc1:4840"}, "must look like 'opc.tcp://"),
        ({"endpoint": "opc.tcp://"}, "must look like"),
        ({"endpoint": "opc.tcp://plc1:99999/"}, "invalid port"),
        ({"kind": "modbus"}, "opcua"),
        ({"publishing_interval": 0}, "greater than 0"),
        ({"subscribe_batch_size": 0}, "greater than or equal to 1"),
        ({"mode": "stream"}, "'subscribe' or 'poll'"),
        ({"reconnect_initial": 5, "reconnect_max": 1}, "reconnect_max must be >= reconnect_initial"),
        ({"security_policy": "Basic256Sha256"}, "both be 'None' or both be set"),
        ({"security_mode": "Sign"}, "both be 'None' or both be set"),
        ({"certificate": "c.der"}, "give certificate and private_key together"),
        ({"user_private_key": "k.pem"}, "give user_certificate and user_private_key together"),
        (
            {"username": "op", "user_certificate": "u.der", "user_private_key": "u.pem"},
            "choose one identity",
        ),
        (
            {"groups": {"default": {"publishing_interval": 100}}},
            "the group 'default' is the connection's own",
        ),
        ({"groups": {"Fast": {}}}, "should match pattern"),
        ({"groups": {"fast": {"publishing_interval": 0}}}, "greater than 0"),
        ({"groups": {"fast": {"publish": 100}}}, "Extra inputs are not permitted"),
        ({"deadband_type": "percent", "deadband_value": 150}, "within 0..100"),
        ({"deadband_type": "absolute"}, "needs a deadband_value > 0"),
        ({"trigger": "value"}, "'status', 'status_value' or 'status_value_timestamp'"),
        ({"security_policy": "Basic128Rsa15", "security_mode": "Sign"}, "security_policy"),
        ({"password": "secret"}, "password given without username"),
        ({"publish_interval": 100}, "Extra inputs are not permitted"),
    ],
)
def test_connection_errors(changes: dict[str, Any], message: str) -> None:
    """Bad connection configs fail at load with a message naming the problem."""
    with pytest.raises(ValidationError, match=message):
        OpcUaConnection.model_validate(BASE | changes)


def test_security_and_secret() -> None:
    """A secured connection needs no certificate files (one is generated); the password stays secret."""
    conn = OpcUaConnection.model_validate(
        BASE
        | {
            "security_policy": "Aes128_Sha256_RsaOaep",
            "security_mode": "SignAndEncrypt",
            "username": "op",
            "password": "hunter2",
        }
    )
    assert conn.password is not None and conn.password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(conn)
    assert (conn.certificate, conn.private_key, conn.pki_dir, conn.trust_dir) == (None, None, None, None)
    given = OpcUaConnection.model_validate(
        BASE
        | {
            "security_policy": "Basic256Sha256",
            "security_mode": "Sign",
            "certificate": "a,b.der",  # any path: asyncua's comma-separated security string is not used
            "private_key": "k.pem",
            "private_key_password": "pw",
        }
    )
    assert given.certificate == "a,b.der" and "pw" not in repr(given)


def test_groups_and_filters() -> None:
    """Groups carry their own intervals; item settings cascade binding > group > connection."""
    from connectors.opcua.groups import plan_groups

    conn = OpcUaConnection.model_validate(
        BASE
        | {
            "queue_size": 5,
            "deadband_type": "absolute",
            "deadband_value": 0.5,
            "groups": {
                "fast": {"publishing_interval": 100, "sampling_interval": 50, "trigger": "status"},
                "slow": {"mode": "poll", "poll_interval": 10},
                "empty": {"publishing_interval": 2000},
            },
        }
    )
    bindings = [
        OpcUaBinding.model_validate({"address": "ns=2;s=a"}),
        OpcUaBinding.model_validate({"address": "ns=2;s=b", "group": "fast", "queue_size": 1}),
        OpcUaBinding.model_validate({"address": "ns=2;s=c", "group": "slow"}),
        OpcUaBinding.model_validate({"address": "ns=2;s=d", "group": "nope"}),
        OpcUaBinding.model_validate({"address": "ns=2;s=e", "group": "fast", "deadband_type": "none"}),
    ]
    groups, unknown = plan_groups(conn, bindings)
    assert [(g.name, g.mode, g.publishing_interval, g.poll_interval, g.slots) for g in groups] == [
        ("default", "subscribe", 500.0, 1.0, [0]),
        ("fast", "subscribe", 100.0, 1.0, [1, 4]),
        ("slow", "poll", 500.0, 10.0, [2]),
    ]
    assert list(unknown) == [3] and "'nope' is not declared" in unknown[3] and "fast" in unknown[3]
    default, fast, _ = groups
    assert (default.params[0].queue_size, default.params[0].trigger, default.params[0].sampling_interval) == (
        5,
        "status_value",
        250.0,
    )
    first, second = fast.params
    assert (first.queue_size, first.trigger, first.sampling_interval, first.deadband_type) == (
        1,
        "status",
        50.0,
        "absolute",
    )
    flt = first.data_change_filter()
    assert flt is not None and flt.Trigger == ua.DataChangeTrigger.Status
    assert flt.DeadbandType == ua.DeadbandType.Absolute and flt.DeadbandValue == 0.5
    assert second.deadband_type == "none"
    plain = plan_groups(OpcUaConnection.model_validate(BASE), bindings[:1])[0][0].params[0]
    assert plain.data_change_filter() is None  # the server's default: no filter sent


def test_schema_has_descriptions() -> None:
    """Every connection field is described in the JSON schema editors use."""
    properties = OpcUaConnection.model_json_schema()["properties"]
    assert [name for name, spec in properties.items() if name != "kind" and not spec.get("description")] == []
    assert "description" in OpcUaBinding.model_json_schema()["properties"]["address"]


@pytest.mark.parametrize(
    "raw",
    [
        {"address": "ns=2;s=mill1.State"},
        {"address": "ns=2;i=1042", "sampling_interval": 100},
        {"address": "nsu=urn:parklink:demo;s=mill1.TargetSpeed", "writable": True},
        {"address": "i=2258"},
        {"address": "/2:Machines/2:mill1/2:State"},
        {"address": "nsu=urn:parklink:demo;/Machines/mill1/State", "group": "fast"},
        {
            "address": "ns=2;s=a",
            "trigger": "status_value_timestamp",
            "queue_size": 10,
            "discard_oldest": False,
        },
        {"address": "ns=2;s=a", "deadband_type": "percent", "deadband_value": 2.5},
    ],
)
def test_binding_valid(raw: dict[str, Any]) -> None:
    """Each node id form is accepted by the kind's validate_binding."""
    binding = KIND.validate_binding(raw, "float64")
    assert isinstance(binding, OpcUaBinding)
    assert binding.address == raw["address"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"address": "mill1.State"}, "malformed: write it as 'ns=<index>;s=<name>'"),
        ({"address": "/2:Machines//2:State"}, "empty segment"),
        ({"address": "ns=2;s=a", "group": "Fast Lane"}, "should match pattern"),
        ({"address": "ns=2;s=a", "deadband_type": "percent", "deadband_value": 101}, "within 0..100"),
        ({"address": "ns=2;s=a", "queue_size": 0}, "greater than or equal to 1"),
        ({"address": "ns=2;i=x"}, "must be a number"),
        ({}, "address"),
        ({"address": "ns=2;s=a", "register": 5}, "Extra inputs are not permitted"),
        ({"address": "ns=2;s=a", "sampling_interval": -1}, "greater than or equal to 0"),
    ],
)
def test_binding_errors(raw: dict[str, Any], message: str) -> None:
    """Malformed bindings raise pydantic's ValidationError, so the caller can prefix the path."""
    with pytest.raises(ValidationError, match=message):
        KIND.validate_binding(raw, "float64")


def test_kind_contract() -> None:
    """KIND registers the name, model, validator and a factory that does no I/O."""
    assert isinstance(KIND, ConnectorKind)
    assert KIND.name == "opcua"
    assert KIND.connection_model is OpcUaConnection
    connector = KIND.create(OpcUaConnection.model_validate(BASE), [], LinkHealth("plc", "opcua", "acme"))
    assert isinstance(connector, OpcUaConnector)


def test_explain() -> None:
    """explain lists each group's Subscription or poll loop, the item settings and every node id."""
    from connectors.base import BoundSignal

    conn = OpcUaConnection.model_validate(
        BASE
        | {
            "security_policy": "Basic256Sha256",
            "security_mode": "SignAndEncrypt",
            "username": "op",
            "subscribe_batch_size": 2,
            "groups": {"fast": {"publishing_interval": 100}, "slow": {"mode": "poll", "poll_interval": 5}},
        }
    )
    raws: list[dict[str, Any]] = [
        {"address": "ns=2;s=a"},
        {"address": "ns=2;s=b", "group": "fast", "deadband_type": "absolute", "deadband_value": 0.5},
        {"address": "ns=2;s=c", "group": "fast"},
        {"address": "ns=2;s=d", "group": "fast"},
        {"address": "/2:Plant/2:e", "group": "slow", "writable": True},
        {"address": "ns=2;s=f", "group": "nope"},
    ]
    signals = [
        BoundSignal(i, f"acme/s/l/m/{i}", "float64", KIND.validate_binding(raw, "float64"))
        for i, raw in enumerate(raws)
    ]
    assert KIND.explain is not None
    text = KIND.explain(conn, signals)
    lines = text.splitlines()
    assert lines[0] == (
        "opc.tcp://plc1.local:4840/: security Basic256Sha256/SignAndEncrypt, identity user 'op', one session"
    )
    assert "browse paths are translated to node ids at every connect" in lines
    assert (
        "subscription 'default': publishing interval 500 ms, 1 monitored item in "
        "1 CreateMonitoredItems call, keep-alive every 5 s"
    ) in lines
    assert (
        "subscription 'fast': publishing interval 100 ms, 3 monitored items in 2 CreateMonitoredItems calls, "
        "keep-alive every 5 s"
    ) in lines
    assert "  items: sampling 250 ms, queue 1" in lines
    assert "  ns=2;s=b  -> acme/s/l/m/1  [sampling 250 ms, queue 1, absolute deadband 0.5]" in lines
    assert "  ns=2;s=c  -> acme/s/l/m/2" in lines
    assert "poll group 'slow': every 5 s, 1 node in 1 Read per poll" in lines
    assert "  /2:Plant/2:e  -> acme/s/l/m/4  (writable)" in lines
    assert lines[-1].startswith("NOT READ: acme/s/l/m/5: group 'nope' is not declared")
