"""Connection health: up or down, since when, counters (error texts for the company and admins only)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from exporters.http import access
from exporters.http.auth import Caller
from exporters.http.context import Ctx
from exporters.http.convert import health_out, paginate
from exporters.http.params import Limit, Offset
from exporters.http.schemas import HealthOut, Page

router = APIRouter(tags=["health"])


@router.get("/connections", response_model=Page[HealthOut])
async def connections(
    context: Ctx,
    caller: Caller,
    company: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[Literal["up", "down"] | None, Query(description="only connections up, or down")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[HealthOut]:
    """Every connection the caller may see (its company's, or all for the park and admins)."""
    private = caller.role != "park"  # error texts name hosts and devices: company-internal
    out = [
        health_out(link.health, private)
        for link in context.runtime.links
        if access.visible(caller, link.ref.company)
        and (company is None or link.ref.company == company)
        and (state is None or link.health.up == (state == "up"))
    ]
    return paginate(out, limit, offset)
