"""Counter differencing: resets, wraps at the register width, gaps, ordering, persistence."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from orchestrator.kpi import CounterTracker, Cumulative


def feed_all(tracker: CounterTracker, values: Sequence[tuple[float, object]]) -> list[float]:
    """Feed (time, value) pairs; the increase credited by each."""
    return [tracker.feed(t, v) for t, v in values]


def test_reset_counts_the_new_value_as_increase() -> None:
    """100 → 150 → 20 (reset) → 50: +50, +20, +30."""
    tracker = CounterTracker(width_bits=32)
    assert feed_all(tracker, [(0, 100), (10, 150), (20, 20), (30, 50)]) == [0, 50, 20, 30]
    assert tracker.resets == 1 and tracker.wraps == 0
    assert tracker.increase_between(0, 40) == 100


def test_16_bit_rollover_and_reset_mid_shift() -> None:
    """A 16-bit counter wraps (65530 → 10 is +16) and later resets; the shift gets every part."""
    tracker = CounterTracker(width_bits=16)
    shift_start, shift_end = 3600.0, 3600.0 + 8 * 3600
    values = [
        (3000, 65000),  # before the shift: baseline
        (3600, 65500),  # +500 at the shift start: counts in the shift
        (7200, 65530),  # +30
        (7260, 10),  # wrap: 10 + 65536 − 65530 = +16
        (9000, 2000),  # +1990
        (12000, 3),  # power cycle: reset, +3
        (15000, 503),  # +500
        (shift_end, 600),  # at the end: next shift
    ]
    credited = feed_all(tracker, values)
    assert credited == [0, 500, 30, 16, 1990, 3, 500, 97]
    assert tracker.wraps == 1 and tracker.resets == 1
    assert tracker.increase_between(shift_start, shift_end) == 500 + 30 + 16 + 1990 + 3 + 500


@pytest.mark.parametrize(
    ("width", "old", "new", "increase", "kind"),
    [
        (16, 30000, 10, 10, "reset"),  # forward distance 35546 ≥ 32768: not a wrap
        (16, 20000, 5000, 5000, "reset"),
        (16, 40000, 5000, 30536, "wrap"),  # ambiguous; the rule picks the wrap (forward < 32768)
        (16, 65535, 0, 1, "wrap"),
        (16, 32767, -32768, 1, "wrap"),  # signed int16
        (32, 4294967290, 5, 11, "wrap"),
        (64, 2**64 - 3, 2, 5, "wrap"),  # 64-bit ints stay exact
        (None, 1000.5, 3.5, 3.5, "reset"),  # float meter: every drop is a reset
    ],
)
def test_wrap_or_reset(width: int | None, old: float, new: float, increase: float, kind: str) -> None:
    """A drop is a wrap iff it explains the reading with under half the register range."""
    tracker = CounterTracker(width_bits=width)
    tracker.feed(0, old)
    assert tracker.feed(1, new) == increase
    assert (tracker.wraps, tracker.resets) == ((1, 0) if kind == "wrap" else (0, 1))


def test_bad_samples_are_skipped_and_the_gap_is_credited_later() -> None:
    """Increase across a Bad-quality gap lands at the next good sample's time."""
    tracker = CounterTracker()
    tracker.feed(0, 100)
    assert tracker.feed(10, None, ok=False) == 0
    assert tracker.feed(20, 999, ok=False) == 0  # a Bad value is not trusted
    assert tracker.feed(30, 130) == 30
    assert tracker.increase_between(0, 30) == 0
    assert tracker.increase_between(30, 31) == 30


def test_out_of_order_and_junk_values_are_ignored() -> None:
    """An older value would read as a reset; strings and NaN are not counter values."""
    tracker = CounterTracker()
    tracker.feed(10, 100)
    assert tracker.feed(5, 90) == 0
    assert tracker.feed(11, "oops") == 0
    assert tracker.feed(12, float("nan")) == 0
    assert tracker.feed(13, 105) == 5
    assert tracker.resets == 0


def test_state_roundtrip_loses_nothing_across_a_restart() -> None:
    """Parts made while parklink was down are credited at the first sample after the restart."""
    tracker = CounterTracker(width_bits=32)
    feed_all(tracker, [(0, 10), (60, 40)])
    restored = CounterTracker.from_state(json.loads(json.dumps(tracker.state())))
    assert restored.feed(600, 100) == 60
    assert restored.increase_between(0, 601) == 90
    assert restored.total == 90


def test_resolution_merges_increments_and_prune_bounds_memory() -> None:
    """Increments in one resolution bucket merge; pruned history reads as no increase."""
    series = Cumulative(resolution=10.0)
    for t in (1.0, 3.0, 9.9, 10.0, 25.0):
        series.add(t, 1.0)
    assert len(series) == 3
    assert series.between(0, 10) == 3 and series.between(10, 30) == 2
    series.prune(20)
    assert len(series) == 1
    assert series.between(0, 30) == 1 and series.total == 5
    exact = Cumulative(resolution=0)
    exact.add(1.25, 2.0)
    assert exact.between(1.25, 1.26) == 2.0
