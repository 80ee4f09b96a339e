"""The caller, the park and its companies."""

from __future__ import annotations

from fastapi import APIRouter

from exporters.http import access
from exporters.http.auth import Caller
from exporters.http.context import Context, Ctx
from exporters.http.convert import paginate
from exporters.http.params import Limit, Offset
from exporters.http.schemas import CompanyOut, Me, Page, ParkOut

router = APIRouter(tags=["park"])


@router.get("/me", response_model=Me)
async def me(caller: Caller) -> Me:
    """The role and company of the calling token."""
    return Me(role=caller.role, company=caller.company, token_name=caller.name)


@router.get("/park", response_model=ParkOut)
async def park(context: Ctx, caller: Caller) -> ParkOut:
    """The park's name and KPI settings."""
    p = context.park
    return ParkOut(
        id=p.id,
        name=p.name,
        windows=list(p.kpi.windows),
        benchmark_min_companies=p.kpi.benchmark_min_companies,
    )


def _company(context: Context, company: str) -> CompanyOut:
    sites = sum(1 for c, _ in context.park.sites if c == company)
    return CompanyOut(
        id=company,
        name=context.park.companies[company] or company,
        sites=sites,
        share=list(context.park.share.get(company, [])),
    )


@router.get("/companies", response_model=Page[CompanyOut])
async def companies(context: Ctx, caller: Caller, limit: Limit = 100, offset: Offset = 0) -> Page[CompanyOut]:
    """The companies the caller may see: its own, or all of them for the park and admins."""
    visible = [_company(context, c) for c in access.visible_companies(context, caller)]
    return paginate(visible, limit, offset)


@router.get("/companies/{company}", response_model=CompanyOut)
async def company(context: Ctx, caller: Caller, company: str) -> CompanyOut:
    """One company and its sharing policy."""
    return _company(context, access.company(context, caller, company))
