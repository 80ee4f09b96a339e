"""What the dashboard pages show, assembled from the same sources and rules as the API.

The park pages read only the park view (`KpiService.view`, and closed windows rebuilt through
`park_view`); the company page reads only the caller's company. Templates get plain values.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from exporters.http.charts import Series, Spread, colour, line_chart, range_chart
from exporters.http.context import Context
from exporters.http.convert import health_out, json_value
from exporters.http.history import closed_view, company_rows
from exporters.http.schemas import HealthOut, KpiOut
from models.status import name_of, quality_of
from orchestrator.sharing import PublishedKpis

KEY_KPIS = ("oee", "availability", "effectiveness", "quality")
TREND_SECONDS = 86400.0
RATIO_KPIS = frozenset(
    {"oee", "availability", "effectiveness", "quality", "quality_weighted", "nee", "technical_efficiency"}
    | {"utilization_efficiency", "allocation_efficiency", "setup_rate", "scrap_ratio", "rework_ratio"}
)


@dataclass
class KpiRow:
    """One line of a KPI table: a scope, a window label and its (shared) KPIs."""

    name: str
    label: str
    kpis: dict[str, float | None]  # a missing key means "not shared"
    companies: int | None = None
    company: str = ""
    suspect: tuple[str, ...] = ()  # the guard's reasons (company page only: the park never sees one)
    unattributed: float | None = None  # units counted across a communication loss (company page)


@dataclass
class Legend:
    name: str
    colour: str


@dataclass
class Chart:
    title: str
    svg: Markup
    legend: list[Legend] = field(default_factory=list)


def _rows(published: Iterable[PublishedKpis], window: str, level: str) -> list[PublishedKpis]:
    return [p for p in published if p.window_kind == window and p.level == level]


def _trend_charts(
    names: dict[str, str], points: dict[tuple[str, str], list[tuple[float, float]]], start: float, end: float
) -> list[Chart]:
    """One chart per key KPI, one series per company (only where the value is published)."""
    charts = []
    for kpi in KEY_KPIS:
        series = [Series(name, sorted(points.get((company, kpi), []))) for company, name in names.items()]
        legend = [Legend(s.name, colour(i)) for i, s in enumerate(series) if s.points]
        charts.append(Chart(kpi, line_chart(f"{kpi} per company, hour windows", series, start, end), legend))
    return charts


def health_rows(context: Context, company: str | None, private: bool) -> list[HealthOut]:
    """Connections (of one company, or all), the ones that are down first."""
    rows = [
        health_out(link.health, private)
        for link in context.runtime.links
        if company is None or link.ref.company == company
    ]
    return sorted(rows, key=lambda h: (h.up, h.company, h.connection))


def park_overview(context: Context, window: str, now: float | None = None) -> dict[str, Any]:
    """The park page: park aggregates, each company's shared KPIs, a day of hour trends, health."""
    now = time.time() if now is None else now
    view = context.runtime.kpi.view
    park = context.park
    by_company: dict[str, list[KpiRow]] = defaultdict(list)
    for p in _rows(view.scopes, window, "company"):
        name = park.companies.get(p.names[0]) or p.names[0]
        by_company[p.names[0]].append(KpiRow(name, p.window_label, p.kpis, company=p.names[0]))
    companies = [
        row
        for company, name in park.companies.items()
        for row in (by_company.get(company) or [KpiRow(name or company, "", {}, company=company)])
    ]
    aggregates = [
        KpiRow(park.name or park.id, p.window_label, p.kpis, p.companies)
        for p in _rows(view.park, window, "park")
    ]
    start = now - TREND_SECONDS
    points: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    db = context.database()
    history = (
        closed_view(db, park, context.runtime.kpi.asset_types, start, now, "hour").scopes
        if db is not None
        else []
    )
    for p in [*_rows(history, "hour", "company"), *_rows(view.scopes, "hour", "company")]:
        for kpi in KEY_KPIS:
            value = p.kpis.get(kpi)
            if value is not None:
                points[(p.names[0], kpi)].append((p.start, value))
    names = {c: n or c for c, n in park.companies.items()}
    health = health_rows(context, None, private=False)
    return {
        "window": window,
        "aggregates": aggregates,
        "companies": companies,
        "charts": _trend_charts(names, points, start, now),
        "down": [h for h in health if not h.up],
        "connections": len(health),
    }


def benchmarks_page(context: Context, window: str) -> dict[str, Any]:
    """Benchmarks per asset type: a table of every KPI and a chart of the ratio KPIs."""
    by_type: dict[str, list[Any]] = defaultdict(list)
    for b in context.runtime.kpi.view.benchmarks:
        if b.window_kind == window:
            by_type[b.asset_type].append(b)
    types = []
    for asset_type, items in sorted(by_type.items()):
        items.sort(key=lambda b: b.kpi)
        spreads = [Spread(b.kpi, b.q1, b.median, b.q3, b.best) for b in items if b.kpi in RATIO_KPIS]
        chart = Chart(asset_type, range_chart(f"{asset_type}: spread across companies", spreads))
        types.append({"type": asset_type, "items": items, "chart": chart})
    k = context.park.kpi.benchmark_min_companies
    return {"window": window, "types": types, "k": k, "ratios": RATIO_KPIS}


@dataclass
class SignalView:
    name: str
    value: Any
    unit: str
    quality: str
    status: str
    time: float | None


def company_page(context: Context, company: str, window: str, now: float | None = None) -> dict[str, Any]:
    """One company's own view: KPIs of every scope, assets with latest values, health, a trend."""
    now = time.time() if now is None else now
    park = context.park
    kpis = [
        KpiRow(
            r.scope or r.company,
            r.window_label,
            r.result.kpis(),
            suspect=r.suspect,
            unattributed=r.result.elements.unattributed_pq,
        )
        for r in context.runtime.kpi.current
        if r.company == company and r.level != "park" and r.window_kind == window
    ]
    kpis.sort(key=lambda row: (row.name.count("/"), row.name))
    lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
    latest = context.runtime.snapshot.latest
    for asset in park.assets:
        if asset.company != company or asset.retired:
            continue
        signals = []
        for s in context.signals.get(asset.path, []):
            sample = latest[s.index]
            good = sample is not None and quality_of(sample.status) > 0
            signals.append(
                SignalView(
                    s.name,
                    json_value(sample.value) if good and sample is not None else None,
                    s.unit,
                    "none" if sample is None else ("bad", "uncertain", "good")[quality_of(sample.status)],
                    "" if sample is None else name_of(sample.status),
                    None if sample is None else sample.source_time,
                )
            )
        line = "/".join(p for p in (asset.site, asset.area, asset.line) if p)
        lines[line].append({"asset": asset, "signals": signals})
    start = now - TREND_SECONDS
    db = context.database()
    history: list[KpiOut] = []
    if db is not None:
        history, _ = company_rows(
            db,
            company,
            start,
            now,
            level="company",
            window="hour",
            scope=None,
            limit=1000,
            offset=0,
            max_effectiveness=park.kpi.max_effectiveness,
        )
    current = [r for r in context.runtime.kpi.current if r.level == "company" and r.company == company]
    series = []
    for kpi in KEY_KPIS:
        pts = [(k.start.timestamp(), v) for k in history if (v := k.kpis.get(kpi)) is not None]
        pts += [
            (r.start, v)
            for r in current
            if r.window_kind == "hour" and (v := r.result.kpis()[kpi]) is not None
        ]
        series.append(Series(kpi, sorted(pts)))
    legend = [Legend(s.name, colour(i)) for i, s in enumerate(series) if s.points]
    chart = Chart("trend", line_chart("own KPIs, hour windows", series, start, now), legend)
    return {
        "company": company,
        "name": park.companies.get(company) or company,
        "window": window,
        "kpis": kpis,
        "lines": dict(sorted(lines.items())),
        "health": health_rows(context, company, private=True),
        "chart": chart,
    }
