"""Codec: register words ↔ values, checked against hand-written byte tables (not our own encoder)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import BoundSignal
from connectors.modbus import codec
from connectors.modbus.config import validate_binding
from connectors.modbus.decoding import Decoder
from connectors.modbus.planner import Request
from models.sample import Sample
from models.status import BAD_DECODING_ERROR, GOOD

# (data type, value, {byte order: wire words}). Words written by hand from the IEEE 754 / two's
# complement byte sequences; e.g. float32 123.456 = 0x42F6E979.
TABLE: list[tuple[str, int | float, dict[str, list[int]]]] = [
    ("uint16", 0x1234, {"ABCD": [0x1234], "CDAB": [0x1234], "BADC": [0x3412], "DCBA": [0x3412]}),
    ("int16", -12345, {"ABCD": [0xCFC7], "CDAB": [0xCFC7], "BADC": [0xC7CF], "DCBA": [0xC7CF]}),
    ("int16", -2, {"ABCD": [0xFFFE], "CDAB": [0xFFFE], "BADC": [0xFEFF], "DCBA": [0xFEFF]}),
    (
        "uint32",
        0x12345678,
        {
            "ABCD": [0x1234, 0x5678],
            "CDAB": [0x5678, 0x1234],
            "BADC": [0x3412, 0x7856],
            "DCBA": [0x7856, 0x3412],
        },
    ),
    (
        "int32",
        -123456789,  # 0xF8A432EB
        {
            "ABCD": [0xF8A4, 0x32EB],
            "CDAB": [0x32EB, 0xF8A4],
            "BADC": [0xA4F8, 0xEB32],
            "DCBA": [0xEB32, 0xA4F8],
        },
    ),
    (
        "uint64",
        0x0102030405060708,
        {
            "ABCD": [0x0102, 0x0304, 0x0506, 0x0708],
            "CDAB": [0x0708, 0x0506, 0x0304, 0x0102],
            "BADC": [0x0201, 0x0403, 0x0605, 0x0807],
            "DCBA": [0x0807, 0x0605, 0x0403, 0x0201],
        },
    ),
    (
        "int64",
        -2,  # 0xFFFFFFFFFFFFFFFE
        {
            "ABCD": [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE],
            "CDAB": [0xFFFE, 0xFFFF, 0xFFFF, 0xFFFF],
            "BADC": [0xFFFF, 0xFFFF, 0xFFFF, 0xFEFF],
            "DCBA": [0xFEFF, 0xFFFF, 0xFFFF, 0xFFFF],
        },
    ),
    (
        "float32",
        123.456,  # 0x42F6E979
        {
            "ABCD": [0x42F6, 0xE979],
            "CDAB": [0xE979, 0x42F6],
            "BADC": [0xF642, 0x79E9],
            "DCBA": [0x79E9, 0xF642],
        },
    ),
    ("float32", -1.5, {"ABCD": [0xBFC0, 0x0000], "CDAB": [0x0000, 0xBFC0], "BADC": [0xC0BF, 0x0000]}),
    (
        "float64",
        123.456,  # 0x405EDD2F1A9FBE77
        {
            "ABCD": [0x405E, 0xDD2F, 0x1A9F, 0xBE77],
            "CDAB": [0xBE77, 0x1A9F, 0xDD2F, 0x405E],
            "BADC": [0x5E40, 0x2FDD, 0x9F1A, 0x77BE],
            "DCBA": [0x77BE, 0x9F1A, 0x2FDD, 0x5E40],
        },
    ),
]
CASES = [(t, v, order, words) for t, v, orders in TABLE for order, words in orders.items()]
IDS = [f"{t}-{v}-{order}" for t, v, order, _ in CASES]


@pytest.mark.parametrize(("data_type", "value", "order", "words"), CASES, ids=IDS)
def test_decode_matches_hand_written_words(
    data_type: str, value: float, order: str, words: list[int]
) -> None:
    """Every numeric type × byte order decodes the hand-written words to the value."""
    got = codec.decode(words, data_type, order)
    if data_type == "float32":
        assert got == pytest.approx(value, rel=1e-7)
    else:
        assert got == value
        assert type(got) is type(value)


@pytest.mark.parametrize(("data_type", "value", "order", "words"), CASES, ids=IDS)
def test_encode_matches_hand_written_words(
    data_type: str, value: float, order: str, words: list[int]
) -> None:
    """Writes produce exactly the words a device expects."""
    assert codec.encode(value, data_type, order) == words


def test_register_counts() -> None:
    """Fixed widths in registers; string and raw have none."""
    assert [codec.register_count(t) for t in ("bool", "int16", "uint32", "float32", "int64", "float64")] == [
        1,
        1,
        2,
        2,
        4,
        4,
    ]
    assert codec.register_count("string") is None
    assert codec.register_count("raw") is None


def test_string_decoding() -> None:
    """Two ASCII bytes per register, high byte first; BADC swaps them; NUL padding dropped."""
    assert codec.decode([0x4142, 0x3132], "string") == "AB12"
    assert codec.decode([0x4241, 0x3231], "string", "BADC") == "AB12"
    assert codec.decode([0x4869, 0x0000, 0x0000], "string") == "Hi"
    assert codec.decode([0x4869, 0x2100], "string") == "Hi!"


def test_invalid_utf8_is_a_decoding_error() -> None:
    """Garbage bytes raise instead of producing a wrong string."""
    with pytest.raises(ValueError):
        codec.decode([0xFFFE], "string")


def test_raw_bytes() -> None:
    """Raw keeps every byte, in address order, optionally byte-swapped."""
    assert codec.decode([0x0102, 0x0304], "raw") == b"\x01\x02\x03\x04"
    assert codec.decode([0x0102, 0x0304], "raw", "BADC") == b"\x02\x01\x04\x03"
    assert codec.encode(b"\x01\x02\x03\x04", "raw", count=2) == [0x0102, 0x0304]


@pytest.mark.parametrize(
    ("words", "order", "bit", "expected"),
    [
        ([0x0005], "ABCD", 0, True),
        ([0x0005], "ABCD", 1, False),
        ([0x0005], "ABCD", 2, True),
        ([0x8000], "ABCD", 15, True),
        ([0x0500], "BADC", 0, True),  # byte-swapped 0x0005
        ([0x0500], "BADC", 8, False),
        ([0x0000], "ABCD", None, False),
        ([0x0007], "ABCD", None, True),
    ],
)
def test_bool_from_register(words: list[int], order: str, bit: int | None, expected: bool) -> None:
    """A bool is one bit of a register (bit 0 = least significant), or register != 0."""
    assert codec.decode(words, "bool", order, bit=bit) is expected


def test_scale_and_offset() -> None:
    """value = raw * scale + offset; without them integers stay integers."""
    assert codec.decode([0xFF38], "int16", scale=0.1) == pytest.approx(-20.0)  # raw -200
    assert codec.decode([0x00D7], "int16", scale=0.1, offset=273.15) == pytest.approx(294.65)
    assert codec.decode([0x00D7], "uint16") == 215


def test_write_inverse_scaling() -> None:
    """Writes divide: 21.5 °C at scale 0.1 → raw 215; offsets are subtracted first."""
    assert codec.encode(21.5, "int16", scale=0.1) == [215]
    assert codec.encode(294.65, "int16", scale=0.1, offset=273.15) == [0x00D7]
    assert codec.encode(-20.0, "int16", scale=0.1) == [0xFF38]
    words = codec.encode(42.25, "float32", "CDAB", scale=0.5, offset=2.0)
    assert codec.decode(words, "float32", "CDAB", scale=0.5, offset=2.0) == pytest.approx(42.25)


def test_encode_string_pads_with_nul() -> None:
    """Strings are padded to the register count; BADC swaps bytes."""
    assert codec.encode("Hi", "string", count=3) == [0x4869, 0, 0]
    assert codec.encode("AB12", "string", "BADC", count=2) == [0x4241, 0x3231]


@pytest.mark.parametrize(
    ("value", "data_type", "kwargs", "error"),
    [
        (40000, "int16", {}, ValueError),
        (-1, "uint16", {}, ValueError),
        (2**32, "uint32", {}, ValueError),
        (1e39, "float32", {}, ValueError),
        (math.inf, "int32", {}, ValueError),
        (7000, "int16", {"scale": 0.1}, ValueError),  # raw 70000
        ("12", "int16", {}, TypeError),
        (2, "bool", {}, TypeError),
        ("toolong", "string", {"count": 2}, ValueError),
        (b"\x01", "raw", {"count": 2}, ValueError),
        (5, "string", {"count": 2}, TypeError),
    ],
)
def test_encode_rejects(
    value: object, data_type: str, kwargs: dict[str, float], error: type[Exception]
) -> None:
    """Values that do not fit raise ValueError, wrong kinds TypeError; nothing is truncated."""
    with pytest.raises(error):
        codec.encode(value, data_type, **kwargs)  # type: ignore[arg-type]


def test_decode_rejects_wrong_length() -> None:
    """A float32 from one register is an error, not a guess."""
    with pytest.raises(ValueError):
        codec.decode([0x42F6], "float32")
    with pytest.raises(ValueError):
        codec.decode([1, 2], "bool")


ORDERS = st.sampled_from(["ABCD", "BADC", "CDAB", "DCBA"])
INT_TYPES = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}


@settings(database=None)
@given(data=st.data(), data_type=st.sampled_from(sorted(INT_TYPES)), order=ORDERS)
def test_integer_round_trip(data: st.DataObject, data_type: str, order: str) -> None:
    """decode(encode(v)) == v for every integer type and byte order."""
    low, high = INT_TYPES[data_type]
    value = data.draw(st.integers(low, high))
    words = codec.encode(value, data_type, order)
    assert all(0 <= w <= 0xFFFF for w in words)
    assert codec.decode(words, data_type, order) == value


@settings(database=None)
@given(value=st.floats(allow_nan=False, width=32), order=ORDERS)
def test_float32_round_trip(value: float, order: str) -> None:
    """float32 values survive a round trip exactly."""
    assert codec.decode(codec.encode(value, "float32", order), "float32", order) == value


@settings(database=None)
@given(value=st.text(max_size=10).filter(lambda s: "\x00" not in s), order=st.sampled_from(["ABCD", "BADC"]))
def test_string_round_trip(value: str, order: str) -> None:
    """Strings without NULs survive a round trip."""
    count = max(1, (len(value.encode()) + 1) // 2)
    assert codec.decode(codec.encode(value, "string", order, count=count), "string", order) == value


# ---- the poll loop's decoder (batch struct layouts) against the same hand-written table ---------


def _decode_all(bindings: list[tuple[str, dict[str, object]]], registers: list[int]) -> list[Sample]:
    """Decode one response carrying `bindings` (data type, binding) with the connector's Decoder."""
    signals = [
        BoundSignal(k, f"s{k}", data_type, validate_binding(raw, data_type))  # type: ignore[arg-type]
        for k, (data_type, raw) in enumerate(bindings)
    ]
    items = tuple((k, int(raw["address"])) for k, (_, raw) in enumerate(bindings))  # type: ignore[call-overload]
    request = Request(1, "holding", 0, len(registers), items)
    response = SimpleNamespace(registers=registers)
    batch: list[Sample] = []
    Decoder(signals, [request], "test").decode(0, request, response, batch)
    return sorted(batch)


def _read(words: list[int], data_type: str, order: str = "ABCD", at: int = 0, **kwargs: object) -> object:
    """The value the Decoder finds for one binding at register `at` of a longer response."""
    raw: dict[str, object] = {"address": at, "byte_order": order, **kwargs}
    if data_type in ("string", "raw"):
        raw["count"] = len(words)
    (sample,) = _decode_all([(data_type, raw)], [0xDEAD] * at + words + [0xBEEF])
    if sample.status != GOOD:
        raise ValueError(f"status {sample.status:#x}")
    return sample.value


@pytest.mark.parametrize(("data_type", "value", "order", "words"), CASES, ids=IDS)
@pytest.mark.parametrize("at", [0, 3])
def test_decoder_matches_hand_written_words(
    data_type: str, value: float, order: str, words: list[int], at: int
) -> None:
    """Every numeric type × byte order, at any offset in a response, gives the table's value."""
    got = _read(words, data_type, order, at)
    if data_type == "float32":
        assert got == pytest.approx(value, rel=1e-7)
    else:
        assert got == value
        assert type(got) is type(value)


@pytest.mark.parametrize(
    ("words", "order", "bit", "expected"),
    [
        ([0x0005], "ABCD", 0, True),
        ([0x0005], "ABCD", 1, False),
        ([0x8000], "ABCD", 15, True),
        ([0x0500], "BADC", 0, True),
        ([0x0500], "DCBA", 0, True),
        ([0x0005], "CDAB", 2, True),
        ([0x0000], "ABCD", None, False),
        ([0x0700], "BADC", None, True),
    ],
)
def test_decoder_bools(words: list[int], order: str, bit: int | None, expected: bool) -> None:
    """Bits of a register (bit 0 = least significant) in every byte order."""
    kwargs = {} if bit is None else {"bit": bit}
    assert _read(words, "bool", order, 1, **kwargs) is expected


def test_decoder_strings_raw_and_scaling() -> None:
    """Strings and raw in address order (BADC swaps bytes); scale and offset on numbers."""
    assert _read([0x4142, 0x3132], "string", at=2) == "AB12"
    assert _read([0x4241, 0x3231], "string", "BADC") == "AB12"
    assert _read([0x4869, 0x0000], "string") == "Hi"
    assert _read([0x0102, 0x0304], "raw", "BADC", 1) == b"\x02\x01\x04\x03"
    assert _read([0xFF38], "int16", scale=0.1) == pytest.approx(-20.0)
    assert _read([0x00D7], "int16", scale=0.1, offset=273.15) == pytest.approx(294.65)
    assert _read([0x00D7], "uint16") == 215
    with pytest.raises(ValueError):
        _read([0xFFFE], "string")


_SHAPES = [
    ("uint16", {}),
    ("int16", {"scale": 0.5}),
    ("int32", {}),
    ("uint32", {}),
    ("float32", {}),
    ("int64", {}),
    ("uint64", {}),
    ("float64", {}),
    ("bool", {"bit": 3}),
    ("bool", {}),
    ("string", {"count": 2}),
    ("raw", {"count": 1}),
]


@settings(max_examples=200, deadline=None, database=None)
@given(data=st.data())
def test_decoder_agrees_with_reference_on_random_maps(data: st.DataObject) -> None:
    """Random bindings, overlapping ones included, in one response: each Sample equals the reference
    `decode` of its own words (or is BadDecodingError exactly where the reference raises)."""
    registers = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=12, max_size=12))
    bindings: list[tuple[str, dict[str, object]]] = []
    for _ in range(data.draw(st.integers(1, 8))):
        data_type, extra = data.draw(st.sampled_from(_SHAPES))
        width = codec.register_count(data_type) or int(extra["count"])  # type: ignore[call-overload]
        orders = ["ABCD", "BADC"] if data_type in ("string", "raw") else ["ABCD", "BADC", "CDAB", "DCBA"]
        raw = {
            "address": data.draw(st.integers(0, 12 - width)),
            "byte_order": data.draw(st.sampled_from(orders)),
        }
        bindings.append((data_type, {**raw, **extra}))
    batch = _decode_all(bindings, registers)
    assert [s.signal for s in batch] == list(range(len(bindings)))
    for sample, (data_type, raw) in zip(batch, bindings, strict=True):
        b = validate_binding(raw, data_type)  # type: ignore[arg-type]
        words = registers[b.address : b.address + b.words]
        try:
            expected = codec.decode(words, data_type, b.byte_order, bit=b.bit, scale=b.scale, offset=b.offset)
        except ValueError:
            assert sample.status == BAD_DECODING_ERROR
            continue
        assert sample.status == GOOD
        if isinstance(expected, float) and math.isnan(expected):
            assert math.isnan(sample.value)  # type: ignore[arg-type]
        else:
            assert sample.value == expected and type(sample.value) is type(expected)
