"""Config model of one Modbus connection: the link (TCP, RTU on a serial line, RTU over TCP), its
timing, its request limits, the device's readable ranges and the poll groups.

Validated once, at load, with no I/O. Settings that only make sense for one transport are errors on
the others ("serial_port applies to transport 'rtu' only"), so a copied block never half-works.
The binding model lives in `binding.py` and is re-exported here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from connectors.modbus.binding import (
    BIT_TABLES,
    DEFAULT_GROUP,
    MAX_BITS,
    MAX_REGISTERS,
    GroupName,
    ModbusBinding,
    Table,
    validate_binding,
)
from models.assets import Strict

Transport = Literal["tcp", "rtu", "rtu_over_tcp"]
TCP_TRANSPORTS = frozenset({"tcp", "rtu_over_tcp"})
_TCP_KEYS = ("host", "port")
_SERIAL_KEYS = ("serial_port", "baudrate", "parity", "stopbits", "bytesize")


class ReadableRange(Strict):
    """Addresses the device answers for: requests may read unbound registers only inside these."""

    unit_id: int | None = Field(None, ge=0, le=255, description="unit the range is on; default: every unit")
    table: Table = Field("holding", description="holding, input, coil or discrete")
    start: int = Field(ge=0, le=65536, description="first readable address, numbered as `addressing` says")
    end: int = Field(ge=0, le=65536, description="last readable address (inclusive)")

    @model_validator(mode="after")
    def _ordered(self) -> ReadableRange:
        if self.end < self.start:
            raise ValueError(f"readable range end ({self.end}) is before its start ({self.start})")
        return self


class ModbusConnection(Strict):
    """One Modbus link: a TCP device or gateway, or a serial RTU bus; bindings choose the unit id."""

    kind: Literal["modbus"]
    transport: Transport = Field(
        "tcp",
        description="tcp (Modbus TCP), rtu (RTU on a serial line), rtu_over_tcp (RTU frames through a "
        "TCP serial gateway)",
    )
    host: str | None = Field(
        None, min_length=1, description="tcp, rtu_over_tcp: host name or IP address of the device or gateway"
    )
    port: int = Field(502, ge=1, le=65535, description="tcp, rtu_over_tcp: TCP port")
    serial_port: str | None = Field(
        None, min_length=1, description="rtu: serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/..."
    )
    baudrate: int = Field(19200, ge=300, le=4_000_000, description="rtu: bits per second")
    parity: Literal["N", "E", "O"] = Field("E", description="rtu: N none, E even (Modbus default), O odd")
    stopbits: Literal[1, 2] = Field(1, description="rtu: stop bits")
    bytesize: int = Field(8, ge=7, le=8, description="rtu: data bits; Modbus RTU needs 8")
    timeout: float = Field(1.0, gt=0, description="seconds to wait for a connect or a response")
    retries: int = Field(0, ge=0, le=10, description="extra attempts of a request that timed out")
    poll_interval: float = Field(1.0, gt=0, description="seconds between the starts of two polls")
    poll_groups: dict[GroupName, float] = Field(
        default_factory=dict,
        description="named poll intervals in seconds, e.g. {fast: 0.2, slow: 10}; a binding joins one "
        "with `poll_group`, the others are polled every poll_interval",
    )
    addressing: Literal[0, 1] = Field(
        0, description="0 if binding addresses are wire addresses (0-based), 1 if 1-based as in many manuals"
    )
    max_registers_per_request: int = Field(
        MAX_REGISTERS, ge=1, le=MAX_REGISTERS, description="registers per read request (FC3/FC4)"
    )
    max_bits_per_request: int = Field(
        MAX_BITS, ge=1, le=MAX_BITS, description="coils or discrete inputs per read request (FC1/FC2)"
    )
    max_gap: int = Field(
        10,
        ge=0,
        description="unused registers (or bits) one request may read to bridge two bound ranges; "
        "0 if the device rejects reads of unmapped addresses",
    )
    readable_ranges: list[ReadableRange] = Field(
        default_factory=list,
        description="address ranges the device answers for; where a unit's table has ranges, gaps are "
        "bridged only inside them",
    )
    pause_between_requests: float = Field(
        0.0,
        ge=0,
        description="seconds from one answer to the next request; on rtu at least 3.5 character times",
    )
    pause_after_connect: float = Field(
        0.0, ge=0, description="seconds to wait after connecting before the first request"
    )
    reconnect_initial: float = Field(0.5, gt=0, description="first reconnect delay, seconds")
    reconnect_max: float = Field(30.0, gt=0, description="longest reconnect delay, seconds")

    @model_validator(mode="after")
    def _consistent(self) -> ModbusConnection:
        if self.reconnect_max < self.reconnect_initial:
            raise ValueError(
                f"reconnect_max ({self.reconnect_max}) must be >= "
                f"reconnect_initial ({self.reconnect_initial})"
            )
        _check_transport(self)
        for name, interval in self.poll_groups.items():
            if name == DEFAULT_GROUP:
                raise ValueError("poll group 'default' is the one of poll_interval; choose another name")
            if not interval > 0:
                raise ValueError(f"poll group {name!r}: interval must be > 0 seconds, not {interval}")
        for r in self.readable_ranges:
            if r.start < self.addressing:
                raise ValueError(f"readable range start {r.start} does not exist with 1-based addressing")
            if r.end - self.addressing > 65535:
                raise ValueError(f"readable range end {r.end} is past the last address")
        return self

    @property
    def endpoint(self) -> str:
        """Where the link goes, for messages: 'host:port' or the serial port with its settings."""
        if self.transport == "rtu":
            return f"{self.serial_port} {self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"
        return f"{self.host}:{self.port}"


def _check_transport(c: ModbusConnection) -> None:
    given = c.model_fields_set
    if c.transport in TCP_TRANSPORTS:
        if c.host is None:
            raise ValueError(f"transport {c.transport!r} needs 'host' (and 'port', default 502)")
        wrong = [k for k in _SERIAL_KEYS if k in given]
        if wrong:
            hint = " (the gateway's serial settings are set on the gateway)" if c.transport != "tcp" else ""
            raise ValueError(f"{', '.join(wrong)}: only for transport 'rtu', not {c.transport!r}{hint}")
        return
    if c.serial_port is None:
        raise ValueError("transport 'rtu' needs 'serial_port', e.g. /dev/ttyUSB0")
    wrong = [k for k in _TCP_KEYS if k in given]
    if wrong:
        raise ValueError(f"{', '.join(wrong)}: only for transports 'tcp' and 'rtu_over_tcp', not 'rtu'")
    if c.bytesize != 8:
        raise ValueError("Modbus RTU frames need 8 data bits (7 is for Modbus ASCII, which is not supported)")


__all__ = [
    "BIT_TABLES",
    "MAX_BITS",
    "MAX_REGISTERS",
    "TCP_TRANSPORTS",
    "ModbusBinding",
    "ModbusConnection",
    "ReadableRange",
    "Table",
    "Transport",
    "validate_binding",
]
