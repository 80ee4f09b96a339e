"""Sample: one value of one signal, as it travels from a connector to the snapshot.

A Sample is a NamedTuple: cheap to create on the hot path (one per changed value), immutable, and
indexable by the integer id the runtime gave the signal, so the snapshot is a plain list.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from models.status import BAD_NO_COMMUNICATION, GOOD, quality_of

# What a device value may be after decoding. Arrays arrive as lists, OPC UA structures as dicts.
Value = bool | int | float | str | bytes | list[object] | dict[str, object] | None


class Quality(IntEnum):
    """OPC UA style quality, derived from the severity bits of a StatusCode (OPC 10000-4 §7.39)."""

    BAD = 0
    UNCERTAIN = 1
    GOOD = 2


class Sample(NamedTuple):
    """One observation of one signal.

    `status` is an OPC UA StatusCode (uint32): the full code is kept, quality is derived from it.
    Times are POSIX seconds: `source_time` from the device where it gives one, `server_time` when
    the value reached the server (OPC UA) or parklink (Modbus).
    """

    signal: int
    value: Value
    status: int
    source_time: float
    server_time: float

    @property
    def quality(self) -> Quality:
        return Quality(quality_of(self.status))


def good(signal: int, value: Value, when: float) -> Sample:
    """A Good sample stamped `when` on both clocks (devices without their own clock)."""
    return Sample(signal, value, GOOD, when, when)


def bad(signal: int, status: int, when: float) -> Sample:
    """A Bad sample without a value, e.g. `BadNoCommunication` while a connection is down."""
    return Sample(signal, None, status, when, when)


__all__ = ["BAD_NO_COMMUNICATION", "Quality", "Sample", "Value", "bad", "good"]
