"""Cumulative device counters (parts, energy) → increases per window, surviving resets and wraps.

Decisions (STANDARDS.md §1.5 pitfall 5):
- **Reset or wrap.** When the value drops, either the counter was reset (PLC restart, shift reset:
  it counted up from 0 again) or its register wrapped past the top of its range (`rollover`, by
  default 2^w for a w-bit type). The wrapped increase is (new − old) mod rollover. A drop is a
  **wrap** only where that increase was physically possible: no more than
  `tolerance · max_rate · elapsed + 1` units, with `max_rate` the most units per second the device
  can count (the signal's `max_rate`, else 1 / PRU for part counters) and `elapsed` the time since
  the last good reading (+1: one part can finish in any interval). Otherwise it is a **reset**,
  and the new value is the increase (Prometheus `increase()`; Flux `nonNegative`: "the previous
  value should have been a zero"). Where no rate is known, a drop is a reset, except that a
  counter with an explicit `rollover` wraps when the forward distance is under half its range
  (the integrator said it wraps; serial-number arithmetic, RFC 1982). The reset rule cannot invent
  parts: it credits the new value, which is never more than the wrap would (new ≤ new + top − old).
  A real wrap near the top of the range (65,530 → 5) is well inside any rate bound and counts
  exactly; only a wrap of more than the bound allows is undercounted, by (top − old).
- **Bad quality** samples are ignored: the last good value stays. The increase across a gap is
  then **spread evenly** over the interval between the two good readings, as every increase is:
  the device counted it at some point in (previous reading, this reading]. So a reading at a
  window's end belongs to that window (06:00 … 14:00:00 gives the 06:00–14:00 shift everything),
  and units counted across unobserved time can be set apart from observed time (engine.py).
- **Out of order**: a value older than the last good one is ignored (it would read as a reset).
- **The first value** is the baseline: no increase is credited for it.

Increases are kept as a piecewise-linear running total: points (time, total) with the total
interpolated between them, at a time resolution (1 s by default: point times are whole multiples
of it, so window edges on whole seconds are exact and memory is bounded by changed seconds).
`between(t0, t1)` is two bisections and two interpolations; windows are additive.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from typing import Any

DEFAULT_TOLERANCE = 1.5
"""A counter may run this much faster than `max_rate` (or 1 / PRU) before a drop reads as a reset."""


class Cumulative:
    """Increments spread over their intervals, as a piecewise-linear running total.

    Point times never decrease; two points at one time are a step (an increment with no interval).
    """

    __slots__ = ("_base", "_cum", "_horizon", "_times", "resolution", "total")

    def __init__(self, resolution: float = 1.0) -> None:
        if resolution < 0:
            raise ValueError(f"resolution must be ≥ 0 seconds, got {resolution}")
        self.resolution = resolution
        self.total = 0.0  # everything ever added (what a Prometheus `_total` counter exports)
        self._base = 0.0  # total before the first retained point
        self._horizon = -math.inf  # pruned before this: earlier times read as this one
        self._times = array("d")  # point times, non-decreasing
        self._cum = array("d")  # running total at each point

    def add(self, t: float, amount: float, since: float | None = None) -> None:
        """Add `amount` spread evenly over [since, t] (a step at `t` when `since` is None).

        An interval that begins before the last point begins there instead (a late increment).
        """
        if amount == 0:
            return
        if since is None or since > t:
            since = t
        res = self.resolution
        if res > 0:
            t -= t % res
            since -= since % res
        before = self.total
        self.total = total = before + amount
        times, cum = self._times, self._cum
        last = times[-1] if times else -math.inf
        if t <= last:  # within the last point's bucket (or late): a step there
            if len(times) >= 2 and times[-2] == last:
                cum[-1] = total  # already a step at `last`: it grows
            else:
                times.append(last)
                cum.append(total)
            return
        if since > last:
            times.append(since)  # flat until the interval the increment was counted in
            cum.append(before)
        times.append(t)
        cum.append(total)

    def at(self, t: float) -> float:
        """The running total just before `t` (increments of [since, t] are in by `t` itself)."""
        if t < self._horizon:
            t = self._horizon
        times = self._times
        i = bisect_left(times, t)
        if i == 0:
            return self._base
        cum = self._cum
        if i == len(times):
            return cum[-1]
        c0, c1 = cum[i - 1], cum[i]
        if c1 == c0:
            return c0
        t0 = times[i - 1]
        return c0 + (c1 - c0) * (t - t0) / (times[i] - t0)

    def between(self, t0: float, t1: float) -> float:
        """The increase counted in [t0, t1) (its share of increments whose interval crosses an edge)."""
        if t1 <= t0:
            return 0.0
        return self.at(t1) - self.at(t0)

    def prune(self, before: float) -> None:
        """Forget increments before `before` (a window reaching back there reads no increase)."""
        if before <= self._horizon:
            return
        self._horizon = before
        k = bisect_left(self._times, before) - 1  # keep the point before `before`: it interpolates
        if k > 0:
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
            "shape": "linear",
            "horizon": None if self._horizon == -math.inf else self._horizon,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Cumulative:
        """Rebuild from `state()`; a state saved before interpolation (steps only) is converted."""
        c = cls(float(state["resolution"]))
        c.total, c._base = float(state["total"]), float(state["base"])
        times, cum = list(state["times"]), list(state["cum"])
        if state.get("shape") != "linear":  # every point was a step at its time
            previous = [c._base, *cum[:-1]]
            times = [t for t in times for _ in (0, 1)]
            cum = [v for pair in zip(previous, cum, strict=True) for v in pair]
        c._times, c._cum = array("d", times), array("d", cum)
        horizon = state.get("horizon")
        c._horizon = -math.inf if horizon is None else float(horizon)
        return c


class CounterTracker:
    """One cumulative device counter: non-negative differencing with reset and wrap handling."""

    __slots__ = (
        "_half",
        "_modulus",
        "explicit_rollover",
        "last",
        "last_time",
        "max_rate",
        "resets",
        "series",
        "tolerance",
        "width_bits",
        "wraps",
    )

    def __init__(
        self,
        width_bits: int | None = None,
        resolution: float = 1.0,
        *,
        rollover: int | None = None,
        max_rate: float | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> None:
        """`rollover` is the value at which the counter wraps to 0 (default 2^width_bits);
        `max_rate` the most units per second it can count (else the caller passes one per sample)."""
        if width_bits is not None and width_bits not in (8, 16, 32, 64):
            raise ValueError(f"counter width must be 8, 16, 32 or 64 bits, got {width_bits}")
        if rollover is not None and rollover < 2:
            raise ValueError(f"counter rollover must be ≥ 2, got {rollover}")
        self.width_bits = width_bits
        self.explicit_rollover = rollover is not None
        self._modulus = rollover if rollover is not None else (0 if width_bits is None else 1 << width_bits)
        self._half = self._modulus >> 1
        self.max_rate = max_rate
        self.tolerance = tolerance
        self.last: int | float | None = None  # last good value, ints kept exact (64-bit registers)
        self.last_time: float | None = None
        self.resets = 0
        self.wraps = 0
        self.series = Cumulative(resolution)

    def feed(self, t: float, value: object, ok: bool = True, max_rate: float | None = None) -> float:
        """Take one sample; returns the increase credited, spread over (last reading, `t`].

        `max_rate` (units/s, e.g. 1 / PRU) bounds a plausible wrap when the tracker has none of its own.
        """
        if not ok or not isinstance(value, int | float):
            return 0.0
        if isinstance(value, float) and not math.isfinite(value):
            return 0.0
        last_time = self.last_time
        if last_time is not None and t < last_time:
            return 0.0
        last = self.last
        self.last, self.last_time = value, t
        if last is None or last_time is None:
            return 0.0
        inc = value - last
        if inc < 0:
            inc = self._drop(inc, value, t - last_time, max_rate)
        if inc:
            self.series.add(t, float(inc), last_time)
        return float(inc)

    def _drop(
        self, inc: int | float, value: int | float, elapsed: float, max_rate: float | None
    ) -> int | float:
        """The increase of a drop: the wrapped distance when it was possible, else the new value."""
        modulus = self._modulus
        if modulus:
            wrapped = inc % modulus
            rate = self.max_rate if self.max_rate is not None else max_rate
            if rate is not None:
                plausible = wrapped <= self.tolerance * rate * elapsed + 1
            else:
                plausible = self.explicit_rollover and wrapped < self._half
            if plausible:
                self.wraps += 1
                return wrapped
        self.resets += 1
        return value if value > 0 else 0

    def increase_between(self, t0: float, t1: float) -> float:
        """Increase counted in [t0, t1) (spread over the intervals between readings)."""
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

    def restore(self, state: dict[str, Any]) -> None:
        """Take the readings and increments of `state()`; settings (width, rate) stay as configured.

        The next sample is differenced against the saved value.
        """
        self.last, self.last_time = state["last"], state["last_time"]
        self.resets, self.wraps = int(state["resets"]), int(state["wraps"])
        self.series = Cumulative.from_state(state["series"])
