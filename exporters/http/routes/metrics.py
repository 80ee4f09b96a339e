"""Scoped Prometheus endpoints: /metrics (admins), /metrics/park, /metrics/company/{id}.

Each takes a bearer token or basic auth with the token as password (any user name), so that a
Prometheus run by the park operator, holding a park token, never receives a company's raw data.
"""

from __future__ import annotations

import asyncio
import ipaddress

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from exporters.http import access
from exporters.http.auth import metrics_principal
from exporters.http.context import Context, Ctx
from exporters.http.errors import not_found

router = APIRouter(tags=["metrics"], include_in_schema=False)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_full_metrics(context: Context, request: Request) -> bool:
    """Anonymous /metrics: only when configured, bound to loopback, and asked from loopback."""
    client = request.client.host if request.client else ""
    return (
        context.settings.full_metrics == "open_on_loopback"
        and _loopback(context.settings.host)
        and _loopback(client)
    )


async def _expose(registry: CollectorRegistry) -> Response:
    # Collectors only read snapshot slots and replaced lists: safe off the loop, and a big park's
    # exposition does not stall the connectors meanwhile.
    body = await asyncio.to_thread(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/metrics")
async def full(context: Ctx, request: Request) -> Response:
    """Everything: every company's raw signals, connections and KPIs."""
    if not open_full_metrics(context, request):
        caller = await metrics_principal(context, request)
        access.require_role(caller, frozenset({"admin"}))
    return await _expose(context.metrics.full)


@router.get("/metrics/park")
async def park(context: Ctx, request: Request) -> Response:
    """What sharing publishes, plus benchmarks."""
    caller = await metrics_principal(context, request)
    access.require_role(caller, access.PARK_VIEWERS)
    return await _expose(context.metrics.park)


@router.get("/metrics/company/{company}")
async def company(context: Ctx, request: Request, company: str) -> Response:
    """One company's raw signals, connections and own KPIs."""
    caller = await metrics_principal(context, request)
    access.company_data(context, caller, company)
    registry = context.metrics.companies.get(company)
    if registry is None:
        raise not_found()
    return await _expose(registry)
