"""A company's sites, lines and assets (company roles and admins; never the park role)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from exporters.http import access
from exporters.http.auth import Caller
from exporters.http.context import Context, Ctx
from exporters.http.convert import asset_out, health_out, paginate, signal_out
from exporters.http.params import Limit, Offset
from exporters.http.schemas import AssetDetail, AssetOut, LineOut, Page, ShiftOut, SiteOut

router = APIRouter(tags=["hierarchy"])
Filter = Annotated[str | None, Query(max_length=64)]


@router.get("/companies/{company}/sites", response_model=Page[SiteOut])
async def sites(
    context: Ctx, caller: Caller, company: str, limit: Limit = 100, offset: Offset = 0
) -> Page[SiteOut]:
    """The company's sites with their time zones and shift calendars."""
    access.company_data(context, caller, company)
    park = context.park
    out = [
        SiteOut(
            company=c,
            id=site,
            timezone=zone,
            shifts=[
                ShiftOut(name=s.name, start=s.start, end=s.end, breaks=list(s.breaks))
                for s in park.shifts.get((c, site), [])
            ],
        )
        for (c, site), zone in park.sites.items()
        if c == company
    ]
    return paginate(out, limit, offset)


@router.get("/companies/{company}/lines", response_model=Page[LineOut])
async def lines(
    context: Ctx, caller: Caller, company: str, site: Filter = None, limit: Limit = 100, offset: Offset = 0
) -> Page[LineOut]:
    """The company's lines (optionally of one site), with their asset counts."""
    access.company_data(context, caller, company)
    counts: dict[tuple[str, str, str], int] = {}
    for a in context.park.assets:
        if a.company == company and (site is None or a.site == site) and not a.retired:
            counts[(a.site, a.area, a.line)] = counts.get((a.site, a.area, a.line), 0) + 1
    out = [
        LineOut(
            company=company,
            site=s,
            area=area,
            id=line,
            path="/".join(p for p in (company, s, area, line) if p),
            assets=n,
        )
        for (s, area, line), n in counts.items()
    ]
    return paginate(out, limit, offset)


@router.get("/companies/{company}/assets", response_model=Page[AssetOut])
async def assets(
    context: Ctx,
    caller: Caller,
    company: str,
    site: Filter = None,
    line: Filter = None,
    type: Filter = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[AssetOut]:
    """The company's assets, filtered by site, line or asset type."""
    access.company_data(context, caller, company)
    out = [
        asset_out(a)
        for a in context.park.assets
        if a.company == company
        and (site is None or a.site == site)
        and (line is None or a.line == line)
        and (type is None or a.type == type)
    ]
    return paginate(out, limit, offset)


def asset_detail(context: Context, path: str, private: bool = True) -> AssetDetail:
    """An asset with its signals' latest values and its connection's health."""
    found = context.assets[path]
    latest = context.runtime.snapshot.latest
    link = context.links.get((found.company, found.connection))
    return AssetDetail(
        **asset_out(found).model_dump(),
        signals=[signal_out(s, latest[s.index]) for s in context.signals.get(path, [])],
        connection_health=health_out(link.health, private) if link else None,
    )


@router.get("/assets/{path:path}", response_model=AssetDetail)
async def asset(context: Ctx, caller: Caller, path: str) -> AssetDetail:
    """One asset by path (company/site[/area]/line/asset): type, signals, latest values, health."""
    return asset_detail(context, access.asset(context, caller, path).path)
