"""Suspect results through the API, the dashboard and /metrics: shown to their company with the
reasons, never to the park; rows stored before the guard existed are checked when read."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session, select

from models.tables import KpiResultRow
from orchestrator.kpi.elements import Elements
from orchestrator.kpi.results import ScopedResult, scoped_results
from orchestrator.kpi.service import save_results
from orchestrator.kpi.windows import Window, calendar_window
from orchestrator.runtime import Runtime
from orchestrator.sharing import park_view
from tests.exporters.http.conftest import Park, bearer, client_for
from tests.exporters.http.helpers import elements

M1 = "acme/north/hall/l1/acme-m1"
M2 = "acme/north/hall/l1/acme-m2"
COOKIE = "parklink_session"
REASONS = ["effectiveness 3 > 1.5", "oee 2.5 > 1"]


def impossible(seconds: float = 3600.0) -> Elements:
    """3,000 s running of 3,600, 9,000 parts at PRU 1 s: E = 9,000 / 3,000 = 3, OEE = 9,000 / 3,600 = 2.5."""
    scale = seconds / 3600
    return Elements(
        apt=3000 * scale, adet=600 * scale, pq=9000 * scale, gq=9000 * scale,
        ideal_time=9000 * scale, ideal_good_time=9000 * scale,
    )  # fmt: skip


def with_m1_impossible(runtime: Runtime, kind: str, window: Window) -> list[ScopedResult]:
    seconds = window.end - window.start
    pairs = [
        (a, impossible(seconds) if a.path == M1 else elements(a.company, 1.0, seconds))
        for a in runtime.park.assets
    ]
    return scoped_results(pairs, kind, window, runtime.park.kpi.max_effectiveness)


def make_suspect(park: Park) -> tuple[Window, Window]:
    """acme-m1 impossible in the current hour and the last closed hour; the hour before, acme-m2's
    row rewritten as the previous version stored it: impossible elements, no `suspect` key."""
    runtime, now = park.runtime, time.time()
    this_hour = calendar_window("hour", now, "UTC")
    current = with_m1_impossible(runtime, "hour", Window(this_hour.name, this_hour.start, now, kind="hour"))
    service = runtime.kpi
    service.current = current
    service.view = park_view(
        current, runtime.park.share, service.asset_types, runtime.park.kpi.benchmark_min_companies
    )
    last = calendar_window("hour", this_hour.start - 3600, "UTC")
    save_results(park.db, with_m1_impossible(runtime, "hour", last))
    before = calendar_window("hour", this_hour.start - 7200, "UTC")
    with Session(park.db) as session:
        row = session.exec(
            select(KpiResultRow).where(KpiResultRow.scope == M2, KpiResultRow.window_label == before.name)
        ).one()
        row.elements = asdict(impossible())
        row.kpis = {k: v for k, v in row.kpis.items() if k != "suspect"}
        session.add(row)
        session.commit()
    return last, before


async def get(client: httpx.AsyncClient, park: Park, who: str, url: str, **params: Any) -> Any:
    answer = await client.get(url, headers=bearer(park.tokens[who]), params=params)
    assert answer.status_code == 200, answer.text
    return answer.json() if "json" in answer.headers["content-type"] else answer.text


async def test_the_company_sees_why_and_the_park_sees_nothing(park: Park) -> None:
    last, before = make_suspect(park)
    async with client_for(park.app) as c:
        own = (await get(c, park, "acme_viewer", "/api/v1/companies/acme/kpis", limit=1000))["items"]
        by_scope = {(i["level"], i["scope"]): i for i in own if i["window"] == "hour"}
        assert by_scope[("asset", M1)]["suspect"] == REASONS
        assert by_scope[("asset", M1)]["kpis"]["effectiveness"] == pytest.approx(3.0)  # shown as is
        assert by_scope[("asset", M2)]["suspect"] == []
        company = by_scope[("company", "acme")]["suspect"]
        assert company[-1] == f"contains suspect asset {M1}"
        assert all(by_scope[key]["suspect"] for key in by_scope if key[1] != M2)  # M1 and every scope above

        view = (await get(c, park, "park", "/api/v1/park/view", limit=1000))["items"]
        acme_hour = {
            (i["level"], i["scope"]) for i in view if i["company"] == "acme" and i["window"] == "hour"
        }
        assert acme_hour == {("asset", M2)}
        assert all(i["suspect"] == [] for i in view)
        marks = (await get(c, park, "park", "/api/v1/park/benchmarks", kpi="oee", window="hour"))["items"]
        assert marks and all(b["assets"] == 3 for b in marks)  # acme-m2 and corex's two; acme-m1 left out

        since = (datetime.now(UTC) - timedelta(hours=25)).isoformat()
        url = "/api/v1/companies/acme/kpis/history"
        history = (await get(c, park, "acme_viewer", url, level="asset", limit=1000, **{"from": since}))[
            "items"
        ]
        rows = {(i["scope"], i["window_label"]): i["suspect"] for i in history}
        assert rows[(M1, last.name)] == REASONS  # stored with the row
        assert rows[(M2, before.name)] == REASONS  # an old row: checked when read
        assert rows[(M2, last.name)] == [] and rows[(M1, before.name)] == []

        past = (
            await get(
                c, park, "park", "/api/v1/park/view/history", company="acme", limit=1000, **{"from": since}
            )
        )["items"]
        published = {(i["scope"], i["window_label"]) for i in past if i["company"] == "acme"}
        assert (M1, last.name) not in published and ("acme", last.name) not in published
        assert (M2, before.name) not in published and ("acme", before.name) not in published  # old row too
        assert (M2, last.name) in published and (M1, before.name) in published


async def test_dashboard_marks_suspect_rows_and_metrics_carry_the_gauge(sqlite_park: Park) -> None:
    make_suspect(sqlite_park)
    async with client_for(sqlite_park.app) as c:
        page = await c.get(
            "/dashboard/company/acme?window=hour",
            headers={"Cookie": f"{COOKIE}={sqlite_park.tokens['acme_viewer']}"},
        )
        assert page.status_code == 200
        row = next(line for line in page.text.splitlines() if f">{M1}" in line)
        assert 'class="suspect"' in row
        assert (
            '<span class="badge suspect" title="effectiveness 3 &gt; 1.5; oee 2.5 &gt; 1">suspect</span>'
            in row
        )
        clean = next(line for line in page.text.splitlines() if f">{M2}<" in line)
        assert "suspect" not in clean
        park_page = await c.get(
            "/dashboard/park?window=hour", headers={"Cookie": f"{COOKIE}={sqlite_park.tokens['park']}"}
        )
        assert "badge suspect" not in park_page.text

        metrics = await get(c, sqlite_park, "admin", "/metrics")
        gauge = {
            (s.labels["level"], s.labels["asset"]): s.value
            for family in text_string_to_metric_families(metrics)
            for s in family.samples
            if s.name == "parklink_kpi_suspect" and s.labels["company"] == "acme"
        }
        assert gauge[("asset", "acme-m1")] == 1.0 and gauge[("asset", "acme-m2")] == 0.0
        assert gauge[("company", "")] == 1.0
        shared = await get(c, sqlite_park, "park", "/metrics/park")
        assert "parklink_kpi_suspect" not in shared


async def test_company_page_shows_units_counted_across_a_communication_loss(sqlite_park: Park) -> None:
    """acme-m1's hour: 1,800 units were counted across a 30 min gap; the company page shows them
    beside coverage (they are in no KPI), acme-m2 shows 0."""
    runtime, now = sqlite_park.runtime, time.time()
    hour = calendar_window("hour", now, "UTC")
    window = Window(hour.name, hour.start, now, kind="hour")
    seconds = window.end - window.start
    pairs = []
    for a in runtime.park.assets:
        e = elements(a.company, 1.0, seconds)
        if a.path == M1:
            e = e + Elements(unattributed_pq=1800.0, unattributed_gq=1800.0)
        pairs.append((a, e))
    runtime.kpi.current = scoped_results(pairs, "hour", window, runtime.park.kpi.max_effectiveness)
    async with client_for(sqlite_park.app) as c:
        page = await c.get(
            "/dashboard/company/acme?window=hour",
            headers={"Cookie": f"{COOKIE}={sqlite_park.tokens['acme_viewer']}"},
        )
    assert page.status_code == 200
    assert ">unattributed units</th>" in page.text
    rows = page.text.split("<tr")
    m1 = next(row for row in rows if f">{M1}<" in row)
    m2 = next(row for row in rows if f">{M2}<" in row)
    assert '<td class="num" data-kpi="unattributed">1800</td>' in m1
    assert '<td class="num" data-kpi="unattributed">0</td>' in m2
