"""Cumulative device counters (parts, energy) → increases per window, surviving resets and wraps.

Decisions (STANDARDS.md §1.5 pitfall 5):
- **Reset.** When the value drops and the drop is not a wrap, the counter was reset (power cycle,
  shift reset on the PLC): the new value is the increase since the reset. This is Prometheus
  `increase()` semantics and what the Flux docs give for `difference(nonNegative: true)` ("assumes
  the previous value should have been a zero"). The parts made between the last sample and the
  reset are lost; nothing better can be known.
- **Wrap.** With a register width w (16/32/64 bits), a drop is a wrap when the forward distance
  (new − old) mod 2^w is under half the range, i.e. the wrap explains the reading with fewer than
  2^(w−1) units: serial-number arithmetic (RFC 1982). 65000 → 100 on 16 bits is a wrap of +636;
  30000 → 10 is a reset of +10. It also covers signed registers (32767 → −32768 is +1). A counter
  that moves by more than half its range between two good samples cannot be told from a reset.
- **Bad quality** samples are ignored: the last good value stays, and the increase across the
  gap is credited at the next good sample, stamped with that sample's time. Parts made during a
  long gap thus land in the window where communication came back.
- **Out of order**: a value older than the last good one is ignored (it would read as a reset).
- **The first value** is the baseline: no increase is credited for it.

Increases are kept as running totals at a time resolution (1 s by default: increments in the same
second merge), so `increase_between(t0, t1)` is two bisections and exact for window edges on whole
multiples of the resolution. Attribution is half-open: an increment at t counts in [t0, t1) iff
t0 ≤ t < t1, which makes windows additive.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from typing import Any


class Cumulative:
    """Increments with their times, stored as running totals so a window costs two bisections."""

    __slots__ = ("_base", "_cum", "_times", "resolution", "total")

    def __init__(self, resolution: float = 1.0) -> None:
        if resolution < 0:
            raise ValueError(f"resolution must be ≥ 0 seconds, got {resolution}")
        self.resolution = resolution
        self.total = 0.0  # everything ever added (what a Prometheus `_total` counter exports)
        self._base = 0.0  # total before the first retained bucket
        self._times = array("d")  # bucket start times, increasing
        self._cum = array("d")  # running total at the end of each bucket

    def add(self, t: float, amount: float) -> None:
        """Add `amount` at time `t` (into the bucket of `t`; a late `t` goes to the last bucket)."""
        if amount == 0:
            return
        res = self.resolution
        if res > 0:
            t -= t % res
        self.total += amount
        times = self._times
        if times and t <= times[-1]:
            self._cum[-1] = self.total
        else:
            times.append(t)
            self._cum.append(self.total)

    def _total_before(self, t: float) -> float:
        i = bisect_left(self._times, t)
        return self._cum[i - 1] if i else self._base

    def between(self, t0: float, t1: float) -> float:
        """Sum of the increments at times in [t0, t1)."""
        if t1 <= t0:
            return 0.0
        return self._total_before(t1) - self._total_before(t0)

    def prune(self, before: float) -> None:
        """Forget increments before `before` (a window reaching back there reads no increase)."""
        k = bisect_left(self._times, before)
        if k:
            self._base = self._cum[k - 1]
            del self._times[:k], self._cum[:k]

    def __len__(self) -> int:
        return len(self._times)

    def state(self) -> dict[str, Any]:
        """JSON-able state for `from_state`."""
        return {
            "resolution": self.resolution,
            "total": self.total,
            "base": self._base,
            "times": list(self._times),
            "cum": list(self._cum),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Cumulative:
        """Rebuild from `state()`."""
        c = cls(float(state["resolution"]))
        c.total, c._base = float(state["total"]), float(state["base"])
        c._times, c._cum = array("d", state["times"]), array("d", state["cum"])
        return c


class CounterTracker:
    """One cumulative device counter: non-negative differencing with reset and wrap handling."""

    __slots__ = ("_half", "_modulus", "last", "last_time", "resets", "series", "width_bits", "wraps")

    def __init__(self, width_bits: int | None = None, resolution: float = 1.0) -> None:
        if width_bits is not None and width_bits not in (8, 16, 32, 64):
            raise ValueError(f"counter width must be 8, 16, 32 or 64 bits, got {width_bits}")
        self.width_bits = width_bits
        self._modulus = 0 if width_bits is None else 1 << width_bits
        self._half = self._modulus >> 1
        self.last: int | float | None = None  # last good value, ints kept exact (64-bit registers)
        self.last_time: float | None = None
        self.resets = 0
        self.wraps = 0
        self.series = Cumulative(resolution)

    def feed(self, t: float, value: object, ok: bool = True) -> float:
        """Take one sample; returns the increase credited at `t` (0.0 when none)."""
        if not ok or not isinstance(value, int | float):
            return 0.0
        if isinstance(value, float) and not math.isfinite(value):
            return 0.0
        last_time = self.last_time
        if last_time is not None and t < last_time:
            return 0.0
        last = self.last
        self.last, self.last_time = value, t
        if last is None:
            return 0.0
        inc = value - last
        if inc < 0:
            modulus = self._modulus
            if modulus and inc % modulus < self._half:
                inc %= modulus
                self.wraps += 1
            else:
                inc = value if value > 0 else 0
                self.resets += 1
        if inc:
            self.series.add(t, float(inc))
        return float(inc)

    def increase_between(self, t0: float, t1: float) -> float:
        """Increase credited to samples with source time in [t0, t1)."""
        return self.series.between(t0, t1)

    @property
    def total(self) -> float:
        """Increase since this tracker was created (carried across restarts by `state()`)."""
        return self.series.total

    def prune(self, before: float) -> None:
        """Forget increments before `before`; the last value is kept."""
        self.series.prune(before)

    def state(self) -> dict[str, Any]:
        """JSON-able state: last value and time, reset/wrap counts, retained increments."""
        return {
            "width_bits": self.width_bits,
            "last": self.last,
            "last_time": self.last_time,
            "resets": self.resets,
            "wraps": self.wraps,
            "series": self.series.state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CounterTracker:
        """Rebuild from `state()`: the next sample is differenced against the saved value."""
        series = Cumulative.from_state(state["series"])
        tracker = cls(state["width_bits"], series.resolution)
        tracker.last, tracker.last_time = state["last"], state["last_time"]
        tracker.resets, tracker.wraps = int(state["resets"]), int(state["wraps"])
        tracker.series = series
        return tracker
