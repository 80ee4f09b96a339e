"""State timeline: window-edge splitting, gaps, ordering rules, failures, pruning, persistence."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.kpi import DEMO_MACHINE_STATE, Elements, StateTimeline, TimeElement, compute

APT, AUST, ADET, ADOT, PDOT, UNKNOWN = (
    TimeElement.APT,
    TimeElement.AUST,
    TimeElement.ADET,
    TimeElement.ADOT,
    TimeElement.PDOT,
    TimeElement.UNKNOWN,
)
RUNNING, DOWN, IDLE, SETUP, PLANNED = 3, 1, 2, 4, 0  # demo MachineState codes


def nonzero(d: dict[TimeElement, float]) -> dict[TimeElement, float]:
    """Only the buckets with time in them."""
    return {k: v for k, v in d.items() if v}


def timeline(*changes: tuple[float, TimeElement]) -> StateTimeline:
    """A timeline fed with already-mapped elements."""
    tl = StateTimeline()
    for t, element in changes:
        tl.set(t, element)
    return tl


def test_durations_split_exactly_at_window_edges() -> None:
    """A state holds until the next change; windows cut segments, the open one runs to `now`."""
    tl = StateTimeline(DEMO_MACHINE_STATE)
    for t, raw in [(0, RUNNING), (50, RUNNING), (100, DOWN), (130, RUNNING)]:
        tl.feed(t, raw)
    assert nonzero(tl.elements_between(50, 120, now=200)) == {APT: 50, ADET: 20}
    assert nonzero(tl.elements_between(120, 250, now=200)) == {ADET: 10, APT: 70}  # cut at now
    assert nonzero(tl.elements_between(-30, 10, now=200)) == {UNKNOWN: 30, APT: 10}  # before data
    assert nonzero(tl.elements_between(300, 400, now=200)) == {}  # the future is not observed
    whole = tl.elements_between(0, 200, now=200)
    halves = [tl.elements_between(0, 115, 200), tl.elements_between(115, 200, 200)]
    assert whole == {k: halves[0][k] + halves[1][k] for k in TimeElement}


def test_communication_gap_is_unknown_not_downtime() -> None:
    """Bad quality from 100 to 160 s: coverage 0.7, no ADET/ADOT invented, availability stays 1."""
    tl = StateTimeline()
    tl.feed(0, RUNNING)
    tl.feed(100, None, ok=False)
    tl.feed(130, RUNNING, ok=False)  # a value with Bad status is not trusted either
    tl.feed(160, RUNNING)
    d = tl.elements_between(0, 200, now=200)
    assert nonzero(d) == {APT: 140, UNKNOWN: 60}
    r = compute(Elements.from_durations(d))
    assert r.coverage == pytest.approx(0.7)
    assert r.availability == 1.0
    assert tl.failures_between(0, 200).failures == 0


def test_explicit_gap_and_unmapped_state() -> None:
    """`gap(at)` and state codes the map does not know are UNKNOWN."""
    tl = StateTimeline()
    tl.feed(0, RUNNING)
    tl.gap(50)
    tl.feed(80, 99)  # unmapped code
    tl.feed(90, IDLE)
    assert nonzero(tl.elements_between(0, 100, now=100)) == {APT: 50, UNKNOWN: 40, ADOT: 10}


def test_out_of_order_samples_are_ignored() -> None:
    """A sample older than the last accepted one must not rewrite history."""
    tl = StateTimeline()
    assert tl.feed(10, RUNNING)
    assert tl.feed(20, DOWN)
    assert not tl.feed(15, IDLE)
    assert nonzero(tl.elements_between(0, 30, now=30)) == {UNKNOWN: 10, APT: 10, ADET: 10}


def test_old_value_after_a_gap_ends_the_gap_when_received() -> None:
    """OPC UA re-sends a value stamped with its last change: it ends the gap when it arrives."""
    tl = StateTimeline()
    tl.feed(0, RUNNING)
    tl.feed(100, None, ok=False)  # connection lost
    assert not tl.feed(0, RUNNING)  # without a receive time it is just old
    assert tl.feed(0, RUNNING, received=150)  # reconnect at 150: value unchanged since t=0
    assert nonzero(tl.elements_between(0, 200, now=200)) == {APT: 150, UNKNOWN: 50}
    assert not tl.feed(10, DOWN, received=210)  # no longer in a gap: ignored


def test_equal_timestamps_last_wins_without_phantom_failure() -> None:
    """Two samples at one instant: the later one fed wins; no zero-length failure is recorded."""
    tl = StateTimeline()
    tl.feed(0, RUNNING)
    tl.feed(100, DOWN)
    tl.feed(100, RUNNING)  # corrected at the same instant
    tl.feed(200, IDLE)
    tl.feed(200, SETUP)
    tl.feed(200, IDLE)
    assert nonzero(tl.elements_between(0, 300, now=300)) == {APT: 200, ADOT: 100}
    assert tl.failures_between(0, 300).failures == 0
    assert len(tl) == 2


def test_mtbf_mttr_from_known_episodes() -> None:
    """Failures: APT→ADET at 100 (TBF 100, TTR 10), at 300 (TBF 190, TTR 30), at 700 (TBF 270).

    TBF counts setup + production only: after the 2nd repair 20 s setup + 150 s run, then 100 s
    no order (not counted), then 100 s run → 270 s. The 3rd failure is still open: no TTR yet.
    """
    tl = timeline(
        (0, APT), (100, ADET), (110, APT), (300, ADET), (330, AUST), (350, APT),
        (500, ADOT), (600, APT), (700, ADET),
    )  # fmt: skip
    assert tl.failure_events() == [(100, 100), (300, 190), (700, 270)]
    assert tl.repair_events() == [(110, 10), (330, 30)]
    stats = tl.failures_between(0, 800)
    e = Elements(apt=100, failures=stats.failures, tbf_seconds=stats.tbf_seconds)
    e = e + Elements(repairs=stats.repairs, repair_time=stats.repair_time)
    r = compute(e)
    assert r.mtbf == pytest.approx((100 + 190 + 270) / 3)
    assert r.mttr == pytest.approx((10 + 30) / 2)
    # Windows get the events whose instant they hold: [0, 300) has one failure and one repair.
    assert tl.failures_between(0, 300) == (1, 100, 1, 10)
    # A window's first TBF starts at its start: the failure at 300 has 0 s of it, the one at 700 270.
    assert tl.failures_between(300, 800) == (2, 270, 1, 30)
    assert tl.failures_between(50, 800) == (3, 50 + 190 + 270, 2, 40)


def test_what_is_and_is_not_a_failure() -> None:
    """Delay after no-order is not a failure; APT → UNKNOWN → ADET is; TTR skips UNKNOWN time."""
    tl = timeline((0, ADOT), (10, ADET), (20, APT), (50, UNKNOWN), (60, ADET), (70, UNKNOWN), (90, ADET))
    tl.set(100, APT)
    assert tl.failure_events() == [(60, 30)]
    assert tl.repair_events() == [(100, 20)]  # 10 s + 10 s of observed ADET; the gap is not repair time


def test_prune_forgets_history_but_keeps_the_present() -> None:
    """After prune(t), time before t reads UNKNOWN; the current state and later events remain."""
    tl = timeline((0, APT), (100, ADET), (110, APT), (300, ADET), (330, APT))
    tl.prune(200)
    assert nonzero(tl.elements_between(0, 400, now=400)) == {UNKNOWN: 200, APT: 170, ADET: 30}
    assert tl.failure_events() == [(300, 190)]
    assert len(tl) == 3
    tl.prune(1000)  # beyond the last change: the open state survives
    assert tl.current is APT
    tl.set(1100, ADET)
    assert nonzero(tl.elements_between(1000, 1200, now=1200)) == {APT: 100, ADET: 100}
    assert tl.failure_events()[-1] == (1100, 770)


def test_state_roundtrip_through_json() -> None:
    """A timeline rebuilt from `state()` continues exactly like the original, revert included."""
    original = timeline((0, APT), (100, ADET), (110, APT), (300, ADET))
    copy = StateTimeline.from_state(json.loads(json.dumps(original.state())))
    for tl in (original, copy):
        tl.set(300, APT)  # same instant as the last change: reverts the failure
        tl.set(400, ADET)
        tl.set(450, AUST)
    assert copy.elements_between(0, 500, 500) == original.elements_between(0, 500, 500)
    assert copy.failure_events() == original.failure_events() == [(100, 100), (400, 290)]
    assert copy.repair_events() == original.repair_events()


changes = st.lists(
    st.tuples(st.integers(0, 1000), st.sampled_from(list(TimeElement))), min_size=0, max_size=40
)


@settings(max_examples=200, deadline=None)
@given(
    changes, st.integers(-100, 1200), st.integers(-100, 1200), st.integers(-100, 1200), st.integers(0, 1300)
)
def test_windows_are_additive(feed: list[tuple[int, TimeElement]], a: int, b: int, c: int, now: int) -> None:
    """Elements over [t0, t2] equal the sum over [t0, t1] and [t1, t2]; so do failure stats."""
    t0, t1, t2 = sorted((a, b, c))
    tl = StateTimeline()
    for t, element in sorted(feed, key=lambda x: x[0]):
        tl.set(t, element)
    whole = tl.elements_between(t0, t2, now)
    left, right = tl.elements_between(t0, t1, now), tl.elements_between(t1, t2, now)
    assert whole == {k: left[k] + right[k] for k in TimeElement}
    assert sum(whole.values()) == max(0, min(t2, now) - t0)
    f, fl, fr = tl.failures_between(t0, t2), tl.failures_between(t0, t1), tl.failures_between(t1, t2)
    assert f.failures == fl.failures + fr.failures and f.repairs == fl.repairs + fr.repairs
    assert f.repair_time == fl.repair_time + fr.repair_time
    # TBF is not additive: a window's TBFs are its up time from its start to its last failure.
    failures = [t for t, _ in tl.failure_events() if t0 <= t < t2]
    if failures:
        up = tl.elements_between(t0, failures[-1], failures[-1])
        assert f.tbf_seconds == up[TimeElement.APT] + up[TimeElement.AUST]
    else:
        assert f.tbf_seconds == 0
