"""KPI truth through ordinary plant events: PLC restarts, communication loss, parklink restarts,
planned breaks, window starts and readings at a window's end.

Every expected value is worked by hand from the scenario (exact fractions where it helps), never
taken from parklink's own functions.
"""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.park import Park, SignalRef
from models.sample import bad, good
from models.status import BAD_NO_COMMUNICATION
from orchestrator.kpi import KpiEngine, ShiftCalendar, ShiftSpec, Window
from tests.kpi.builders import SignalDef, asset_ref, at, index_of, make_park

MIN = 60.0
HOUR = 3600.0
PATH = "acme/north/line-1/m1"
RUNNING, DOWN, IDLE = 3, 1, 2  # demo MachineState codes: APT, ADET, ADOT


def machine(count_type: str = "uint32", pru: float = 1.0) -> Park:
    """One machine with a state and a good counter."""
    signals: list[SignalDef] = [
        ("state", "state", "uint16", ""),
        ("good_count", "good_count", count_type, ""),
    ]
    return make_park((asset_ref("m1", pru=pru), signals))


def feed_run(
    engine: KpiEngine,
    park: Park,
    start: float,
    end: float,
    count0: int,
    step: float = 1.0,
    modulus: int = 1 << 32,
) -> int:
    """Running at 1 part/s from `start` to `end`, read every `step` s; returns the last count."""
    state, count = index_of(park, "m1", "state"), index_of(park, "m1", "good_count")
    t, value = start, count0
    engine.feed([good(state, RUNNING, t), good(count, value % modulus, t)])
    while t + step <= end:
        t += step
        value += int(step)
        engine.feed([good(state, RUNNING, t), good(count, value % modulus, t)])
    return value


# -- 1. a counter reset is not a wrap ---------------------------------------------------------------
def test_plc_restart_of_a_uint16_counter_gives_the_true_parts_and_oee() -> None:
    """uint16 good counter at 43,000 (after 3,000 parts), PLC restart to 0, then 2,500 parts.

    1 part/s, PRU 1 s, running throughout, read every 10 s, 3,000 s + 10 s + 2,500 s = 5,510 s.
    Truth: 5,500 parts; E = 5,500 / 5,510 (the 10 s around the restart made none); OEE the same.
    """
    park = machine("uint16")
    engine = KpiEngine(park)
    feed_run(engine, park, 0, 3000, 40_000, step=10, modulus=65_536)
    state, count = index_of(park, "m1", "state"), index_of(park, "m1", "good_count")
    engine.feed([good(state, RUNNING, 3010), good(count, 0, 3010)])  # the PLC came back at 0
    feed_run(engine, park, 3010, 5510, 0, step=10, modulus=65_536)
    r = engine.result(PATH, 0, 5510, now=5510)
    assert r.elements.gq == 5_500
    assert r.effectiveness == pytest.approx(5_500 / 5_510)
    assert r.oee == pytest.approx(5_500 / 5_510)


def test_uint32_reset_adds_no_billion_parts() -> None:
    """uint32 at 3,000,016,321 → 0 (restart), then 600 parts in 600 s: truth 600 + 600 before."""
    park = machine("uint32")
    engine = KpiEngine(park)
    feed_run(engine, park, 0, 600, 3_000_015_721)
    feed_run(engine, park, 601, 1201, 0)
    r = engine.result(PATH, 0, 1201, now=1201)
    assert r.elements.gq == 1_200
    assert r.oee == pytest.approx(Fraction(1200, 1201), rel=1e-12)


def test_real_wrap_of_a_uint16_counter_counts_exactly() -> None:
    """From 65,000 for 2,000 s at 1 part/s: it wraps at 65,536 and reads 1,464; all 2,000 count."""
    park = machine("uint16")
    engine = KpiEngine(park)
    last = feed_run(engine, park, 0, 2000, 65_000, step=5, modulus=65_536)
    assert last % 65_536 == 1_464
    assert engine.elements(PATH, 0, 2000, now=2000).gq == 2_000


def test_max_rate_and_rollover_come_from_the_signal() -> None:
    """A 4-digit counter (rollover 10,000) without a PRU, max_rate 2/s: 9,990 → 10 in 10 s is a
    wrap of +20 (≤ 1.5 · 2 · 10 + 1); 5,000 → 10 is a reset (+10)."""
    ref = asset_ref("m1", pru=None)
    signals = [
        SignalRef(0, ref, "state", "state", "", "uint16", None),
        SignalRef(1, ref, "good_count", "good_count", "", "uint16", None, max_rate=2.0, rollover=10_000),
    ]
    park = Park("park", "p", {"acme": "acme"}, {("acme", "north"): "UTC"}, [ref], signals, [])
    engine = KpiEngine(park)
    for t, v in [(0, 9_990), (10, 10), (20, 5_000), (30, 10)]:
        engine.feed([good(0, RUNNING, t), good(1, v, t)])
    assert engine.elements(PATH, 0, 30, now=30).gq == 20 + 4_990 + 10


# -- 2. communication loss does not inflate effectiveness ------------------------------------------
def test_a_30_minute_gap_in_a_2_hour_shift() -> None:
    """1 part/s, PRU 1 s, 06:00–08:00, read every second; Bad 06:30–07:00; down 07:30–07:40.

    Observed 90 min: APT 80, ADET 10 → A = 80/90. Parts in observed running time: 80 × 60 = 4,800
    → E = 1, OEE = 4,800 / 5,400 = 8/9. The 1,800 parts made in the gap are unattributed; all
    6,600 parts are counted.
    """
    park = machine()
    engine = KpiEngine(park)
    state, count = index_of(park, "m1", "state"), index_of(park, "m1", "good_count")
    t0 = at("2026-03-02 06:00")
    value = feed_run(engine, park, t0, t0 + 30 * MIN, 0)
    lost = t0 + 30 * MIN
    engine.feed([bad(state, BAD_NO_COMMUNICATION, lost), bad(count, BAD_NO_COMMUNICATION, lost)])
    value = feed_run(engine, park, t0 + 60 * MIN, t0 + 90 * MIN, value + 30 * 60)
    engine.feed([good(state, DOWN, t0 + 90 * MIN)])  # same instant as the last reading: it wins
    feed_run(engine, park, t0 + 100 * MIN, t0 + 120 * MIN, value)
    r = engine.window_result(PATH, Window("shift", t0, t0 + 2 * HOUR), now=t0 + 2 * HOUR)
    e = r.elements
    assert (e.apt, e.adet, e.unknown) == (80 * MIN, 10 * MIN, 30 * MIN)
    assert (e.gq, e.unattributed_gq) == (4_800, 1_800)
    assert r.effectiveness == pytest.approx(1.0)
    assert r.availability == pytest.approx(Fraction(80, 90))
    assert r.oee == pytest.approx(Fraction(8, 9))


def test_a_parklink_restart_does_not_inflate_effectiveness() -> None:
    """Running 1 part/s, PRU 0.8 s (E = 0.8); parklink saves at 06:30 and is down 30 min."""
    park = machine(pru=0.8)
    first = KpiEngine(park)
    t0 = at("2026-03-02 06:00")
    value = feed_run(first, park, t0, t0 + 30 * MIN, 0)
    saved = json.loads(json.dumps(first.state(now=t0 + 30 * MIN)))
    resumed = KpiEngine(park)
    resumed.load_state(saved)  # the outage is UNKNOWN
    feed_run(resumed, park, t0 + 60 * MIN, t0 + 2 * HOUR, value + 30 * 60)
    r = resumed.result(PATH, t0, t0 + 2 * HOUR, now=t0 + 2 * HOUR)
    assert r.elements.apt == 90 * MIN and r.elements.unknown == 30 * MIN
    assert r.effectiveness == pytest.approx(0.8)
    assert r.elements.unattributed_gq == pytest.approx(30 * MIN)


_gaps = st.lists(st.tuples(st.integers(1, 1400), st.integers(1, 300)), max_size=5)


@settings(max_examples=100, deadline=None)
@given(_gaps, st.integers(0, 1439), st.integers(1, 1440), st.sampled_from([0.5, 1.0, 2.0]))
def test_constant_rate_machine_effectiveness_is_the_true_ratio(
    gaps: list[tuple[int, int]], w0: int, length: int, pru: float
) -> None:
    """1 part/s, read every 5 s over 2 h; any number, length and placement of Bad gaps (also across
    the window's edges): E = PRU × 1 part/s in every window with production time in it, and every
    part made inside the window is counted once, observed or unattributed."""
    park = machine(pru=pru)
    engine = KpiEngine(park)
    state, count = index_of(park, "m1", "state"), index_of(park, "m1", "good_count")
    lost = {k for start, n in gaps for k in range(start, min(start + n, 1440))}  # in 5 s steps
    batch = []
    for k in range(0, 1441):
        t = 5.0 * k
        if k in lost:
            batch += [bad(state, BAD_NO_COMMUNICATION, t), bad(count, BAD_NO_COMMUNICATION, t)]
        else:
            batch += [good(state, RUNNING, t), good(count, 5 * k, t)]
    engine.feed(batch)
    a, b = 5.0 * w0, min(5.0 * (w0 + length), 7200.0)
    r = engine.result(PATH, a, b, now=7200)
    if r.elements.apt > 0:
        assert r.effectiveness == pytest.approx(pru, rel=1e-9)
    assert r.elements.gq + r.elements.unattributed_gq == pytest.approx(b - a, abs=1e-6)


# -- 3. planned breaks are not failures; 4. the first TBF starts at the window start ----------------
def with_break(breaks: list[tuple[str, str]]) -> tuple[KpiEngine, Park, Window]:
    """An engine whose site has the shift 06:00–14:00 with these breaks; that shift of 2026-03-02."""
    park = machine()
    calendar = ShiftCalendar("Europe/Berlin", [ShiftSpec("early", "06:00", "14:00", breaks=breaks)])
    engine = KpiEngine(park, calendars={("acme", "north"): calendar})
    shift = calendar.current(at("2026-03-02 07:00"))
    assert shift is not None
    return engine, park, shift


def states(engine: KpiEngine, park: Park, changes: list[tuple[str, int]]) -> None:
    index = index_of(park, "m1", "state")
    for when, raw in changes:
        engine.feed([good(index, raw, at(f"2026-03-02 {when}"))])


def test_a_machine_down_for_a_planned_break_has_not_failed() -> None:
    """Runs from 06:00; a real failure 08:00–08:10; 'down' for the 10:00–10:30 break; runs to 14:00.

    One failure, TBF = 06:00 → 08:00 = 7,200 s, one repair of 600 s (not 2 failures, MTBF 3,300).
    """
    engine, park, shift = with_break([("10:00", "10:30")])
    states(
        engine,
        park,
        [("06:00", RUNNING), ("08:00", DOWN), ("08:10", RUNNING), ("10:00", DOWN), ("10:30", RUNNING)],
    )
    r = engine.window_result(PATH, shift, now=shift.end)
    e = r.elements
    assert (e.failures, e.repairs) == (1, 1)
    assert (r.mtbf, r.mttr) == (7_200, 600)
    assert (e.adet, e.pdot) == (10 * MIN, 30 * MIN)


def test_running_through_a_break_adds_nothing_to_time_between_failures() -> None:
    """Failures at 09:00 (repaired 09:10) and 12:00 (repaired 12:05); it runs through 10:00–10:30.

    TBF₁ = 06:00 → 09:00 = 10,800 s; TBF₂ = 09:10 → 12:00 less the break = 10,200 − 1,800 = 8,400 s.
    MTBF = 9,600 s (not 10,500); MTTR = (600 + 300) / 2.
    """
    engine, park, shift = with_break([("10:00", "10:30")])
    states(
        engine,
        park,
        [("06:00", RUNNING), ("09:00", DOWN), ("09:10", RUNNING), ("12:00", DOWN), ("12:05", RUNNING)],
    )
    r = engine.window_result(PATH, shift, now=shift.end)
    assert r.elements.failures == 2
    assert (r.mtbf, r.mttr) == (9_600, 450)


def test_a_break_inside_a_repair_is_not_repair_time() -> None:
    """Down at 09:50, the 10:00–10:30 break, running again at 10:40: TTR = 10 + 10 min = 1,200 s."""
    engine, park, shift = with_break([("10:00", "10:30")])
    states(engine, park, [("06:00", RUNNING), ("09:50", DOWN), ("10:40", RUNNING)])
    r = engine.window_result(PATH, shift, now=shift.end)
    assert (r.elements.failures, r.elements.repairs, r.mttr) == (1, 1, 1_200)
    assert r.mtbf == 3 * HOUR + 50 * MIN


def test_idle_in_a_break_then_a_late_restart_is_no_failure() -> None:
    """Running, idle-as-delay (the machinery map's common case) through the break and 5 min after:
    no failure (the machine did not fail while up), the 5 min after the break are ADET."""
    engine, park, shift = with_break([("12:00", "12:30")])
    states(engine, park, [("06:00", RUNNING), ("12:00", DOWN), ("12:35", RUNNING)])
    e = engine.window_elements(PATH, shift, now=shift.end)
    assert (e.failures, e.repairs, e.adet) == (0, 0, 5 * MIN)


def test_the_first_tbf_of_a_window_starts_at_the_window_start() -> None:
    """Collection began 05:00; a failure at 05:30 (repaired 05:40), another at 07:00.

    The 06:00–14:00 shift's one failure has TBF 06:00 → 07:00 = 3,600 s: neither 05:00 → 07:00
    nor 05:40 → 07:00.
    """
    engine, park, shift = with_break([])
    states(
        engine,
        park,
        [("05:00", RUNNING), ("05:30", DOWN), ("05:40", RUNNING), ("07:00", DOWN), ("07:10", RUNNING)],
    )
    r = engine.window_result(PATH, shift, now=shift.end)
    assert (r.elements.failures, r.mtbf) == (1, 3_600)


# -- 6. a counter read exactly at a window's end belongs to that window -----------------------------
def test_readings_at_0600_1000_1400_give_the_shift_all_its_parts() -> None:
    """Good counter read at 06:00 (0), 10:00 (14,400) and 14:00 (28,800): the shift has 28,800."""
    engine, park, shift = with_break([])
    count = index_of(park, "m1", "good_count")
    for when, value in [("06:00", 0), ("10:00", 14_400), ("14:00", 28_800)]:
        engine.feed([good(count, value, at(f"2026-03-02 {when}"))])
    states(engine, park, [("06:00", RUNNING)])
    assert engine.window_elements(PATH, shift, now=shift.end).gq == 28_800
