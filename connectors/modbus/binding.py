"""One signal's binding: where it lives on the device and how its registers become a value.

A binding is validated once, at load, against the signal's data type (passed as validation
context), so a float32 bound to 3 registers, or an int16 bound to a coil, is a config error with the
key path, never a wrong value at runtime. What depends on the connection too (the poll group
exists, the unit id suits the transport) is checked when the connector plans its requests.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationInfo, model_validator

from connectors.modbus.codec import VARIABLE_WIDTH, ByteOrder, register_count
from models.assets import DataType, Strict

Table = Literal["holding", "input", "coil", "discrete"]
BIT_TABLES = frozenset({"coil", "discrete"})
MAX_REGISTERS = 125  # FC3/FC4 limit (Modbus Application Protocol V1.1b3 §6.3, §6.4)
MAX_BITS = 2000  # FC1/FC2 limit (§6.1, §6.2)
GroupName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
DEFAULT_GROUP = "default"

# Types Modbus has no registers for; the message suggests the nearest supported one.
_UNSUPPORTED: dict[str, str] = {
    "datetime": "decode the device's time registers as integers instead",
    "bytes": "use data type 'raw' with a register count",
    "variant": "declare the signal's concrete type",
}
_INTEGER_TYPES = frozenset({"int16", "uint16", "int32", "uint32", "int64", "uint64"})


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
    value_map: dict[int, Annotated[str, StringConstraints(min_length=1)]] | None = Field(
        None,
        description="state names of raw values, e.g. {0: stopped, 1: running}: the sample carries the "
        "name; a raw value not in the map arrives as the number with status Uncertain",
    )
    poll_group: GroupName | None = Field(
        None, description="name of one of the connection's poll_groups; default: every poll_interval"
    )
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
        _check_value_map(self, data_type)
        if self.address + self.words > 65536:
            raise ValueError(f"address {self.address} + count {self.words} runs past register 65535")
        return self

    @property
    def words(self) -> int:
        """Registers (or bits, for coils and discrete inputs) this binding reads."""
        return self.count or 1

    @property
    def group(self) -> str:
        """The poll group this binding is read in."""
        return self.poll_group or DEFAULT_GROUP


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


def _check_value_map(b: ModbusBinding, data_type: str) -> None:
    if b.value_map is None:
        return
    if data_type not in _INTEGER_TYPES and data_type != "bool":
        raise ValueError(f"value_map names integer states; data type {data_type!r} is not an integer or bool")
    if not b.value_map:
        raise ValueError("value_map is empty; leave it out instead")
    if b.scale != 1 or b.offset != 0:
        raise ValueError("value_map maps raw numbers to names: it cannot be combined with scale or offset")
    low, high = (0, 1) if data_type == "bool" else _integer_range(data_type)
    outside = sorted(raw for raw in b.value_map if not low <= raw <= high)
    if outside:
        raise ValueError(f"value_map key(s) {outside} cannot occur in a {data_type} ({low}..{high})")
    if b.writable:
        names = list(b.value_map.values())
        doubles = sorted({n for n in names if names.count(n) > 1})
        if doubles:
            raise ValueError(
                f"value_map names {doubles} stand for several values; a write would be ambiguous"
            )


def _integer_range(data_type: str) -> tuple[int, int]:
    bits = int(data_type.removeprefix("u").removeprefix("int"))
    return (0, 2**bits - 1) if data_type.startswith("u") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def validate_binding(raw: dict[str, Any], data_type: DataType) -> ModbusBinding:
    """Validate one signal's binding against its data type; raises pydantic ValidationError."""
    return ModbusBinding.model_validate(raw, context={"data_type": data_type})
