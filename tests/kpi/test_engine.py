"""The engine façade: routing by role, quantity rules, PRU, composite states, restarts."""

from __future__ import annotations

import json

import pytest

from connectors.common.simulated_machine import SimulatedMachine
from models.park import Park
from models.sample import Sample, bad, good
from models.status import BAD_NO_COMMUNICATION, UNCERTAIN_LAST_USABLE_VALUE
from orchestrator.kpi import (
    MACHINERY,
    Elements,
    KpiEngine,
    Scope,
    ShiftCalendar,
    ShiftSpec,
    TimeElement,
    Window,
    rollup_results,
)
from tests.kpi.builders import STANDARD_SIGNALS, SignalDef, asset_ref, at, index_of, make_park

MIN = 60.0


def oee_com_park() -> Park:
    """One machine with a state, a total and a reject counter, PRU 1.0 s."""
    signals: list[SignalDef] = [
        ("state", "state", "uint16", ""),
        ("total_count", "total_count", "uint32", ""),
        ("scrap_count", "scrap_count", "uint32", ""),
    ]
    return make_park((asset_ref("m1", pru=1.0), signals))


def test_oee_com_example_end_to_end() -> None:
    """oee.com, 'OEE Calculation' worked example, through samples, a shift calendar and breaks.

    06:00–14:00 with breaks 2 × 15 min and a 30 min meal (planned production 420 min), 47 min
    down, ideal cycle 1.0 s, total 19,271, reject 423 → A 0.8881, P 0.8611, Q 0.9780, OEE 0.7479.
    There is no good counter, so GQ = total − reject. The counters are read at 06:00:00 and at
    14:00:00: a reading at the shift's end belongs to the shift (it counts what came before it).
    """
    park = oee_com_park()
    state, total, scrap = (index_of(park, "m1", n) for n in ("state", "total_count", "scrap_count"))
    engine = KpiEngine(park)
    calendar = ShiftCalendar(
        "Europe/Berlin",
        [
            ShiftSpec(
                "early", "06:00", "14:00", breaks=[("08:00", "08:15"), ("10:00", "10:15"), ("12:00", "12:30")]
            )
        ],
    )
    shift = calendar.current(at("2025-03-10 07:00"))
    assert shift is not None
    engine.feed([good(state, 3, at("2025-03-10 05:50")), good(total, 1000, at("2025-03-10 06:00"))])
    engine.feed([good(scrap, 77, at("2025-03-10 06:00"))])
    engine.feed([good(state, 0, at("2025-03-10 08:00")), good(state, 3, at("2025-03-10 08:15"))])
    engine.feed([good(state, 1, at("2025-03-10 09:00")), good(state, 3, at("2025-03-10 09:47"))])
    engine.feed(
        [good(total, 1000 + 19_271, at("2025-03-10 14:00")), good(scrap, 77 + 423, at("2025-03-10 14:00"))]
    )
    e = engine.window_elements("acme/north/line-1/m1", shift, now=shift.end)
    assert (e.apt, e.adet, e.pdot, e.unknown) == (373 * MIN, 47 * MIN, 60 * MIN, 0.0)
    assert (e.pq, e.gq, e.sq) == (19_271, 18_848, 423)
    r = engine.window_result("acme/north/line-1/m1", shift, now=shift.end)
    assert r.availability == pytest.approx(0.8881, abs=5e-5)
    assert r.effectiveness == pytest.approx(0.8611, abs=5e-5)
    assert r.quality == pytest.approx(0.9780, abs=5e-5)
    assert r.oee == pytest.approx(0.7479, abs=5e-5)
    assert e.failures == 1 and e.repairs == 1 and e.repair_time == 47 * MIN


def standard_engine(**kwargs: object) -> tuple[KpiEngine, Park]:
    """Two machines with state, good, scrap, energy and a role-less temperature."""
    park = make_park(
        (asset_ref("m1", pru=2.0), STANDARD_SIGNALS), (asset_ref("m2", pru=0.5), STANDARD_SIGNALS)
    )
    return KpiEngine(park, **kwargs), park  # type: ignore[arg-type]


def test_good_and_scrap_make_pq_and_roles_route_by_index() -> None:
    """Without a total counter PQ = GQ + SQ; ideal time uses each machine's PRU; energy in kWh."""
    engine, park = standard_engine()
    batch: list[Sample] = []
    for asset in ("m1", "m2"):
        i = {
            n: index_of(park, asset, n)
            for n in ("state", "good_count", "scrap_count", "energy", "temperature")
        }
        batch += [good(i["state"], 3, 0), good(i["good_count"], 10, 0), good(i["scrap_count"], 1, 0)]
        batch += [good(i["energy"], 5.0, 0), good(i["temperature"], 40.0, 0)]
        batch += [
            good(i["good_count"], 110, 300),
            good(i["scrap_count"], 6, 300),
            good(i["energy"], 6.5, 300),
        ]
    batch.append(good(999, 1, 10))  # an index the park does not have is skipped
    engine.feed(batch)
    e1 = engine.elements("acme/north/line-1/m1", 0, 600, now=600)
    assert (e1.apt, e1.pq, e1.gq, e1.sq, e1.energy) == (600, 105, 100, 5, 1.5)
    assert (e1.ideal_time, e1.ideal_good_time) == (210.0, 200.0)
    per_asset = engine.elements_by_asset(0, 600, now=600)
    line = rollup_results(per_asset)[Scope("line", "acme/north/line-1")]
    assert line.oee == pytest.approx((200.0 + 50.0) / 1200)
    assert engine.has_quantities("acme/north/line-1/m1")


def test_bad_quality_is_unknown_time_and_counters_catch_up() -> None:
    """A connection loss is UNKNOWN (coverage < 1), never down time; the parts counted across it
    are spread over (0, 160]: 0.5 per second, 50 in the observed [0, 100), 30 unattributed."""
    engine, park = standard_engine()
    state, count = index_of(park, "m1", "state"), index_of(park, "m1", "good_count")
    engine.feed([good(state, 3, 0), good(count, 0, 0)])
    engine.feed([bad(state, BAD_NO_COMMUNICATION, 100), bad(count, BAD_NO_COMMUNICATION, 100)])
    engine.feed([Sample(state, 3, 0, 0, 160), good(count, 80, 160)])  # old source time, received 160
    r = engine.result("acme/north/line-1/m1", 0, 200, now=200)
    e = r.elements
    assert (e.apt, e.unknown, e.adet, e.adot) == (140, 60, 0, 0)
    assert r.coverage == pytest.approx(0.7) and r.availability == 1.0
    assert (e.gq, e.unattributed_gq, e.pq, e.unattributed_pq) == (50, 30, 50, 30)
    assert r.effectiveness == pytest.approx(2.0 * 50 / 140)  # PRU 2 s: no gap parts set against APT


def test_uncertain_quality_is_configurable() -> None:
    """Uncertain samples count by default; with accept_uncertain=False they are UNKNOWN."""
    for accept, expected in ((True, TimeElement.APT), (False, TimeElement.UNKNOWN)):
        engine, park = standard_engine(accept_uncertain=accept)
        engine.feed([Sample(index_of(park, "m1", "state"), 3, UNCERTAIN_LAST_USABLE_VALUE, 0, 0)])
        assert engine.timeline("acme/north/line-1/m1").current is expected


def test_total_and_good_counters_and_rework() -> None:
    """With total and good counters: PQ = total, GQ = good; rework is reported, not added twice."""
    signals: list[SignalDef] = [
        ("state", "state", "int32", ""),
        ("total", "total_count", "uint32", ""),
        ("good", "good_count", "uint32", ""),
        ("rework", "rework_count", "uint32", ""),
    ]
    park = make_park((asset_ref("m1", pru=1.0), signals))
    engine = KpiEngine(park)
    i = {n: index_of(park, "m1", n) for n in ("state", "total", "good", "rework")}
    engine.feed(
        [good(i["state"], 3, 0), good(i["total"], 0, 0), good(i["good"], 0, 0), good(i["rework"], 0, 0)]
    )
    engine.feed([good(i["total"], 100, 50), good(i["good"], 90, 50), good(i["rework"], 4, 50)])
    e = engine.elements("acme/north/line-1/m1", 0, 100, now=100)
    assert (e.pq, e.gq, e.rq, e.ideal_time, e.ideal_good_time) == (100, 90, 4, 100, 90)


def test_pru_signal_changes_are_priced_per_increment() -> None:
    """The latest `ideal_cycle_time` value (here in ms) prices each increment; no PRU → unpriced."""
    signals: list[SignalDef] = [
        ("state", "state", "uint16", ""),
        ("good_count", "good_count", "uint32", ""),
        ("cycle", "ideal_cycle_time", "float64", "ms"),
    ]
    park = make_park((asset_ref("m1", pru=None), signals))
    engine = KpiEngine(park)
    state, count, cycle = (index_of(park, "m1", n) for n in ("state", "good_count", "cycle"))
    engine.feed([good(state, 3, 0), good(count, 0, 0), good(count, 10, 10)])  # no PRU known yet
    engine.feed([good(cycle, 2000.0, 20), good(count, 30, 30)])  # 20 parts at 2 s
    engine.feed([good(cycle, 500.0, 40), good(count, 70, 50)])  # 40 parts at 0.5 s
    e = engine.elements("acme/north/line-1/m1", 0, 100, now=100)
    assert (e.pq, e.unpriced_pq, e.ideal_time) == (70, 10, 60.0)
    assert engine.result("acme/north/line-1/m1", 0, 100, now=100).oee is None
    # From 20 on: half of the 20 parts read at 30 (counted over (10, 30]) at 2 s, then 40 at 0.5 s.
    later = engine.result("acme/north/line-1/m1", 20, 100, now=100)
    assert later.effectiveness == pytest.approx((10 * 2.0 + 40 * 0.5) / 80)
    assert engine.pru("acme/north/line-1/m1") == 0.5


def test_machinery_pairs_from_two_signals() -> None:
    """MACHINERY reads item_state and operation_mode; changes at one instant leave no phantom."""
    signals: list[SignalDef] = [
        ("item_state", None, "int32", ""),
        ("operation_mode", None, "int32", ""),
        ("good_count", "good_count", "uint32", ""),
    ]
    park = make_park((asset_ref("mill", type="cnc_mill"), signals))
    engine = KpiEngine(park, state_map={"cnc_mill": MACHINERY})
    item, mode = index_of(park, "mill", "item_state"), index_of(park, "mill", "operation_mode")
    engine.feed([good(item, 3, 0), good(mode, 3, 0)])  # Executing, Processing
    engine.feed([good(item, 2, 100), good(mode, 0, 100)])  # → NotExecuting, None at one instant
    engine.feed([good(item, 1, 200), good(mode, 3, 200)])  # OutOfService while an order runs
    e = engine.elements("acme/north/line-1/mill", 0, 300, now=300)
    assert (e.unknown, e.apt, e.adot, e.adet) == (0, 100, 100, 100)
    assert e.failures == 0  # (2, 3) never existed, so no failure from production at t=100


def test_configuration_errors() -> None:
    """A map needing absent signals, or two `state` signals, is an error naming the asset."""
    park = make_park((asset_ref("m1"), STANDARD_SIGNALS))
    with pytest.raises(ValueError, match=r"acme/north/line-1/m1.*missing item_state, operation_mode"):
        KpiEngine(park, state_map=MACHINERY)
    twice = make_park((asset_ref("m1"), [("a", "state", "uint16", ""), ("b", "state", "uint16", "")]))
    with pytest.raises(ValueError, match="several signals with role 'state'"):
        KpiEngine(twice)


def test_asset_without_counters_is_uncounted() -> None:
    """Availability-only machines carry `uncounted`, so their OEE is None, not 0."""
    park = make_park((asset_ref("m1"), [("state", "state", "uint16", "")]))
    engine = KpiEngine(park)
    engine.feed([good(0, 3, 0)])
    r = engine.result("acme/north/line-1/m1", 0, 60, now=60)
    assert r.availability == 1.0 and r.oee is None and r.elements.uncounted == 1


def simulate(machine: SimulatedMachine, park: Park, t0: float, t1: float, step: float) -> list[list[Sample]]:
    """Batches of the demo machine's state, counters and energy every `step` seconds."""
    i = {n: index_of(park, "m1", n) for n in ("state", "good_count", "scrap_count", "energy")}
    batches = []
    t = t0
    while t <= t1:
        machine.step(t)
        batches.append(
            [
                good(i["state"], int(machine.state), t),
                good(i["good_count"], machine.good_count, t),
                good(i["scrap_count"], machine.scrap_count, t),
                good(i["energy"], machine.energy_kwh, t),
            ]
        )
        t += step
    return batches


def test_restart_mid_shift_gives_the_uninterrupted_result() -> None:
    """state() → JSON → load_state() in a fresh engine mid-shift: the shift result is identical."""
    park = make_park((asset_ref("m1", pru=2.0), STANDARD_SIGNALS))
    shift = Window(
        "shift",
        at("2025-03-10 06:00"),
        at("2025-03-10 14:00"),
        ((at("2025-03-10 10:00"), at("2025-03-10 10:15")),),
    )
    batches = simulate(
        SimulatedMachine("m1", ideal_cycle_time=2.0, seed=7), park, shift.start - 60, shift.end, 5.0
    )
    half = len(batches) // 2
    uninterrupted, before_restart = KpiEngine(park), KpiEngine(park)
    for batch in batches[:half]:
        uninterrupted.feed(batch)
        before_restart.feed(batch)
    saved = json.loads(json.dumps(before_restart.state(now=batches[half - 1][0].source_time)))
    resumed, resumed_gap = KpiEngine(park), KpiEngine(park)
    resumed.load_state(saved, mark_gap=False)
    resumed_gap.load_state(saved)
    for batch in batches[half:]:
        for engine in (uninterrupted, resumed, resumed_gap):
            engine.feed(batch)
    path = "acme/north/line-1/m1"
    expected = uninterrupted.window_elements(path, shift, now=shift.end)
    assert resumed.window_elements(path, shift, now=shift.end) == expected
    assert expected.gq > 1000 and expected.failures > 0 and expected.pdot > 15 * MIN
    # By default the outage (here one 5 s poll) is UNKNOWN instead of the last state stretched.
    with_gap = resumed_gap.window_elements(path, shift, now=shift.end)
    assert with_gap.unknown == expected.unknown + 5.0
    assert with_gap.gq == expected.gq


def test_resume_without_gap_ignores_what_the_source_plays_again() -> None:
    """Resumed without a gap (the data clock) and fed the record again from its start (a replay
    restarts from its first sample), the engine never departs from the uninterrupted one, also when
    the save fell while the state was UNKNOWN: an old Good sample played again must not end that gap
    (not even until the sample that caused it is played again too)."""
    park = make_park((asset_ref("m1", pru=2.0), STANDARD_SIGNALS))
    state, count = index_of(park, "m1", "state"), index_of(park, "m1", "good_count")
    t0 = at("2025-03-10 06:00")
    save = t0 + 40 * MIN  # the state has been UNKNOWN for ten minutes
    record = [
        [good(state, 2, t0), good(count, 100, t0)],  # waiting for an order
        [good(state, 3, t0 + 10 * MIN)],
        [good(count, 400, t0 + 30 * MIN), bad(state, BAD_NO_COMMUNICATION, t0 + 30 * MIN)],
        [good(state, 3, t0 + 50 * MIN), good(count, 450, t0 + 50 * MIN)],
        [good(state, 1, t0 + 70 * MIN), good(count, 800, t0 + 70 * MIN)],
    ]
    uninterrupted = KpiEngine(park)
    for batch in record[:3]:
        uninterrupted.feed(batch)
    saved = json.loads(json.dumps(uninterrupted.state(now=save)))
    resumed, resumed_gap = KpiEngine(park), KpiEngine(park)
    resumed.load_state(saved, mark_gap=False)
    resumed_gap.load_state(saved)
    path, end = "acme/north/line-1/m1", t0 + 80 * MIN
    for batch in record:
        now = max(save, batch[0].source_time)
        if now > save:
            uninterrupted.feed(batch)
        resumed.feed(batch)
        resumed_gap.feed(batch)
        assert resumed.elements(path, t0, end, now=now) == uninterrupted.elements(path, t0, end, now=now)
    expected = uninterrupted.elements(path, t0, end, now=end)
    # The 50 parts read at 50 min were counted over (30, 50] min, all UNKNOWN: set apart.
    assert expected.unknown == 20 * MIN and (expected.gq, expected.unattributed_gq) == (650, 50)
    assert resumed.elements(path, t0, end, now=end) == expected
    # With a gap (the wall clock), the first old Good sample ends the gap at the save: right for a
    # device re-sending its current value on reconnect, wrong for a replay (here 10 min of ADOT).
    with_gap = resumed_gap.elements(path, t0, end, now=end)
    assert (with_gap.unknown, with_gap.adot) == (10 * MIN, expected.adot + 10 * MIN)


def test_prune_keeps_recent_windows_exact() -> None:
    """Pruning old history leaves windows after the prune point unchanged."""
    park = make_park((asset_ref("m1", pru=2.0), STANDARD_SIGNALS))
    batches = simulate(SimulatedMachine("m1", seed=3), park, 0, 7200, 10.0)
    engine = KpiEngine(park)
    for batch in batches:
        engine.feed(batch)
    path = "acme/north/line-1/m1"
    before = engine.elements(path, 3600, 7200, now=7200)
    engine.prune(3600)
    assert engine.elements(path, 3600, 7200, now=7200) == before
    assert engine.elements(path, 0, 3600, now=7200) == Elements(unknown=3600)
