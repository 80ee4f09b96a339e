"""Register words ↔ values: pure functions, no I/O, no pymodbus.

Byte orders name the wire position of the value's bytes, most significant byte = A (Telegraf,
Neuron and most device manuals use the same letters):

    32-bit value A B C D     ABCD → [AB, CD]   CDAB → [CD, AB]   BADC → [BA, DC]   DCBA → [DC, BA]
    64-bit value A B … H     ABCD → [AB, CD, EF, GH]             CDAB → [GH, EF, CD, AB]
                             BADC → [BA, DC, FE, HG]             DCBA → [HG, FE, DC, BA]
    16-bit value A B         ABCD, CDAB → [AB]                   BADC, DCBA → [BA]

So the first letter pair says whether the words are swapped (CD.. = words in reverse order), the
order inside a pair says whether the bytes of each word are swapped. Strings and raw bytes are
read in address order; only the byte swap (BADC) applies to them.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from typing import Any, Literal

from models.sample import Value

ByteOrder = Literal["ABCD", "BADC", "CDAB", "DCBA"]

# struct format and register count of each fixed-width type.
NUMERIC_FORMATS: dict[str, tuple[str, int]] = {
    "int16": ("h", 1),
    "uint16": ("H", 1),
    "int32": ("i", 2),
    "uint32": ("I", 2),
    "int64": ("q", 4),
    "uint64": ("Q", 4),
    "float32": ("f", 2),
    "float64": ("d", 4),
}
_INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
VARIABLE_WIDTH = frozenset({"string", "raw"})


def register_count(data_type: str) -> int | None:
    """Registers a fixed-width type takes (bool: 1); None for string and raw."""
    if data_type == "bool":
        return 1
    fmt = NUMERIC_FORMATS.get(data_type)
    return fmt[1] if fmt else None


def _swap_words(byte_order: str) -> bool:
    return byte_order in ("CDAB", "DCBA")


def _swap_bytes(byte_order: str) -> bool:
    return byte_order in ("BADC", "DCBA")


def words_to_bytes(words: Sequence[int], byte_order: str = "ABCD", *, word_swap: bool = True) -> bytes:
    """The value's bytes, most significant first, from wire words in the given byte order."""
    if word_swap and _swap_words(byte_order):
        words = words[::-1]
    # "<H" writes each word low byte first, which is exactly a byte swap within each word.
    return struct.pack(f"{'<' if _swap_bytes(byte_order) else '>'}{len(words)}H", *words)


def bytes_to_words(data: bytes, byte_order: str = "ABCD", *, word_swap: bool = True) -> list[int]:
    """Inverse of `words_to_bytes`: wire words for big-endian value bytes (even length)."""
    words = list(struct.unpack(f"{'<' if _swap_bytes(byte_order) else '>'}{len(data) // 2}H", data))
    return words[::-1] if word_swap and _swap_words(byte_order) else words


def decode(
    words: Sequence[int],
    data_type: str,
    byte_order: str = "ABCD",
    *,
    bit: int | None = None,
    scale: float = 1.0,
    offset: float = 0.0,
) -> Value:
    """Decode wire words into a value; raises ValueError if they cannot be this type."""
    if data_type == "bool":
        if len(words) != 1:
            raise ValueError(f"bool needs 1 register, got {len(words)}")
        word = struct.unpack(">H", words_to_bytes(words, byte_order))[0]
        return bool((word >> bit) & 1) if bit is not None else word != 0
    if data_type == "string":
        # Devices pad with NULs; a NUL-free tail or invalid UTF-8 is a decoding error, not mojibake.
        return words_to_bytes(words, byte_order, word_swap=False).rstrip(b"\x00").decode("utf-8")
    if data_type == "raw":
        return words_to_bytes(words, byte_order, word_swap=False)
    fmt, width = NUMERIC_FORMATS[data_type]
    if len(words) != width:
        raise ValueError(f"{data_type} needs {width} registers, got {len(words)}")
    raw: int | float = struct.unpack(">" + fmt, words_to_bytes(words, byte_order))[0]
    if scale == 1 and offset == 0:
        return raw
    return raw * scale + offset


def encode(
    value: object,
    data_type: str,
    byte_order: str = "ABCD",
    *,
    count: int | None = None,
    scale: float = 1.0,
    offset: float = 0.0,
) -> list[int]:
    """Wire words for a value to write, scaling inversely: raw = (value - offset) / scale.

    Raises TypeError for a value of the wrong kind, ValueError when it does not fit the type.
    """
    if data_type == "bool":
        if not isinstance(value, bool | int) or value not in (0, 1):
            raise TypeError(f"bool expects True/False, got {value!r}")
        return bytes_to_words(struct.pack(">H", int(value)), byte_order)
    if data_type in VARIABLE_WIDTH:
        return _encode_bytes(value, data_type, byte_order, count)
    fmt, _ = NUMERIC_FORMATS[data_type]
    if not isinstance(value, int | float):
        raise TypeError(f"{data_type} expects a number, got {type(value).__name__}")
    raw: int | float = value
    if scale != 1 or offset != 0:
        raw = (value - offset) / scale
    if data_type in _INTEGER_RANGES:
        if isinstance(raw, float):
            if not math.isfinite(raw):
                raise ValueError(f"{value!r} is not a finite number")
            raw = round(raw)
        low, high = _INTEGER_RANGES[data_type]
        if not low <= raw <= high:
            raise ValueError(f"{value!r} is out of range for {data_type} ({low}..{high})")
    try:
        data = struct.pack(">" + fmt, raw)
    except (struct.error, OverflowError) as exc:  # e.g. 1e39 does not fit a float32
        raise ValueError(f"{value!r} does not fit {data_type}: {exc}") from None
    return bytes_to_words(data, byte_order)


def _encode_bytes(value: object, data_type: str, byte_order: str, count: int | None) -> list[int]:
    if count is None:
        raise ValueError(f"{data_type} needs a register count")
    if data_type == "string":
        if not isinstance(value, str):
            raise TypeError(f"string expects str, got {type(value).__name__}")
        data = value.encode("utf-8")
    elif isinstance(value, bytes | bytearray):
        data = bytes(value)
    else:
        raise TypeError(f"raw expects bytes, got {type(value).__name__}")
    if len(data) > 2 * count:
        raise ValueError(f"{len(data)} bytes do not fit {count} registers ({2 * count} bytes)")
    if data_type == "raw" and len(data) != 2 * count:
        raise ValueError(f"raw expects exactly {2 * count} bytes, got {len(data)}")
    return bytes_to_words(data.ljust(2 * count, b"\x00"), byte_order, word_swap=False)


# ---- batch layouts: the hot path ---------------------------------------------------------------
#
# A poll packs each response once into bytes and unpacks many bindings with one precompiled struct
# (see decoding.py). Packing the words big-endian gives the wire bytes; packing them little-endian
# swaps the bytes inside every word. So each byte order is one buffer plus one struct endianness
# (value bytes A..H, most significant first):
#
#     ABCD  big-endian buffer,    '>' value     DCBA  big-endian buffer,    '<' value
#     BADC  little-endian buffer, '>' value     CDAB  little-endian buffer, '<' value
#
# `decode` above stays the readable reference; the tests check both against the same byte tables.

_VALUE_ENDIAN = {"ABCD": ">", "BADC": ">", "DCBA": "<", "CDAB": "<"}


def little_endian_buffer(byte_order: str) -> bool:
    """Whether this byte order is read from the response packed with little-endian words."""
    return byte_order in ("BADC", "CDAB")


def pack_words(words: Sequence[int], little_endian: bool = False) -> bytes:
    """A response's registers as bytes (little-endian: bytes swapped in each word)."""
    return struct.pack(f"{'<' if little_endian else '>'}{len(words)}H", *words)


def _text(data: bytes) -> str:
    return data.rstrip(b"\x00").decode("utf-8")


Post = Callable[[Any], Value]


def layout(
    data_type: str,
    byte_order: str = "ABCD",
    *,
    count: int | None = None,
    bit: int | None = None,
    scale: float = 1.0,
    offset: float = 0.0,
) -> tuple[bool, str, str, Post | None]:
    """How to unpack one binding as part of a whole response in one struct call.

    Returns (little-endian buffer, value endianness or '' if it has none, struct code, post): the
    struct code unpacks the raw value, `post` (None: nothing to do) turns it into the value. Several
    bindings with the same buffer and endianness become one struct format with pad bytes between.
    """
    if data_type in VARIABLE_WIDTH:
        size = 2 * (count or 1)
        return byte_order == "BADC", "", f"{size}s", _text if data_type == "string" else None
    if data_type == "bool":
        mask = 0xFFFF if bit is None else 1 << bit
        return little_endian_buffer(byte_order), _VALUE_ENDIAN[byte_order], "H", lambda raw: bool(raw & mask)
    fmt = NUMERIC_FORMATS[data_type][0]
    scaled = None if scale == 1 and offset == 0 else (lambda raw: raw * scale + offset)
    return little_endian_buffer(byte_order), _VALUE_ENDIAN[byte_order], fmt, scaled
