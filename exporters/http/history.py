"""Closed KPI windows from the `kpi_result` table, for a company or rebuilt into the park view.

Rows hold the summed elements of each scope and window, so the park's history goes through the
same `orchestrator.sharing.park_view` as the live view: one place enforces sharing, for the past
too. Stored park-level rows sum *every* company and are never served; the park aggregates of the
history are rebuilt from what each policy publishes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from exporters.http.convert import at, finite
from exporters.http.schemas import KpiOut
from models.park import Park
from models.tables import KpiResultRow
from orchestrator.kpi.elements import Elements
from orchestrator.kpi.formulas import compute
from orchestrator.kpi.results import Names, ScopedResult
from orchestrator.kpi.rollup import Level
from orchestrator.sharing import ParkView, park_view

MAX_RANGE = 31 * 86400.0  # one query never reads more than a month of windows
DEFAULT_RANGE = 86400.0
MAX_ROWS = 200_000  # park view history: rows summed in memory at most


class RangeError(ValueError):
    """A time range that is empty, reversed or too long."""


def seconds(moment: datetime) -> float:
    """POSIX seconds; a naive datetime is taken as UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def time_range(start: datetime | None, end: datetime | None, now: float) -> tuple[float, float]:
    """[from, to) in POSIX seconds: the last day by default, at most `MAX_RANGE` long."""
    try:
        until = now if end is None else seconds(end)
        since = until - DEFAULT_RANGE if start is None else seconds(start)
    except (OverflowError, OSError, ValueError):
        raise RangeError("time out of range") from None
    if since >= until:
        raise RangeError("'from' must be before 'to'")
    if until - since > MAX_RANGE:
        raise RangeError("time range longer than 31 days")
    return since, until


def names_of(level: str, scope: str) -> Names:
    """(company, site, area, line, asset) of a stored scope path at `level`."""
    parts = scope.split("/") if scope else []
    if (level == "line" and len(parts) == 3) or (level == "asset" and len(parts) == 4):
        parts.insert(2, "")  # no area between site and line
    parts += [""] * (5 - len(parts))
    return cast(Names, tuple(parts[:5]))


def row_result(row: KpiResultRow) -> ScopedResult:
    """A stored row back into a result, KPIs recomputed from its elements."""
    elements = Elements.from_dict(row.elements)
    return ScopedResult(
        cast(Level, row.level),
        row.scope,
        names_of(row.level, row.scope),
        row.window_kind,
        row.window_label,
        row.window_start,
        row.window_end,
        compute(elements),
    )


def row_out(row: KpiResultRow) -> KpiOut:
    """A company's own stored result, every KPI as computed when the window closed."""
    company, site, area, line, asset = names_of(row.level, row.scope)
    return KpiOut(
        level=row.level,
        scope=row.scope,
        company=company,
        site=site,
        area=area,
        line=line,
        asset=asset,
        window=row.window_kind,
        window_label=row.window_label,
        start=at(row.window_start),
        end=at(row.window_end),
        kpis=finite(row.kpis),
    )


def company_rows(
    db: Engine,
    company: str,
    since: float,
    until: float,
    *,
    level: str | None,
    window: str | None,
    scope: str | None,
    limit: int,
    offset: int,
) -> tuple[list[KpiOut], int]:
    """One page of a company's closed windows starting in [since, until), and how many there are."""
    where = [
        col(KpiResultRow.company) == company,
        col(KpiResultRow.level) != "park",
        col(KpiResultRow.window_start) >= since,
        col(KpiResultRow.window_start) < until,
    ]
    if level is not None:
        where.append(col(KpiResultRow.level) == level)
    if window is not None:
        where.append(col(KpiResultRow.window_kind) == window)
    if scope is not None:
        where.append(col(KpiResultRow.scope) == scope)
    with Session(db) as session:
        total = session.exec(select(func.count()).select_from(KpiResultRow).where(*where)).one()
        rows = session.exec(
            select(KpiResultRow)
            .where(*where)
            .order_by(col(KpiResultRow.window_start), col(KpiResultRow.level), col(KpiResultRow.scope))
            .offset(offset)
            .limit(limit)
        ).all()
        return [row_out(r) for r in rows], int(total)


def closed_results(db: Engine, since: float, until: float, window: str | None) -> list[ScopedResult]:
    """Every company's closed results starting in [since, until) (park rows excluded)."""
    where = [
        col(KpiResultRow.level) != "park",
        col(KpiResultRow.window_start) >= since,
        col(KpiResultRow.window_start) < until,
    ]
    if window is not None:
        where.append(col(KpiResultRow.window_kind) == window)
    with Session(db) as session:
        rows = session.exec(
            select(KpiResultRow).where(*where).order_by(col(KpiResultRow.window_start)).limit(MAX_ROWS)
        ).all()
        return [row_result(r) for r in rows]


def closed_view(
    db: Engine, park: Park, asset_types: dict[str, str], since: float, until: float, window: str | None
) -> ParkView:
    """The park view of the closed windows starting in [since, until), through `park_view`."""
    results = closed_results(db, since, until, window)
    return park_view(results, park.share, asset_types, park.kpi.benchmark_min_companies)
