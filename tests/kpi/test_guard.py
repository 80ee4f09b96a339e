"""The guard: physically impossible results are flagged `suspect`, with readable reasons, and the
flag reaches every scope above a suspect asset, the database and the log (once per asset)."""

from __future__ import annotations

import logging
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, select

from models.assets import KpiSettings
from models.park import Park
from models.sample import Sample
from models.status import GOOD
from models.store import create_tables
from models.tables import KpiResultRow
from orchestrator.config import load_config
from orchestrator.kpi.elements import Elements
from orchestrator.kpi.formulas import compute
from orchestrator.kpi.guard import DEFAULT_MAX_EFFECTIVENESS, SuspectLog, flag, suspect_reasons
from orchestrator.kpi.results import scoped_results
from orchestrator.kpi.service import KpiService
from orchestrator.kpi.windows import Window
from tests.fakes import FAKE_KIND
from tests.kpi.builders import asset_ref

HOUR = Window("hour:2026-03-02T08", 0.0, 3600.0, kind="hour")


def inflated() -> Elements:
    """An hour of a press (PRU 1.5 s): 40 min running, 10 min delay, 10 min without an order.

    Its uint16 part counter stood at 60,000 after 264 parts of the hour when an operator reset it;
    it counted 1,000 more. Read as a register wrap, that drop is (1,000 − 60,000) mod 65,536 = 6,536
    parts instead of 1,000: PQ = 264 + 6,536 = 6,800 (all good, no scrap counter).
    APT = 2,400 s, PBT = 2,400 + 600 + 600 = 3,600 s, ideal time = 1.5 · 6,800 = 10,200 s.
    E = 10,200 / 2,400 = 4.25; OEE = 10,200 / 3,600 = 2.833; quality = 1; A = 0.667.
    """
    pq = 264 + (1_000 - 60_000) % 65_536
    assert pq == 6_800
    return Elements(
        apt=2_400, adet=600, adot=600, pq=pq, gq=pq, ideal_time=1.5 * pq, ideal_good_time=1.5 * pq
    )


def clean(apt: float = 3_000, pq: float = 2_700, gq: float = 2_600) -> Elements:
    """A plausible hour, PRU 1 s."""
    return Elements(apt=apt, adet=3_600 - apt, pq=pq, gq=gq, sq=pq - gq, ideal_time=pq, ideal_good_time=gq)


def test_an_inflated_counter_gives_effectiveness_4_25_and_is_suspect() -> None:
    result = compute(inflated())
    assert result.effectiveness == pytest.approx(4.25)
    assert result.oee == pytest.approx(10_200 / 3_600)
    assert result.quality == 1.0 and result.availability == pytest.approx(2 / 3)
    assert suspect_reasons(result, 1.5) == ("effectiveness 4.25 > 1.5", "oee 2.83 > 1")
    assert suspect_reasons(result) == suspect_reasons(result, DEFAULT_MAX_EFFECTIVENESS)
    # A looser bound lets the effectiveness pass; OEE above 1 is impossible whatever the PRU.
    assert suspect_reasons(result, 5.0) == ("oee 2.83 > 1",)


def test_oee_above_one_with_a_plausible_effectiveness_is_suspect() -> None:
    """An hour: 3,400 s running, 200 s delay (PBT 3,600 s), PRU 1 s, 4,392 good parts counted.

    E = 4,392 / 3,400 = 1.292 (a generous PRU, below the bound: not a reason by itself);
    OEE = 4,392 / 3,600 = 1.22: more ideal time of good parts than planned busy time.
    """
    e = Elements(apt=3_400, adet=200, pq=4_392, gq=4_392, ideal_time=4_392, ideal_good_time=4_392)
    result = compute(e)
    assert result.effectiveness == pytest.approx(1.2918, abs=1e-4)
    assert suspect_reasons(result, 1.5) == ("oee 1.22 > 1",)


def test_a_classic_shift_is_not_suspect() -> None:
    """420 min planned, 47 min down, ideal cycle 1.0 s, 19,271 parts of which 423 rejects.

    APT = 373 min = 22,380 s, PBT = 25,200 s; A = 22,380 / 25,200 = 0.8881,
    E = 19,271 / 22,380 = 0.8611, Q = 18,848 / 19,271 = 0.9780, OEE = 18,848 / 25,200 = 0.7479.
    """
    e = Elements(
        apt=22_380, adet=2_820, pq=19_271, gq=18_848, sq=423, ideal_time=19_271, ideal_good_time=18_848
    )
    result = compute(e)
    assert result.availability == pytest.approx(0.8881, abs=1e-4)
    assert result.effectiveness == pytest.approx(0.8611, abs=1e-4)
    assert result.quality == pytest.approx(0.9780, abs=1e-4)
    assert result.oee == pytest.approx(0.7479, abs=1e-4)
    assert suspect_reasons(result, 1.5) == ()


def test_negative_elements_are_suspect_whichever_field() -> None:
    result = compute(Elements(apt=3_000, adot=600, pq=-3))
    assert result.quality is None  # GQ / PQ with PQ ≤ 0 is undefined, not a reason
    assert suspect_reasons(result) == ("negative element pq = -3",)
    # Every field counts, the unattributed ones as well (fields are iterated, not listed).
    late = compute(Elements(apt=3_000, adot=600, unattributed_pq=-2.5, failures=-1))
    assert suspect_reasons(late) == (
        "negative element failures = -1",
        "negative element unattributed_pq = -2.5",
    )
    assert suspect_reasons(compute(Elements(apt=3_000, energy=float("nan")))) == (
        "non-finite element energy = nan",
    )


def test_quality_above_one_and_float_noise() -> None:
    """More good parts than parts (a good counter and a total counter of different machines) is
    impossible; a sum that lands a hair above a bound is float noise, not a reason."""
    more_good = Elements(apt=3_000, adet=600, pq=2_000, gq=2_060, ideal_time=2_000, ideal_good_time=2_060)
    assert suspect_reasons(compute(more_good)) == ("quality 1.03 > 1", "quality_weighted 1.03 > 1")
    noise = Elements(
        apt=3_600, pq=5_400, gq=3_600 + 1e-10, ideal_time=5_400 * (1 + 1e-12), ideal_good_time=3_600
    )
    assert compute(noise).effectiveness == pytest.approx(1.5)
    assert suspect_reasons(compute(noise), 1.5) == ()
    barely = Elements(apt=3_600, pq=3_600.36, gq=3_600.36, ideal_time=3_600.36, ideal_good_time=3_600.36)
    assert suspect_reasons(compute(barely)) == ("oee 1.0001 > 1",)  # shown precisely enough to be above


def test_max_effectiveness_setting() -> None:
    assert KpiSettings().max_effectiveness == 1.5 == DEFAULT_MAX_EFFECTIVENESS
    assert KpiSettings(max_effectiveness=3).max_effectiveness == 3.0
    with pytest.raises(ValidationError):
        KpiSettings(max_effectiveness=1.0)  # effectiveness 1 is legitimate: the bound must be above it


def test_a_suspect_asset_makes_every_scope_above_it_suspect() -> None:
    """Line 1: mill-1 inflated, mill-2 clean; line 2: mill-3 clean. Line 1, the site, the company
    and the park are suspect (their sums hold the impossible numbers); line 2 and the clean mills are not."""
    mill1, mill2 = asset_ref("mill-1"), asset_ref("mill-2")
    mill3 = asset_ref("mill-3", line="line-2")
    results = scoped_results([(mill1, inflated()), (mill2, clean()), (mill3, clean())], "hour", HOUR, 1.5)
    suspect = {(r.level, r.scope): r.suspect for r in results}
    assert suspect[("asset", "acme/north/line-1/mill-1")] == ("effectiveness 4.25 > 1.5", "oee 2.83 > 1")
    assert suspect[("asset", "acme/north/line-1/mill-2")] == ()
    assert suspect[("asset", "acme/north/line-2/mill-3")] == ()
    assert suspect[("line", "acme/north/line-2")] == ()
    # Line 1 sums 10,200 + 2,700 s of ideal time over 2,400 + 3,000 s running: E = 2.389 > 1.5.
    assert suspect[("line", "acme/north/line-1")] == (
        "effectiveness 2.39 > 1.5",
        "oee 1.78 > 1",  # (10,200 + 2,600) / (3,600 + 3,600)
        "contains suspect asset acme/north/line-1/mill-1",
    )
    # The company: E = (10,200 + 2 · 2,700) / (2,400 + 2 · 3,000) = 1.857,
    # OEE = (10,200 + 2 · 2,600) / (3 · 3,600) = 1.426.
    assert suspect[("company", "acme")] == (
        "effectiveness 1.86 > 1.5",
        "oee 1.43 > 1",
        "contains suspect asset acme/north/line-1/mill-1",
    )
    assert suspect[("site", "acme/north")] == suspect[("park", "")] == suspect[("company", "acme")]
    # Only one asset in a big clean line: its sums look fine, the line is suspect by containment alone.
    big = [(asset_ref(f"m{i}", line="big"), clean()) for i in range(30)] + [
        (asset_ref("odd", line="big"), inflated())
    ]
    line = next(r for r in scoped_results(big, "hour", HOUR) if r.level == "line")
    assert suspect_reasons(line.result) == ()  # E = 91,200 / 92,400, OEE = 88,200 / 111,600
    assert line.suspect == ("contains suspect asset acme/north/big/odd",)


def test_many_suspect_assets_are_counted_beyond_ten_and_flagging_twice_changes_nothing() -> None:
    pairs = [(asset_ref(f"m{i:02}"), inflated()) for i in range(12)] + [(asset_ref("ok"), clean())]
    results = scoped_results(pairs, "hour", HOUR)
    line = next(r for r in results if r.level == "line")
    named = [reason for reason in line.suspect if reason.startswith("contains")]
    assert named == [f"contains suspect asset acme/north/line-1/m{i:02}" for i in range(10)]
    assert line.suspect[-1] == "and 2 more suspect assets"
    assert flag(results) == results
    other_window = [r for r in scoped_results([(asset_ref("ok"), clean())], "day", HOUR) if r.level == "line"]
    assert other_window[0].suspect == ()  # propagation stays within a window


def test_one_warning_per_asset_until_it_is_clean_again(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("parklink.test.guard")
    suspects = SuspectLog(log)
    bad = scoped_results([(asset_ref("mill-1"), inflated())], "hour", HOUR)
    good = scoped_results([(asset_ref("mill-1"), clean())], "hour", HOUR)
    with caplog.at_level(logging.WARNING, logger="parklink.test.guard"):
        suspects.update(bad)
        suspects.update(bad)  # the next update: still suspect, no new line
        assert [r.levelno for r in caplog.records] == [logging.WARNING]
        assert "acme/north/line-1/mill-1" in caplog.text and "effectiveness 4.25 > 1.5" in caplog.text
        suspects.update(good)
        assert suspects.logged == frozenset()
        suspects.update(bad)  # suspect again after being clean: logged again
    assert len(caplog.records) == 2


# -- through the KPI service: counted, logged, stored ---------------------------------------------
CONFIG = """\
park: {id: p}
asset_types:
  press:
    ideal_cycle_time: 60            # one part a minute
    signals:
      state: {role: state, binding: {address: s}}
      good_count: {role: good_count, type: uint32, binding: {address: g}}
companies:
  - id: acme
    connections: {dev: {kind: fake}}
    sites:
      - id: s
        timezone: UTC
        shifts: [{name: early, start: "06:00", end: "14:00"}]
        lines: [{id: l, assets: [{id: m1, type: press, connection: dev}]}]
"""


def at(hhmm: str) -> float:
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(2026, 3, 2, hours, minutes, tzinfo=UTC).timestamp()


@pytest.fixture
def park(tmp_path: Path) -> Park:
    (tmp_path / "p.yaml").write_text(textwrap.dedent(CONFIG))
    return load_config(tmp_path / "p.yaml", {"fake": FAKE_KIND}).park


async def test_a_service_logs_a_suspect_asset_once_and_stores_the_flag(
    park: Park, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """The press runs the whole shift (480 min, PRU 1 min) and its counter shows 2,040 parts (a
    stroke counter mapped as good_count): E = OEE = 2,040 · 60 / 28,800 = 4.25."""
    create_tables(engine)
    service = KpiService(park, engine, clock=lambda: at("14:00"))
    service.closed_until = at("05:00")
    service.engine.feed(
        [Sample(0, 3, GOOD, at("06:00"), at("06:00")), Sample(1, 0, GOOD, at("06:00"), at("06:00"))]
    )
    service.engine.feed([Sample(1, 2_040, GOOD, at("13:59"), at("13:59"))])
    with caplog.at_level(logging.WARNING, logger="parklink.kpi"):
        service.update(at("13:59") + 10)
        service.update(at("13:59") + 20)
        await service.close_windows(at("14:00") + 10)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "acme/s/l/m1 is suspect" in warnings[0]
    current = {r.window_kind: r for r in service.current if r.level == "asset"}
    assert set(current) == {"rolling_hour", "hour", "day", "shift"}
    assert all(r.suspect[0].startswith("effectiveness ") for r in current.values())
    with Session(engine) as session:
        rows = session.exec(select(KpiResultRow).where(KpiResultRow.window_kind == "shift")).all()
    by_level = {r.level: r for r in rows}
    assert by_level["asset"].kpis["suspect"] == ["effectiveness 4.25 > 1.5", "oee 4.25 > 1"]
    assert by_level["asset"].kpis["effectiveness"] == pytest.approx(4.25)  # as computed, never clamped
    assert by_level["company"].kpis["suspect"][-1] == "contains suspect asset acme/s/l/m1"
    assert by_level["park"].kpis["suspect"][-1] == "contains suspect asset acme/s/l/m1"
