"""A company's own KPI results: the current windows, and closed windows from the database."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter

from exporters.http import access
from exporters.http.auth import Caller
from exporters.http.context import Ctx
from exporters.http.convert import paginate, scoped_out
from exporters.http.errors import unavailable
from exporters.http.history import company_rows
from exporters.http.params import From, Level, Limit, Offset, Scope, To, Window, checked_range
from exporters.http.schemas import KpiOut, Page

router = APIRouter(tags=["kpis"])


@router.get("/companies/{company}/kpis", response_model=Page[KpiOut])
async def current(
    context: Ctx,
    caller: Caller,
    company: str,
    level: Level = None,
    window: Window = None,
    scope: Scope = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[KpiOut]:
    """Every KPI of the company's scopes over the windows in progress (rolling hour, hour, shift, day)."""
    access.company_data(context, caller, company)
    out = [
        scoped_out(r)
        for r in context.runtime.kpi.current
        if r.company == company
        and r.level != "park"  # the park aggregate of every company is never anyone's own
        and (level is None or r.level == level)
        and (window is None or r.window_kind == window)
        and (scope is None or r.scope == scope)
    ]
    return paginate(out, limit, offset)


@router.get("/companies/{company}/kpis/history", response_model=Page[KpiOut])
async def history(
    context: Ctx,
    caller: Caller,
    company: str,
    start: From = None,
    end: To = None,
    level: Level = None,
    window: Window = None,
    scope: Scope = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[KpiOut]:
    """The company's closed windows that started in [from, to), oldest first."""
    access.company_data(context, caller, company)
    since, until = checked_range(start, end, time.time())
    db = context.database()
    if db is None:
        raise unavailable()
    items, total = await asyncio.to_thread(
        company_rows,
        db,
        company,
        since,
        until,
        level=level,
        window=window,
        scope=scope,
        limit=limit,
        offset=offset,
        max_effectiveness=context.park.kpi.max_effectiveness,
    )
    return Page[KpiOut](items=items, total=total, limit=limit, offset=offset)
