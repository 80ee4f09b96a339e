"""Config models: connection defaults and limits, binding validation against the data type."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from connectors.base import ConnectorKind
from connectors.modbus.config import ModbusBinding, ModbusConnection, validate_binding
from connectors.modbus.connector import create
from connectors.modbus.kind import KIND


def test_connection_defaults() -> None:
    """Only kind and host are required; defaults match the documented ones."""
    conn = ModbusConnection.model_validate({"kind": "modbus", "host": "10.0.0.5"})
    assert (conn.transport, conn.port, conn.timeout, conn.retries, conn.poll_interval) == (
        "tcp",
        502,
        1.0,
        0,
        1.0,
    )
    assert (conn.addressing, conn.max_registers_per_request, conn.max_bits_per_request, conn.max_gap) == (
        0,
        125,
        2000,
        10,
    )
    assert (conn.pause_between_requests, conn.reconnect_initial, conn.reconnect_max) == (0, 0.5, 30)


@pytest.mark.parametrize(
    "extra",
    [
        {"hostname": "x"},  # unknown key
        {"max_registers_per_request": 126},
        {"max_registers_per_request": 0},
        {"max_bits_per_request": 2001},
        {"addressing": 2},
        {"transport": "rtu"},
        {"port": 0},
        {"reconnect_initial": 5, "reconnect_max": 1},
    ],
)
def test_connection_rejects(extra: dict[str, Any]) -> None:
    """Unknown keys and out-of-range limits are config errors."""
    with pytest.raises(ValidationError):
        ModbusConnection.model_validate({"kind": "modbus", "host": "h", **extra})


def test_connection_schema_has_descriptions() -> None:
    """Every field but the kind literal documents itself for the editors' JSON schema."""
    props = ModbusConnection.model_json_schema()["properties"]
    assert {k for k, v in props.items() if not v.get("description")} == {"kind"}
    assert all(v.get("description") for v in ModbusBinding.model_json_schema()["properties"].values())


def test_kind_registration() -> None:
    """KIND wires the models and the factory."""
    assert isinstance(KIND, ConnectorKind)
    assert (KIND.name, KIND.connection_model, KIND.validate_binding, KIND.create) == (
        "modbus",
        ModbusConnection,
        validate_binding,
        create,
    )


@pytest.mark.parametrize(
    ("data_type", "raw", "count"),
    [
        ("uint16", {"address": 0}, 1),
        ("int32", {"address": 0}, 2),
        ("float32", {"address": 0, "count": 2}, 2),
        ("float64", {"address": 0}, 4),
        ("uint64", {"address": 0}, 4),
        ("bool", {"address": 0, "table": "coil"}, 1),
        ("bool", {"address": 3, "bit": 7}, 1),
        ("bool", {"address": 3}, 1),  # whole register: non-zero is True
        ("string", {"address": 0, "count": 8}, 8),
        ("raw", {"address": 0, "count": 3, "byte_order": "BADC"}, 3),
    ],
)
def test_valid_bindings_get_a_count(data_type: Any, raw: dict[str, Any], count: int) -> None:
    """Fixed-width types derive their register count."""
    binding = validate_binding(raw, data_type)
    assert binding.count == count
    assert binding.words == count


def test_binding_defaults() -> None:
    """Holding register, unit 1, big-endian, no scaling, read-only."""
    b = validate_binding({"address": 7}, "int16")
    assert (b.table, b.unit_id, b.byte_order, b.bit, b.scale, b.offset, b.writable) == (
        "holding",
        1,
        "ABCD",
        None,
        1.0,
        0.0,
        False,
    )


@pytest.mark.parametrize(
    ("data_type", "raw", "fragments"),
    [
        ("float32", {"address": 0, "count": 3}, ["float32", "exactly 2 registers", "count is 3"]),
        ("int16", {"address": 0, "count": 2}, ["int16", "exactly 1 register", "count is 2"]),
        ("string", {"address": 0}, ["string", "count"]),
        ("raw", {"address": 0}, ["raw", "count"]),
        ("int16", {"address": 0, "table": "coil"}, ["coil", "bool", "int16"]),
        ("float32", {"address": 0, "table": "discrete"}, ["discrete", "bool"]),
        ("uint16", {"address": 0, "bit": 3}, ["bit", "bool", "uint16"]),
        ("bool", {"address": 0, "table": "coil", "bit": 3}, ["bit", "coil"]),
        ("bool", {"address": 0, "table": "coil", "byte_order": "DCBA"}, ["byte_order", "coil"]),
        ("int16", {"address": 0, "table": "input", "writable": True}, ["read-only", "input"]),
        ("bool", {"address": 0, "table": "discrete", "writable": True}, ["read-only"]),
        ("bool", {"address": 0, "bit": 2, "writable": True}, ["bit", "not supported"]),
        ("bool", {"address": 0, "scale": 2}, ["scale", "bool"]),
        ("string", {"address": 0, "count": 2, "offset": 1}, ["scale", "string"]),
        ("int16", {"address": 0, "scale": 0}, ["scale", "0"]),
        ("string", {"address": 0, "count": 2, "byte_order": "CDAB"}, ["ABCD or BADC"]),
        ("datetime", {"address": 0}, ["datetime"]),
        ("bytes", {"address": 0}, ["raw"]),
        ("float64", {"address": 65534}, ["65535"]),
        ("int16", {"address": -1}, ["address"]),
        ("int16", {"address": 0, "unit_id": 256}, ["unit_id"]),
        ("int16", {"address": 0, "bit": 16}, ["bit"]),
        ("int16", {"address": 0, "byte_order": "ABDC"}, ["byte_order"]),
        ("int16", {"address": 0, "register": 5}, ["register"]),  # unknown key
        ("int16", {}, ["address"]),
    ],
)
def test_binding_errors_are_clear(data_type: Any, raw: dict[str, Any], fragments: list[str]) -> None:
    """Nonsense combinations raise ValidationError with a message naming what is wrong."""
    with pytest.raises(ValidationError) as info:
        validate_binding(raw, data_type)
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text


def test_binding_error_locations_are_prefixable() -> None:
    """Field errors carry their key, so the loader can prefix the signal's path."""
    with pytest.raises(ValidationError) as info:
        validate_binding({"address": 0, "unit_id": 999}, "int16")
    assert info.value.errors()[0]["loc"] == ("unit_id",)


def test_binding_needs_the_data_type_context() -> None:
    """Validating without the signal's data type is a programming error, reported as such."""
    with pytest.raises(ValidationError, match="data_type"):
        ModbusBinding.model_validate({"address": 0})


# ---- transports ---------------------------------------------------------------------------------


def test_rtu_connection_defaults() -> None:
    """A serial line needs only its port: 19200 baud, 8 data bits, even parity, 1 stop bit."""
    conn = ModbusConnection.model_validate(
        {"kind": "modbus", "transport": "rtu", "serial_port": "/dev/ttyUSB0"}
    )
    assert (conn.baudrate, conn.bytesize, conn.parity, conn.stopbits) == (19200, 8, "E", 1)
    assert conn.host is None
    assert conn.endpoint == "/dev/ttyUSB0 19200 8E1"


def test_rtu_over_tcp_is_a_tcp_transport() -> None:
    """A serial gateway is addressed like a TCP device."""
    conn = ModbusConnection.model_validate(
        {"kind": "modbus", "transport": "rtu_over_tcp", "host": "gw", "port": 4001}
    )
    assert conn.endpoint == "gw:4001"


@pytest.mark.parametrize(
    ("fields", "fragments"),
    [
        ({}, ["transport 'tcp' needs 'host'"]),
        ({"transport": "rtu_over_tcp"}, ["needs 'host'"]),
        ({"host": "h", "serial_port": "/dev/ttyS0"}, ["serial_port: only for transport 'rtu', not 'tcp'"]),
        ({"transport": "rtu_over_tcp", "host": "h", "baudrate": 9600}, ["baudrate", "set on the gateway"]),
        ({"transport": "rtu"}, ["transport 'rtu' needs 'serial_port'"]),
        ({"transport": "rtu", "serial_port": "/dev/ttyS0", "host": "h"}, ["host: only for transports"]),
        ({"transport": "rtu", "serial_port": "/dev/ttyS0", "port": 502}, ["port: only for transports"]),
        ({"transport": "rtu", "serial_port": "/dev/ttyS0", "bytesize": 7}, ["8 data bits", "ASCII"]),
        ({"transport": "rtu", "serial_port": "/dev/ttyS0", "parity": "X"}, ["parity"]),
        ({"transport": "rtu", "serial_port": "/dev/ttyS0", "stopbits": 3}, ["stopbits"]),
        ({"transport": "rtu", "serial_port": "/dev/ttyS0", "baudrate": 50}, ["baudrate"]),
        ({"transport": "ascii", "host": "h"}, ["transport"]),
        ({"host": "h", "readable_ranges": [{"start": 10, "end": 5}]}, ["end (5) is before its start (10)"]),
        ({"host": "h", "addressing": 1, "readable_ranges": [{"start": 0, "end": 5}]}, ["1-based"]),
        ({"host": "h", "readable_ranges": [{"start": 0, "end": 5, "table": "eeprom"}]}, ["table"]),
        ({"host": "h", "poll_groups": {"default": 1}}, ["'default' is the one of poll_interval"]),
        ({"host": "h", "poll_groups": {"fast": 0}}, ["must be > 0"]),
        ({"host": "h", "poll_groups": {"Fast": 1}}, ["poll_groups"]),
        ({"host": "h", "pause_after_connect": -1}, ["pause_after_connect"]),
    ],
)
def test_transport_settings_are_checked_together(fields: dict[str, Any], fragments: list[str]) -> None:
    """Settings of another transport, or missing ones, are errors that say which key and why."""
    with pytest.raises(ValidationError) as info:
        ModbusConnection.model_validate({"kind": "modbus", **fields})
    for fragment in fragments:
        assert fragment in str(info.value)


def test_readable_ranges_and_poll_groups_parse() -> None:
    """Ranges default to holding registers of every unit; groups are names with intervals."""
    conn = ModbusConnection.model_validate(
        {
            "kind": "modbus",
            "host": "h",
            "readable_ranges": [
                {"start": 0, "end": 99},
                {"unit_id": 2, "table": "input", "start": 0, "end": 9},
            ],
            "poll_groups": {"fast": 0.2, "slow": 10},
        }
    )
    assert [(r.unit_id, r.table, r.start, r.end) for r in conn.readable_ranges] == [
        (None, "holding", 0, 99),
        (2, "input", 0, 9),
    ]
    assert conn.poll_groups == {"fast": 0.2, "slow": 10.0}


# ---- value maps and poll groups on bindings -------------------------------------------------------


def test_value_map_keys_from_yaml() -> None:
    """YAML may give quoted keys, or false/true for a bool; all become raw integers."""
    assert validate_binding(
        {"address": 0, "value_map": {"0": "stopped", "1": "running"}}, "uint16"
    ).value_map == {
        0: "stopped",
        1: "running",
    }
    b = validate_binding({"address": 0, "table": "coil", "value_map": {False: "off", True: "on"}}, "bool")
    assert b.value_map == {0: "off", 1: "on"}
    assert validate_binding({"address": 0, "value_map": {-1: "fault"}}, "int16").value_map == {-1: "fault"}


@pytest.mark.parametrize(
    ("data_type", "raw", "fragments"),
    [
        ("float32", {"address": 0, "value_map": {0: "a"}}, ["value_map", "float32"]),
        ("string", {"address": 0, "count": 2, "value_map": {0: "a"}}, ["value_map", "string"]),
        ("uint16", {"address": 0, "value_map": {0: "a"}, "scale": 0.1}, ["value_map", "scale"]),
        ("uint16", {"address": 0, "value_map": {-1: "a"}}, ["[-1]", "uint16"]),
        ("bool", {"address": 0, "table": "coil", "value_map": {2: "x"}}, ["[2]", "bool"]),
        ("uint16", {"address": 0, "value_map": {}}, ["empty"]),
        ("uint16", {"address": 0, "value_map": {0: ""}}, ["value_map"]),
        (
            "uint16",
            {"address": 0, "writable": True, "value_map": {0: "off", 1: "off"}},
            ["'off'", "ambiguous"],
        ),
        ("uint16", {"address": 0, "poll_group": "Fast!"}, ["poll_group"]),
    ],
)
def test_value_map_and_group_errors(data_type: Any, raw: dict[str, Any], fragments: list[str]) -> None:
    """Value maps fit integer states only; names must be usable for writes."""
    with pytest.raises(ValidationError) as info:
        validate_binding(raw, data_type)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_duplicate_names_are_fine_when_read_only() -> None:
    """Several raw codes may share one name (e.g. two running modes) on a read-only signal."""
    b = validate_binding({"address": 0, "value_map": {3: "running", 5: "running"}}, "uint16")
    assert b.group == "default"
