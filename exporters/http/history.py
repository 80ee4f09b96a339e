"""Closed KPI windows from the `kpi_result` table, for a company or rebuilt into the park view.

Rows hold the summed elements of each scope and window, so the park's history goes through the
same `orchestrator.sharing.park_view` as the live view: one place enforces sharing, for the past
too. Stored park-level rows sum *every* company and are never served; the park aggregates of the
history are rebuilt from what each policy publishes.

Suspect flags (orchestrator/kpi/guard.py) are stored in the `kpis` JSON as `"suspect": [...]`.
Rows written before the guard existed have none: the guard runs on their elements when read, so
an old impossible result is not shared either.
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
from orchestrator.kpi.guard import DEFAULT_MAX_EFFECTIVENESS, flag, suspect_reasons
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


def stored_suspect(row: KpiResultRow) -> tuple[str, ...] | None:
    """The suspect reasons stored with a row; None for a row from before the guard."""
    stored = row.kpis.get("suspect")
    return tuple(str(reason) for reason in stored) if isinstance(stored, list) else None


def row_result(row: KpiResultRow) -> ScopedResult:
    """A stored row back into a result, KPIs recomputed from its elements, stored flags kept."""
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
        stored_suspect(row) or (),
    )


def row_out(row: KpiResultRow, max_effectiveness: float = DEFAULT_MAX_EFFECTIVENESS) -> KpiOut:
    """A company's own stored result, every KPI as computed when the window closed."""
    company, site, area, line, asset = names_of(row.level, row.scope)
    suspect = stored_suspect(row)
    if suspect is None:  # an old row: check it now
        suspect = suspect_reasons(compute(Elements.from_dict(row.elements)), max_effectiveness)
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
        suspect=list(suspect),
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
    max_effectiveness: float = DEFAULT_MAX_EFFECTIVENESS,
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
        return [row_out(r, max_effectiveness) for r in rows], int(total)


def closed_results(
    db: Engine,
    since: float,
    until: float,
    window: str | None,
    max_effectiveness: float = DEFAULT_MAX_EFFECTIVENESS,
) -> list[ScopedResult]:
    """Every company's closed results starting in [since, until) (park rows excluded), flagged
    again by the guard (old rows carry no flag; a stored flag is kept)."""
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
        return flag([row_result(r) for r in rows], max_effectiveness)


def closed_view(
    db: Engine, park: Park, asset_types: dict[str, str], since: float, until: float, window: str | None
) -> ParkView:
    """The park view of the closed windows starting in [since, until), through `park_view`."""
    results = closed_results(db, since, until, window, park.kpi.max_effectiveness)
    return park_view(results, park.share, asset_types, park.kpi.benchmark_min_companies)
