"""Counter differencing: resets vs wraps by physical rate, spreading over readings, persistence.

Expected values are worked by hand from each scenario in the docstrings and comments.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.kpi import CounterTracker, Cumulative


def feed_all(
    tracker: CounterTracker, values: Sequence[tuple[float, object]], rate: float | None = None
) -> list[float]:
    """Feed (time, value) pairs; the increase credited by each."""
    return [tracker.feed(t, v, True, rate) for t, v in values]


def test_without_a_known_rate_a_drop_is_a_reset() -> None:
    """100 → 150 → 20 (reset) → 50: +50, +20, +30; no rate, no rollover: a drop is a reset."""
    tracker = CounterTracker(width_bits=32)
    assert feed_all(tracker, [(0, 100), (10, 150), (20, 20), (30, 50)]) == [0, 50, 20, 30]
    assert tracker.resets == 1 and tracker.wraps == 0
    assert tracker.increase_between(0, 30) == 100


def test_plc_restart_of_a_uint16_counter_is_a_reset_not_a_wrap() -> None:
    """The issue's case: a uint16 good counter at 43,000 restarts to 0 and counts to 2,500.

    1 part/s (PRU 1 s), read every 10 s: 40,000 → 43,000 over 3,000 s is 3,000 parts; the PLC
    restarts, the next reading is 0 (10 s later: a wrap would be 65,536 − 43,000 = 22,536 parts in
    10 s, far above 1.5 × 10 + 1), then 2,500 more. Truth: 5,500 (the old rule said 28,036).
    """
    tracker = CounterTracker(width_bits=16)
    readings = [(t, 40_000 + t) for t in range(0, 3001, 10)]
    readings += [(3010, 0)] + [(3010 + t, t) for t in range(10, 2501, 10)]
    credited = feed_all(tracker, readings, rate=1.0)
    assert sum(credited) == 5_500
    assert tracker.resets == 1 and tracker.wraps == 0


def test_uint32_drop_to_zero_adds_no_billion_parts() -> None:
    """3,000,016,321 → 0 one second later: a wrap would add 1,294,950,975 parts; it is a reset."""
    tracker = CounterTracker(width_bits=32)
    assert feed_all(tracker, [(0, 3_000_016_321), (1, 0), (2, 1)], rate=1.0) == [0, 0, 1]
    assert tracker.resets == 1


@pytest.mark.parametrize(
    ("width", "old", "new", "increase"),
    [
        (16, 65_530, 5, 11),  # 65,536 − 65,530 + 5
        (16, 65_535, 0, 1),
        (16, 32_767, -32_768, 1),  # signed int16 wraps too
        (32, 4_294_967_290, 5, 11),
        (64, 2**64 - 3, 2, 5),  # 64-bit ints stay exact
    ],
)
def test_real_wraps_near_the_top_count_exactly(width: int, old: int, new: int, increase: int) -> None:
    """10 s at 1 part/s allows 1.5 × 10 + 1 = 16 parts: each of these wraps fits and counts exactly."""
    tracker = CounterTracker(width_bits=width)
    assert feed_all(tracker, [(0, old), (10, new)], rate=1.0) == [0, increase]
    assert (tracker.wraps, tracker.resets) == (1, 0)


def test_a_wrap_faster_than_the_machine_is_a_reset() -> None:
    """65,500 → 100 in 10 s would be 136 parts at PRU 1 s (bound 16): reset, +100."""
    tracker = CounterTracker(width_bits=16)
    assert feed_all(tracker, [(0, 65_500), (10, 100)], rate=1.0) == [0, 100]
    # The same drop after a 200 s communication gap is possible (bound 301): a wrap, +136.
    tracker = CounterTracker(width_bits=16)
    assert feed_all(tracker, [(0, 65_500), (200, 100)], rate=1.0) == [0, 136]


def test_explicit_settings_rollover_and_max_rate() -> None:
    """A 6-digit counter (rollover 1,000,000) with no rate known wraps when under half its range;
    an energy meter with max_rate 0.5 kWh/s judges a drop by that rate, whatever PRU is passed."""
    six_digits = CounterTracker(width_bits=32, rollover=1_000_000)
    assert feed_all(six_digits, [(0, 999_990), (10, 10), (20, 500_000), (30, 10)]) == [0, 20, 499_990, 10]
    assert (six_digits.wraps, six_digits.resets) == (1, 1)
    meter = CounterTracker(width_bits=16, max_rate=0.5)
    # 65,530 → 2 in 20 s: +8 ≤ 1.5 × 0.5 × 20 + 1 = 16 → wrap; the passed rate 1000/s is ignored.
    assert feed_all(meter, [(0, 65_530), (20, 2), (40, 65_000), (60, 3)], rate=1000.0) == [0, 8, 64_998, 3]
    assert (meter.wraps, meter.resets) == (1, 1)


def test_increase_is_spread_over_the_interval_between_readings() -> None:
    """100 at 0, Bad at 10 and 20, 130 at 30: +30 spread over [0, 30], 1 per second."""
    tracker = CounterTracker()
    tracker.feed(0, 100)
    assert tracker.feed(10, None, ok=False) == 0
    assert tracker.feed(20, 999, ok=False) == 0  # a Bad value is not trusted
    assert tracker.feed(30, 130) == 30
    assert tracker.increase_between(0, 10) == 10
    assert tracker.increase_between(10, 30) == 20
    assert tracker.increase_between(30, 31) == 0


def test_a_reading_at_a_window_end_belongs_to_that_window() -> None:
    """Readings at 06:00, 10:00 and 14:00 (+14,400 each): the 06:00–14:00 shift gets all 28,800."""
    six, ten, two = 6 * 3600.0, 10 * 3600.0, 14 * 3600.0
    tracker = CounterTracker(width_bits=32)
    feed_all(tracker, [(six, 0), (ten, 14_400), (two, 28_800)])
    assert tracker.increase_between(six, two) == 28_800
    assert tracker.increase_between(two, two + 8 * 3600) == 0
    assert tracker.increase_between(six, ten) == 14_400


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
    """Parts made while parklink was down are spread from the last reading to the next one."""
    tracker = CounterTracker(width_bits=32)
    feed_all(tracker, [(0, 10), (60, 40)])
    restored = CounterTracker(width_bits=32)
    restored.restore(json.loads(json.dumps(tracker.state())))
    assert restored.feed(600, 100) == 60
    assert restored.increase_between(0, 600) == 90
    assert restored.increase_between(60, 330) == 30  # half of (60, 600]
    assert restored.total == 90


def test_a_state_saved_before_spreading_reads_as_steps() -> None:
    """A saved series of the step format (no `shape`) keeps its meaning: a step at each point."""
    old = {"resolution": 1.0, "total": 8.0, "base": 0.0, "times": [10.0, 20.0], "cum": [5.0, 8.0]}
    series = Cumulative.from_state(old)
    assert series.between(0, 10) == 0 and series.between(10, 11) == 5
    assert series.between(11, 20) == 0 and series.between(20, 21) == 3 and series.between(0, 30) == 8


def test_resolution_bounds_memory_and_prune_forgets() -> None:
    """Points sit on whole multiples of the resolution; increments inside a bucket make one step."""
    series = Cumulative(resolution=10.0)
    series.add(25.0, 4.0, since=5.0)  # [0, 20] on the grid: 2 per 10 s
    assert series.between(0, 10) == 2 and series.between(10, 20) == 2 and series.between(20, 30) == 0
    series.add(27.0, 1.0, since=25.0)  # inside the bucket of 20: a step there
    series.add(29.0, 1.0, since=27.0)  # the same step grows
    assert len(series) == 3
    assert series.between(10, 20) == 2 and series.between(20, 30) == 2 and series.total == 6
    series.prune(20)
    assert series.between(0, 30) == 2  # what lay before 20 reads as nothing
    series.prune(25)
    assert len(series) == 1 and series.between(0, 30) == 0 and series.total == 6


# -- properties ------------------------------------------------------------------------------------
_steps = st.lists(st.tuples(st.integers(1, 100), st.floats(0, 1), st.booleans()), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([16, 32]), st.integers(0, 2**32 - 1), _steps)
def test_wraps_count_exactly_and_resets_never_invent_more_than_the_rate_allows(
    width: int, start: int, steps: list[tuple[int, float, bool]]
) -> None:
    """A machine at most at its rate (1 part/s), read every 1–100 s, its register wrapping, its
    PLC sometimes restarting (the reading after a restart is what it counted since; a restart that
    leaves the value higher than before cannot be seen by anyone, so it is not generated).

    - the tracker never credits fewer parts than were made;
    - it credits more only for a restart that looks like a wrap (value just below the top), and by
      at most what the rate allows in that interval (1.5 × elapsed + 1);
    - with no restart from that top band it credits exactly what was made.
    """
    modulus = 1 << width
    value, t, made = start % modulus, 0, 0
    tracker = CounterTracker(width_bits=width)
    tracker.feed(t, value, True, 1.0)
    allowance, ambiguous = 0.0, False
    for elapsed, share, restart in steps:
        parts = int(elapsed * share)  # ≤ 1 part/s
        t += elapsed
        made += parts
        bound = 1.5 * elapsed + 1
        if restart and parts < value:  # a restart shows as a drop (else no one can see it)
            ambiguous |= parts + modulus - value <= bound
            allowance += bound
            value = parts
        else:
            value = (value + parts) % modulus
        tracker.feed(t, value, True, 1.0)
    assert made <= tracker.total <= made + allowance
    if not ambiguous:
        assert tracker.total == made


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**16 - 1), _steps)
def test_without_a_rate_no_part_is_invented(start: int, steps: list[tuple[int, float, bool]]) -> None:
    """No rate known and no explicit rollover: whatever happens, never more than was made."""
    value, t, made = start, 0, 0
    tracker = CounterTracker(width_bits=16)
    tracker.feed(t, value)
    for elapsed, share, restart in steps:
        parts = int(elapsed * share * 1000)  # any speed
        t += elapsed
        made += parts
        value = parts % 65_536 if restart else (value + parts) % 65_536
        tracker.feed(t, value)
    assert tracker.total <= made


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 500), st.integers(0, 400)), min_size=1, max_size=40),
    st.data(),
)
def test_window_edges_on_readings_get_exactly_the_readings_difference(
    steps: list[tuple[int, int]], data: st.DataObject
) -> None:
    """For windows whose edges are reading times, the increase is the difference of the readings
    (a reading at the end belongs to the window); any split of a window adds up to the whole."""
    tracker = CounterTracker(width_bits=32)
    times, values = [0], [0]
    tracker.feed(0, 0)
    for elapsed, inc in steps:
        times.append(times[-1] + elapsed)
        values.append(values[-1] + inc)
        tracker.feed(times[-1], values[-1])
    i = data.draw(st.integers(0, len(times) - 1))
    j = data.draw(st.integers(i, len(times) - 1))
    assert tracker.increase_between(times[i], times[j]) == pytest.approx(values[j] - values[i], abs=1e-6)
    cut = data.draw(st.floats(times[i], times[j]))
    left, right = tracker.increase_between(times[i], cut), tracker.increase_between(cut, times[j])
    assert left + right == pytest.approx(values[j] - values[i], abs=1e-6)
