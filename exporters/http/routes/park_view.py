"""What the park sees: the published view (live and closed windows) and benchmarks.

Everything here comes out of `orchestrator.sharing.park_view`, the one place that applies the
companies' policies; closed windows are rebuilt through it too (history.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Query

from exporters.http import access
from exporters.http.auth import Caller
from exporters.http.context import Ctx
from exporters.http.convert import benchmark_out, paginate, published_out
from exporters.http.errors import unavailable
from exporters.http.history import closed_view
from exporters.http.params import From, Level, Limit, Offset, To, Window, checked_range
from exporters.http.schemas import BenchmarkOut, KpiOut, Page
from orchestrator.sharing import PublishedKpis

router = APIRouter(tags=["park view"])
Company = Annotated[str | None, Query(max_length=64, description="only this company's published scopes")]


def _select(
    published: Iterable[PublishedKpis], level: str | None, window: str | None, company: str | None
) -> list[KpiOut]:
    return [
        published_out(p)
        for p in published
        if (level is None or p.level == level)
        and (window is None or p.window_kind == window)
        and (company is None or p.names[0] == company)
    ]


@router.get("/park/view", response_model=Page[KpiOut])
async def current(
    context: Ctx,
    caller: Caller,
    level: Level = None,
    window: Window = None,
    company: Company = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[KpiOut]:
    """The published KPIs of the windows in progress; park aggregates have level 'park'."""
    access.require_role(caller, access.PARK_VIEWERS)
    view = context.runtime.kpi.view
    return paginate(_select([*view.park, *view.scopes], level, window, company), limit, offset)


@router.get("/park/view/history", response_model=Page[KpiOut])
async def history(
    context: Ctx,
    caller: Caller,
    start: From = None,
    end: To = None,
    level: Level = None,
    window: Window = None,
    company: Company = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[KpiOut]:
    """The published KPIs of closed windows that started in [from, to), oldest first."""
    access.require_role(caller, access.PARK_VIEWERS)
    since, until = checked_range(start, end, time.time())
    db = context.database()
    if db is None:
        raise unavailable()
    view = await asyncio.to_thread(
        closed_view, db, context.park, context.runtime.kpi.asset_types, since, until, window
    )
    items = _select([*view.park, *view.scopes], level, window, company)
    items.sort(key=lambda k: (k.start, k.level, k.scope))
    return paginate(items, limit, offset)


@router.get("/park/benchmarks", response_model=Page[BenchmarkOut])
async def benchmarks(
    context: Ctx,
    caller: Caller,
    asset_type: Annotated[str | None, Query(max_length=64)] = None,
    kpi: Annotated[str | None, Query(max_length=64)] = None,
    window: Window = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[BenchmarkOut]:
    """Spread of KPIs across assets of one type (only with enough companies sharing; names none)."""
    access.require_role(caller, access.PARK_VIEWERS)
    out = [
        benchmark_out(b)
        for b in context.runtime.kpi.view.benchmarks
        if (asset_type is None or b.asset_type == asset_type)
        and (kpi is None or b.kpi == kpi)
        and (window is None or b.window_kind == window)
    ]
    return paginate(out, limit, offset)
