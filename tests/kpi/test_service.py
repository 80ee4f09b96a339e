"""The KPI service: a hand-computed shift end to end, persistence, restart mid-shift, catch-up."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from models.park import Park
from models.sample import Sample
from models.status import GOOD
from models.store import create_tables
from models.tables import KpiResultRow
from orchestrator.config import load_config
from orchestrator.kpi.service import KpiService, save_results
from tests.fakes import FAKE_KIND

CONFIG = """\
park: {id: p}
asset_types:
  press:
    ideal_cycle_time: 60            # one part a minute
    signals:
      state: {role: state, binding: {address: s}}
      good_count: {role: good_count, type: uint32, binding: {address: g}}
      scrap_count: {role: scrap_count, type: uint32, binding: {address: x}}
companies:
  - id: acme
    connections: {dev: {kind: fake}}
    sites:
      - id: s
        timezone: UTC
        shifts: [{name: early, start: "06:00", end: "14:00", breaks: ["10:00-10:15"]}]
        lines: [{id: l, assets: [{id: m1, type: press, connection: dev}]}]
"""


def at(hhmm: str) -> float:
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(2026, 3, 2, hours, minutes, tzinfo=UTC).timestamp()  # a Monday


# The shift, as the machine reports it: running, down 08:00-08:30, running; 400 good, 20 scrap.
STATE, GOOD_COUNT, SCRAP = 0, 1, 2
SHIFT_SAMPLES = [
    (at("06:00"), [(STATE, 3), (GOOD_COUNT, 0), (SCRAP, 0)]),
    (at("08:00"), [(STATE, 1), (GOOD_COUNT, 110), (SCRAP, 10)]),
    (at("08:30"), [(STATE, 3)]),
    (at("10:07"), [(GOOD_COUNT, 250)]),  # during the break; restart tests cut here
    (at("13:59"), [(GOOD_COUNT, 400), (SCRAP, 20)]),
]


@pytest.fixture
def park(tmp_path: Path) -> Park:
    (tmp_path / "p.yaml").write_text(textwrap.dedent(CONFIG))
    return load_config(tmp_path / "p.yaml", {"fake": FAKE_KIND}).park


@pytest.fixture
def db(engine: Engine) -> Iterator[Engine]:
    create_tables(engine)
    yield engine


def feed(service: KpiService, until: float, since: float = 0.0) -> None:
    for t, values in SHIFT_SAMPLES:
        if since <= t < until:
            service.engine.feed([Sample(signal, value, GOOD, t, t) for signal, value in values])


def service_at(park: Park, db: Engine | None, now: float) -> KpiService:
    clock = [now]
    service = KpiService(park, db, clock=lambda: clock[0])
    service.closed_until = at("05:00")
    return service


def shift_rows(db: Engine) -> list[KpiResultRow]:
    with Session(db) as session:
        return list(session.exec(select(KpiResultRow).where(KpiResultRow.window_kind == "shift")).all())


def expected_shift_kpis() -> dict[str, float]:
    """Hand-computed: window 480 min, break 15 min (PDOT), down 30 min (ADET), PRU 1 min."""
    apt, pbt = 435.0, 465.0  # 120 + 315 running minutes; 480 - 15
    return {
        "availability": apt / pbt,
        "effectiveness": 420.0 / apt,  # 420 parts × 1 min ideal
        "quality": 400.0 / 420.0,
        "oee": 400.0 / pbt,  # ideal time of good parts / PBT
        "mtbf": 120 * 60.0,  # production before the one failure
        "mttr": 30 * 60.0,
    }


async def test_shift_closed_persisted_once_with_hand_computed_kpis(park: Park, db: Engine) -> None:
    service = service_at(park, db, at("14:00"))
    feed(service, at("14:00"))
    await service.close_windows(at("14:00") + 10)
    await service.close_windows(at("14:00") + 20)  # nothing new

    rows = shift_rows(db)
    by_level = {r.level: r for r in rows}
    assert set(by_level) == {"asset", "line", "site", "company", "park"}
    asset = by_level["asset"]
    assert asset.window_label == "shift:early:2026-03-02"
    for name, value in expected_shift_kpis().items():
        assert asset.kpis[name] == pytest.approx(value), name
    assert asset.coverage == pytest.approx(1.0)
    assert by_level["park"].oee == pytest.approx(asset.oee)  # one asset: every level agrees
    # Re-closing the same window (a catch-up, a replay) replaces rows, never duplicates them.
    again = service.results_for(
        service.ended_windows("shift", at("13:00"), at("14:01")), "shift", at("14:01")
    )
    save_results(db, again)
    assert len(shift_rows(db)) == len(rows)


async def test_restart_mid_shift_gives_the_uninterrupted_result(park: Park, db: Engine) -> None:
    first = service_at(park, db, at("10:05"))
    feed(first, at("10:05"))
    await first.save_state(at("10:05"))  # parklink stops here, in the break…
    second = service_at(park, db, at("10:06"))  # …and is back a minute later
    await second.resume()
    # On reconnect, devices report every current value (OPC UA initial values, a Modbus poll).
    back = at("10:06")
    second.engine.feed([Sample(STATE, 3, GOOD, back, back), Sample(GOOD_COUNT, 245, GOOD, back, back)])
    feed(second, at("14:00"), since=at("10:05"))
    results = await second.close_windows(at("14:00") + 10)
    asset = next(r for r in results if r.window_kind == "shift" and r.level == "asset")
    for name, value in expected_shift_kpis().items():
        assert getattr(asset.result, name) == pytest.approx(value), name


async def test_windows_that_ended_while_down_are_caught_up(park: Park, db: Engine) -> None:
    first = service_at(park, db, at("09:00"))
    feed(first, at("09:00"))
    first.closed_until = at("09:00")
    await first.save_state(at("09:00"))
    later = service_at(park, db, at("15:00"))  # down across the end of the shift
    await later.resume()
    (asset,) = [r for r in shift_rows(db) if r.level == "asset"]
    assert asset.coverage is not None and 0.3 < asset.coverage < 0.7  # 06:00-09:00 seen of 465 min
    assert asset.elements["adet"] == pytest.approx(30 * 60.0)  # the outage is not downtime
    assert asset.elements["unknown"] > 4 * 3600


def test_current_windows_and_cumulative_counters(park: Park) -> None:
    service = service_at(park, None, at("09:00"))
    feed(service, at("09:00"))
    service.update(at("08:45"))
    service.update(at("09:00"))
    current = {(r.window_kind, r.level): r for r in service.current}
    shift = current[("shift", "asset")].result
    assert shift.availability == pytest.approx(150 / 180)  # running 06:00-08:00 and 08:30-09:00
    assert current[("rolling_hour", "park")].result.coverage == pytest.approx(1.0)
    cumulative = service.cumulative["acme/s/l/m1"]
    assert cumulative.apt == pytest.approx(15 * 60.0)  # settled 08:44:55 → 08:59:55, all running
