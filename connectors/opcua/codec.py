"""Pure conversions between asyncua's types and parklink's: node ids, DataValues, written values.

No I/O here. Everything the connector does with a value passes through these functions, so they
are table-driven and unit-tested on their own (OPC 10000-6 §5.1 for the built-in types, §5.3.1.10
for the node id string format).
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

from asyncua import ua

from models.sample import Value
from models.status import (
    BAD_DATA_TYPE_ID_UNKNOWN,
    BAD_OUT_OF_RANGE,
    BAD_TYPE_MISMATCH,
    GOOD,
)

# ---------------------------------------------------------------------------------------------
# Node ids

IdKind = Literal["i", "s", "g", "b"]

_NODE_ID = re.compile(r"^(?:ns=(?P<ns>\d+);|nsu=(?P<nsu>[^;]+);)?(?P<kind>[isgb])=(?P<ident>.+)$", re.DOTALL)
NODE_ID_FORMS = (
    "'ns=<index>;s=<name>', 'ns=<index>;i=<number>', 'nsu=<namespace uri>;s=<name>' or 'i=<number>'"
)


def make_node_id(
    identifier: int | str | uuid.UUID | bytes, namespace: int = 0, kind: ua.NodeIdType | None = None
) -> ua.NodeId:
    """ua.NodeId from plain Python values (asyncua annotates its fields with marker subclasses)."""
    new: Any = ua.NodeId
    return cast(ua.NodeId, new(identifier, namespace, kind))


@dataclass(frozen=True, slots=True)
class NodeAddress:
    """A parsed node id; the namespace is an index or a URI resolved at connect time."""

    kind: IdKind
    identifier: int | str | uuid.UUID | bytes
    namespace_index: int = 0
    namespace_uri: str | None = None

    def resolve(self, namespaces: list[str] | None = None) -> ua.NodeId:
        """The asyncua NodeId; a URI namespace is looked up in the server's NamespaceArray."""
        index = self.namespace_index
        if self.namespace_uri is not None:
            if namespaces is None or self.namespace_uri not in namespaces:
                raise LookupError(f"namespace {self.namespace_uri!r} is not on the server")
            index = namespaces.index(self.namespace_uri)
        return make_node_id(self.identifier, index, _ID_TYPES[self.kind])


_ID_TYPES = {
    "i": ua.NodeIdType.Numeric,
    "s": ua.NodeIdType.String,
    "g": ua.NodeIdType.Guid,
    "b": ua.NodeIdType.ByteString,
}


def parse_node_id(text: str) -> NodeAddress:
    """Parse the OPC UA string form of a node id; ValueError with the accepted forms if malformed."""
    match = _NODE_ID.match(text.strip())
    if match is None:
        raise ValueError(f"node id {text!r} is malformed: write it as {NODE_ID_FORMS}")
    kind = cast(IdKind, match["kind"])  # the regex only admits these four
    raw = match["ident"]
    identifier: int | str | uuid.UUID | bytes
    try:
        if kind == "i":
            identifier = int(raw, 10)
            if not 0 <= identifier <= 0xFFFFFFFF:
                raise ValueError
        elif kind == "g":
            identifier = uuid.UUID(raw)
        elif kind == "b":
            identifier = base64.b64decode(raw, validate=True)
        else:
            identifier = raw
    except (ValueError, binascii.Error):
        what = {"i": "a number 0..4294967295", "g": "a GUID", "b": "base64", "s": "text"}[kind]
        raise ValueError(f"node id {text!r}: the identifier after '{kind}=' must be {what}") from None
    if match["ns"] is not None:
        index = int(match["ns"])
        if index > 0xFFFF:
            raise ValueError(f"node id {text!r}: namespace index must be 0..65535")
        return NodeAddress(kind, identifier, namespace_index=index)
    return NodeAddress(kind, identifier, namespace_uri=match["nsu"])


# ---------------------------------------------------------------------------------------------
# Reading: DataValue -> (value, status, source_time, server_time)

Decoded = tuple[Value, int, float, float]


def posix(when: datetime) -> float:
    """POSIX seconds of a datetime; naive datetimes are UTC, as OPC UA DateTime always is."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _timestamp(when: datetime | None, default: float) -> float:
    # The binary decoder returns 1601-01-01 for "no time" (DateTime 0); treat it as missing.
    if when is None or when.year < 1971:
        return default
    return posix(when)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


_UNSUPPORTED = object()

# How each built-in type (OPC 10000-6 §5.1.2) becomes a parklink Value. `None`: already a Python
# scalar of the right kind, passed as is (the common case, kept free of a function call).
_DECODERS: dict[ua.VariantType, Callable[[Any], Any] | None] = {
    ua.VariantType.Null: None,
    ua.VariantType.Boolean: None,
    ua.VariantType.SByte: None,
    ua.VariantType.Byte: None,
    ua.VariantType.Int16: None,
    ua.VariantType.UInt16: None,
    ua.VariantType.Int32: None,
    ua.VariantType.UInt32: None,
    ua.VariantType.Int64: None,
    ua.VariantType.UInt64: None,
    ua.VariantType.Float: None,
    ua.VariantType.Double: None,
    ua.VariantType.String: None,
    ua.VariantType.ByteString: lambda v: None if v is None else bytes(v),
    ua.VariantType.DateTime: lambda v: None if v is None else posix(v),
    ua.VariantType.Guid: _text,
    ua.VariantType.XmlElement: _text,
    ua.VariantType.NodeId: lambda v: v.to_string(),
    ua.VariantType.ExpandedNodeId: lambda v: v.to_string(),
    ua.VariantType.StatusCode: lambda v: int(v.value),
    ua.VariantType.QualifiedName: lambda v: v.to_string(),
    ua.VariantType.LocalizedText: lambda v: v.Text,
    # ExtensionObject, DataValue, Variant, DiagnosticInfo: structures parklink has no Value for.
}


def decode_variant(variant: ua.Variant | None) -> tuple[Value, int]:
    """A Variant's value as a parklink Value, with GOOD or BAD_DATA_TYPE_ID_UNKNOWN for structures."""
    if variant is None:
        return None, GOOD
    decoder = _DECODERS.get(variant.VariantType, _UNSUPPORTED)
    if decoder is _UNSUPPORTED:
        return None, BAD_DATA_TYPE_ID_UNKNOWN
    value = variant.Value
    if decoder is None:
        if isinstance(value, tuple):  # arrays may arrive as tuples
            return list(value), GOOD
        return value, GOOD
    assert callable(decoder)
    try:
        if isinstance(value, list | tuple):
            return [decoder(v) for v in value], GOOD
        return decoder(value), GOOD
    except (AttributeError, TypeError, ValueError, OverflowError):
        return None, BAD_DATA_TYPE_ID_UNKNOWN


def decode_data_value(dv: ua.DataValue, received: float) -> Decoded:
    """(value, status, source_time, server_time); `received` stands in for missing timestamps."""
    code = dv.StatusCode
    status = GOOD if code is None else code.value
    value, value_status = decode_variant(dv.Value)
    if value_status != GOOD and (status & 0x80000000) == 0:
        status = value_status
    server_time = _timestamp(dv.ServerTimestamp, received)
    source_time = _timestamp(dv.SourceTimestamp, server_time)
    return value, status, source_time, server_time


# ---------------------------------------------------------------------------------------------
# Writing: Python value -> Variant of the node's type


class EncodeError(ValueError):
    """A value that cannot become the node's type; `status` says why (mismatch or out of range)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


_INT_RANGES: dict[ua.VariantType, tuple[int, int]] = {
    ua.VariantType.SByte: (-(2**7), 2**7 - 1),
    ua.VariantType.Byte: (0, 2**8 - 1),
    ua.VariantType.Int16: (-(2**15), 2**15 - 1),
    ua.VariantType.UInt16: (0, 2**16 - 1),
    ua.VariantType.Int32: (-(2**31), 2**31 - 1),
    ua.VariantType.UInt32: (0, 2**32 - 1),
    ua.VariantType.Int64: (-(2**63), 2**63 - 1),
    ua.VariantType.UInt64: (0, 2**64 - 1),
}
_FLOAT32_MAX = 3.4028234663852886e38


def _mismatch(value: object, vtype: ua.VariantType) -> EncodeError:
    return EncodeError(f"{value!r} is not a {vtype.name}", BAD_TYPE_MISMATCH)


def _encode_scalar(value: object, vtype: ua.VariantType) -> object:
    if vtype in _INT_RANGES:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):  # bool is an int: True writes 1
            raise _mismatch(value, vtype)
        low, high = _INT_RANGES[vtype]
        if not low <= value <= high:
            raise EncodeError(f"{value} is outside {vtype.name} [{low}, {high}]", BAD_OUT_OF_RANGE)
        return int(value)
    if vtype in (ua.VariantType.Float, ua.VariantType.Double):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _mismatch(value, vtype)
        number = float(value)
        if vtype == ua.VariantType.Float and abs(number) > _FLOAT32_MAX and abs(number) != float("inf"):
            raise EncodeError(f"{value} is outside Float", BAD_OUT_OF_RANGE)
        return number
    if vtype == ua.VariantType.Boolean:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise _mismatch(value, vtype)
    if vtype in (ua.VariantType.String, ua.VariantType.XmlElement):
        if not isinstance(value, str):
            raise _mismatch(value, vtype)
        return value
    if vtype == ua.VariantType.ByteString:
        if not isinstance(value, bytes | bytearray):
            raise _mismatch(value, vtype)
        return bytes(value)
    if vtype == ua.VariantType.DateTime:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        raise _mismatch(value, vtype)
    if vtype == ua.VariantType.LocalizedText:
        if not isinstance(value, str):
            raise _mismatch(value, vtype)
        return ua.LocalizedText(value)
    raise EncodeError(f"writing {vtype.name} values is not supported", BAD_TYPE_MISMATCH)


def encode_value(value: object, vtype: ua.VariantType) -> ua.Variant:
    """A Variant of type `vtype` holding `value`; lists become arrays. Raises EncodeError."""
    if isinstance(value, list | tuple):
        return ua.Variant([_encode_scalar(v, vtype) for v in value], vtype, is_array=True)
    return ua.Variant(_encode_scalar(value, vtype), vtype)


def variant_type_of(data_type: ua.NodeId) -> ua.VariantType | None:
    """The built-in VariantType of a DataType node id (ns=0;i=1..21), else None (structure, enum)."""
    # Ids 1..21 of DataType nodes equal the VariantType codes; 22..25 (Structure, DataValue,
    # BaseDataType, DiagnosticInfo) and everything else say nothing about the Variant on the wire.
    ident = data_type.Identifier
    if data_type.NamespaceIndex == 0 and isinstance(ident, int) and 1 <= ident <= 21:
        return ua.VariantType(ident)
    return None
