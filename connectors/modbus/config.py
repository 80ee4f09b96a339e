"""Config models of the Modbus connector: one connection, and one signal's binding.

Both are validated once, at load, with no I/O. A binding is checked against the signal's data type
(passed as validation context), so a float32 bound to 3 registers, or an int16 bound to a coil, is
a config error with the key path, never a wrong value at runtime.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, model_validator

from connectors.modbus.codec import VARIABLE_WIDTH, ByteOrder, register_count
from models.assets import DataType, Strict

Table = Literal["holding", "input", "coil", "discrete"]
BIT_TABLES = frozenset({"coil", "discrete"})
MAX_REGISTERS = 125  # FC3/FC4 limit (Modbus Application Protocol V1.1b3 §6.3, §6.4)
MAX_BITS = 2000  # FC1/FC2 limit (§6.1, §6.2)

# Types Modbus has no registers for; the message suggests the nearest supported one.
_UNSUPPORTED: dict[str, str] = {
    "datetime": "decode the device's time registers as integers instead",
    "bytes": "use data type 'raw' with a register count",
    "variant": "declare the signal's concrete type",
}


class ModbusConnection(Strict):
    """One Modbus TCP server (a device or a gateway); bindings choose the unit id."""

    kind: Literal["modbus"]
    # RTU and RTU-over-TCP will add "rtu" / "rtu_over_tcp" here (with serial settings), mapping to
    # a pymodbus framer in connector._open_client; the poll loop does not change.
    transport: Literal["tcp"] = Field("tcp", description="link type; only 'tcp' (Modbus TCP) for now")
    host: str = Field(min_length=1, description="host name or IP address of the device or gateway")
    port: int = Field(502, ge=1, le=65535, description="TCP port")
    timeout: float = Field(1.0, gt=0, description="seconds to wait for a connect or a response")
    retries: int = Field(0, ge=0, le=10, description="extra attempts of a request that timed out")
    poll_interval: float = Field(1.0, gt=0, description="seconds between the starts of two polls")
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
    pause_between_requests: float = Field(
        0.0, ge=0, description="seconds to wait between two requests, for slow devices and gateways"
    )
    reconnect_initial: float = Field(0.5, gt=0, description="first reconnect delay, seconds")
    reconnect_max: float = Field(30.0, gt=0, description="longest reconnect delay, seconds")

    @model_validator(mode="after")
    def _delays_ordered(self) -> ModbusConnection:
        if self.reconnect_max < self.reconnect_initial:
            raise ValueError(
                f"reconnect_max ({self.reconnect_max}) must be >= "
                f"reconnect_initial ({self.reconnect_initial})"
            )
        return self


class ModbusBinding(Strict):
    """Where one signal lives on the device and how its registers become a value."""

    table: Table = Field(
        "holding",
        description="holding registers (FC3), input registers (FC4), coils (FC1) or discrete inputs (FC2)",
    )
    address: int = Field(ge=0, le=65535, description="first register or bit, numbered as `addressing` says")
    unit_id: int = Field(
        1, ge=0, le=255, description="Modbus unit (slave) id: 1-247 on serial lines; TCP devices often 255"
    )
    count: int | None = Field(
        None,
        ge=1,
        le=MAX_REGISTERS,
        description="registers; required for string and raw, otherwise derived from the data type",
    )
    byte_order: ByteOrder = Field(
        "ABCD",
        description="ABCD big-endian, CDAB word-swapped, BADC byte-swapped, DCBA little-endian; "
        "for 64-bit types the same letters mean word swap / byte swap",
    )
    bit: int | None = Field(
        None, ge=0, le=15, description="for a bool read from one bit of a register: 0 = least significant"
    )
    scale: float = Field(1.0, description="value = raw * scale + offset (numbers only)")
    offset: float = Field(0.0, description="value = raw * scale + offset (numbers only)")
    writable: bool = Field(False, description="allow writes (holding registers and coils only)")

    @model_validator(mode="before")
    @classmethod
    def _derive_count(cls, data: Any, info: ValidationInfo) -> Any:
        # Fill the register count of fixed-width types so every validated binding has one.
        data_type = (info.context or {}).get("data_type")
        if isinstance(data, dict) and data.get("count") is None:
            derived = register_count(str(data_type))
            if derived is not None:
                return {**data, "count": derived}
        return data

    @model_validator(mode="after")
    def _fits_data_type(self, info: ValidationInfo) -> ModbusBinding:
        data_type = (info.context or {}).get("data_type")
        if data_type is None:
            raise ValueError("internal: validate bindings with context={'data_type': ...}")
        if data_type in _UNSUPPORTED:
            raise ValueError(f"Modbus cannot carry data type {data_type!r}: {_UNSUPPORTED[data_type]}")
        _check_table(self, data_type)
        _check_count(self, data_type)
        _check_options(self, data_type)
        if self.address + self.words > 65536:
            raise ValueError(f"address {self.address} + count {self.words} runs past register 65535")
        return self

    @property
    def words(self) -> int:
        """Registers (or bits, for coils and discrete inputs) this binding reads."""
        return self.count or 1


def _check_table(b: ModbusBinding, data_type: str) -> None:
    if b.table in BIT_TABLES:
        if data_type != "bool":
            raise ValueError(
                f"table {b.table!r} holds single bits: data type must be bool, not {data_type!r}"
            )
        if b.bit is not None:
            raise ValueError(f"'bit' selects a bit of a register; a {b.table} is already one bit")
        if b.byte_order != "ABCD":
            raise ValueError(f"byte_order has no meaning for a {b.table}")
    if b.writable and b.table in ("input", "discrete"):
        raise ValueError(f"table {b.table!r} is read-only in Modbus; only holding and coil can be writable")


def _check_count(b: ModbusBinding, data_type: str) -> None:
    if data_type in VARIABLE_WIDTH:
        if b.count is None:
            raise ValueError(f"data type {data_type!r} needs 'count' (registers, 2 bytes each)")
        return
    expected = register_count(data_type)
    if b.count != expected:
        unit = "bit" if b.table in BIT_TABLES else "register" if expected == 1 else "registers"
        raise ValueError(f"data type {data_type!r} takes exactly {expected} {unit}, but count is {b.count}")


def _check_options(b: ModbusBinding, data_type: str) -> None:
    if b.bit is not None:
        if data_type != "bool":
            raise ValueError(f"'bit' gives a bool; data type must be bool, not {data_type!r}")
        if b.writable:
            # A single-bit write needs read-modify-write or FC22, which devices implement unevenly.
            raise ValueError("writing one bit of a register is not supported; bind the whole register")
    if (b.scale != 1 or b.offset != 0) and (data_type == "bool" or data_type in VARIABLE_WIDTH):
        raise ValueError(f"scale and offset apply to numbers only, not to {data_type!r}")
    if b.scale == 0:
        raise ValueError("scale must not be 0 (writes divide by it)")
    if data_type in VARIABLE_WIDTH and b.byte_order not in ("ABCD", "BADC"):
        raise ValueError(
            f"{data_type!r} is read in address order: byte_order may be ABCD or BADC (byte swap), "
            f"not {b.byte_order}"
        )


def validate_binding(raw: dict[str, Any], data_type: DataType) -> ModbusBinding:
    """Validate one signal's binding against its data type; raises pydantic ValidationError."""
    return ModbusBinding.model_validate(raw, context={"data_type": data_type})
