"""The OPC UA connection and binding models, and the ConnectorKind contract."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from connectors.base import ConnectorKind, LinkHealth
from connectors.opcua import KIND, OpcUaBinding, OpcUaConnection
from connectors.opcua.connector import OpcUaConnector

BASE: dict[str, Any] = {"kind": "opcua", "endpoint": "opc.tcp://plc1.local:4840/"}


def test_defaults() -> None:
    """A minimal connection gets the documented defaults."""
    conn = OpcUaConnection.model_validate(BASE)
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
        ({"security_policy": "Basic256Sha256", "security_mode": "Sign"}, "needs certificate and private_key"),
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
    """A secured connection validates; the password stays out of reprs."""
    conn = OpcUaConnection.model_validate(
        BASE
        | {
            "security_policy": "Aes128_Sha256_RsaOaep",
            "security_mode": "SignAndEncrypt",
            "certificate": "client.der",
            "private_key": "client.pem",
            "username": "op",
            "password": "hunter2",
        }
    )
    assert conn.password is not None and conn.password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(conn)
    assert conn.security_string() == "Aes128Sha256RsaOaep,SignAndEncrypt,client.der,client.pem"
    with_server = conn.model_copy(update={"server_certificate": "server.der"})
    assert (
        with_server.security_string() == "Aes128Sha256RsaOaep,SignAndEncrypt,client.der,client.pem,server.der"
    )
    assert OpcUaConnection.model_validate(BASE).security_string() is None


def test_security_paths_without_commas() -> None:
    """asyncua's security string is comma-separated, so paths with commas are refused at load."""
    secured = {"security_policy": "Basic256Sha256", "security_mode": "Sign", "private_key": "k.pem"}
    with pytest.raises(ValidationError, match="must not contain ','"):
        OpcUaConnection.model_validate(BASE | secured | {"certificate": "a,b.der"})


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
