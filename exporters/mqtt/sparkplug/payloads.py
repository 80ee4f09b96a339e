"""Sparkplug B payloads from parklink signals and Samples, and back (pure functions on the official pb2).

Mapping (Sparkplug 3.0 ch. 6):
- data types: parklink `DataType` → Sparkplug `DataType` (`DATATYPES`); `variant` goes as String.
  A value that does not fit the declared type (a float on an int16 signal scaled by Modbus, a
  list, an out-of-range int) widens the metric once (`widen`: Int64, Double, then String) and
  the caller re-births, since a metric's type may only change with a new birth.
- signed Int8/16/32 travel in `int_value` (uint32) as 32-bit two's complement, Int64 in
  `long_value` as 64-bit two's complement; `metric_value` sign-extends from the type's width
  (so 8- and 16-bit two's complement from other encoders read the same).
- DateTime: POSIX seconds ↔ uint64 milliseconds. Timestamps are UTC milliseconds.
- quality: Good → no `Quality` property (the spec's default); Uncertain → value kept,
  `Quality`=500 (STALE); Bad → `is_null` and `Quality`=0 (BAD). `Quality` is Int32 as the spec
  requires; the full OPC UA StatusCode rides along as the UInt32 property `StatusCode` whenever
  the status is not Good.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from exporters.mqtt.sparkplug import sparkplug_b_pb2 as pb
from exporters.mqtt.uns import json_value
from models.assets import DataType
from models.status import GOOD, quality_of

NAMESPACE = "spBv1.0"
QUALITY_BAD, QUALITY_GOOD, QUALITY_STALE = 0, 192, 500
BDSEQ = "bdSeq"
REBIRTH = "Node Control/Rebirth"

DATATYPES: dict[DataType, int] = {
    "bool": pb.Boolean,
    "int16": pb.Int16,
    "uint16": pb.UInt16,
    "int32": pb.Int32,
    "uint32": pb.UInt32,
    "int64": pb.Int64,
    "uint64": pb.UInt64,
    "float32": pb.Float,
    "float64": pb.Double,
    "string": pb.String,
    "raw": pb.Bytes,
    "datetime": pb.DateTime,
    "bytes": pb.Bytes,
    "variant": pb.String,
}
# (bits, signed) of the integer types
_INTS: dict[int, tuple[int, bool]] = {
    pb.Int8: (8, True),
    pb.Int16: (16, True),
    pb.Int32: (32, True),
    pb.Int64: (64, True),
    pb.UInt8: (8, False),
    pb.UInt16: (16, False),
    pb.UInt32: (32, False),
    pb.UInt64: (64, False),
}
_STRINGS = frozenset({pb.String, pb.Text, pb.UUID})


def ms(seconds: float) -> int:
    """POSIX seconds → integer milliseconds (Sparkplug timestamps)."""
    return round(seconds * 1000.0)


def fits(datatype: int, value: object) -> bool:
    """Whether `value` can be sent as `datatype` without changing its meaning (None always fits)."""
    if value is None:
        return True
    if datatype in _INTS:
        if not isinstance(value, int):  # bool is an int: True → 1
            return False
        bits, signed = _INTS[datatype]
        low, high = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
        return low <= value < high
    if datatype in (pb.Float, pb.Double, pb.DateTime):
        return isinstance(value, int | float)
    if datatype == pb.Boolean:
        return isinstance(value, bool) or (isinstance(value, int) and value in (0, 1))
    if datatype == pb.Bytes:
        return isinstance(value, bytes | bytearray)
    return datatype in _STRINGS  # anything has a text form


def widen(datatype: int, value: object) -> int:
    """The next datatype able to carry `value` (Int64, then Double, then String)."""
    if isinstance(value, int) and not isinstance(value, bool) and fits(pb.Int64, value):
        return pb.Int64
    if isinstance(value, int | float) and not isinstance(value, bool):
        return pb.Double
    return pb.String


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(json_value(value)[0], separators=(",", ":"))


def set_value(metric: pb.Payload.Metric, datatype: int, value: object) -> None:
    """Fill the value oneof of `metric`; values that do not fit (see `fits`) go as their text."""
    if value is None:
        metric.is_null = True
    elif datatype in _INTS and isinstance(value, int):
        if _INTS[datatype][0] == 64:
            metric.long_value = value & 0xFFFF_FFFF_FFFF_FFFF
        else:
            metric.int_value = value & 0xFFFF_FFFF
    elif datatype == pb.Float and isinstance(value, int | float):
        metric.float_value = float(value)
    elif datatype == pb.Double and isinstance(value, int | float):
        metric.double_value = float(value)
    elif datatype == pb.Boolean and isinstance(value, int):
        metric.boolean_value = bool(value)
    elif datatype == pb.DateTime and isinstance(value, int | float):
        metric.long_value = ms(float(value))
    elif datatype == pb.Bytes and isinstance(value, bytes | bytearray):
        metric.bytes_value = bytes(value)
    else:
        metric.string_value = _text(value)


def metric_value(metric: pb.Payload.Metric) -> object:
    """The Python value of a decoded metric (None when is_null), sign-extended, DateTime in seconds."""
    if metric.is_null:
        return None
    field = metric.WhichOneof("value")
    if field is None:
        return None
    raw = getattr(metric, field)
    datatype = metric.datatype
    if datatype in _INTS:
        bits, signed = _INTS[datatype]
        raw &= (1 << bits) - 1
        return raw - (1 << bits) if signed and raw >= 1 << (bits - 1) else raw
    if datatype == pb.DateTime:
        return raw / 1000.0
    return raw


def _property(props: pb.Payload.PropertySet, key: str, datatype: int, value: int) -> None:
    props.keys.append(key)
    prop = props.values.add()
    prop.type = datatype
    prop.int_value = value


def add_metric(
    payload: pb.Payload,
    *,
    alias: int,
    datatype: int,
    value: object,
    status: int,
    timestamp: float,
    name: str | None = None,
) -> pb.Payload.Metric:
    """Append one metric; `name` only in births (DATA carries the alias only, spec 3.0 ch. 6)."""
    metric = payload.metrics.add()
    if name is not None:
        metric.name = name
    metric.alias = alias
    metric.timestamp = ms(timestamp)
    metric.datatype = datatype
    quality = quality_of(status)
    if quality == 0:
        metric.is_null = True
    else:
        set_value(metric, datatype, value)
    if status != GOOD:
        sparkplug_quality = QUALITY_BAD if quality == 0 else QUALITY_STALE if quality == 1 else QUALITY_GOOD
        _property(metric.properties, "Quality", pb.Int32, sparkplug_quality)
        _property(metric.properties, "StatusCode", pb.UInt32, status & 0xFFFF_FFFF)
    return metric


def properties(metric: pb.Payload.Metric) -> dict[str, object]:
    """The property set of a metric as a dict (scalar values only)."""
    out: dict[str, object] = {}
    for key, prop in zip(metric.properties.keys, metric.properties.values, strict=False):
        field = prop.WhichOneof("value")
        out[key] = None if prop.is_null or field is None else getattr(prop, field)
    return out


def node_metric(payload: pb.Payload, name: str, alias: int, datatype: int, value: object, now: float) -> None:
    """Append a node-level metric (bdSeq, Node Control/…) with name and alias."""
    add_metric(payload, alias=alias, datatype=datatype, value=value, status=GOOD, timestamp=now, name=name)


def ndeath(bdseq: int, now: float) -> bytes:
    """The NDEATH payload (also the MQTT will): the bdSeq metric only, no seq (spec 3.0)."""
    payload = pb.Payload(timestamp=ms(now))
    metric = payload.metrics.add()
    metric.name = BDSEQ
    metric.timestamp = ms(now)
    metric.datatype = pb.UInt64
    metric.long_value = bdseq
    return payload.SerializeToString()


def decode(data: bytes) -> pb.Payload:
    """Parse a Sparkplug B payload (google.protobuf DecodeError if malformed)."""
    return pb.Payload.FromString(data)


def topic(group_id: str, message_type: str, edge_node_id: str, device_id: str | None = None) -> str:
    """`spBv1.0/<group>/<type>/<edge node>[/<device>]`."""
    base = f"{NAMESPACE}/{group_id}/{message_type}/{edge_node_id}"
    return base if device_id is None else f"{base}/{device_id}"


def rebirth_requested(metrics: Iterable[pb.Payload.Metric], rebirth_alias: int) -> bool:
    """Whether an NCMD asks for `Node Control/Rebirth` = true (by name or by alias)."""
    return any(
        (m.name == REBIRTH or (not m.name and m.alias == rebirth_alias))
        and m.WhichOneof("value") == "boolean_value"
        and m.boolean_value
        for m in metrics
    )
