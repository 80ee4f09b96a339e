"""Every route × every principal: the expected status, and no byte of what the caller may not see.

The cases are keyed by the app's own route list: a route added without a case here fails
`test_every_route_has_a_case`, so no route escapes the matrix. For every answer it checks
- a company token: no other company's id, canary signal value or error text anywhere;
- the park token: no raw signal (canary values, signal names), no asset of a company that does not
  share assets, no error text, and every KPI it gets is one the company's policy publishes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Mount

from exporters.http.auth import COOKIE
from exporters.prometheus.kpi_collector import KPI_METRICS
from tests.exporters.http.conftest import PRINCIPALS, Park, bearer, client_for
from tests.exporters.http.helpers import CANARY, COMPANIES, ERROR_CANARY, allowed_kpis

Rule = Literal[
    "public",  # anyone, no token
    "any",  # any valid token (answers filtered by role)
    "named",  # a company the caller may name (company roles: own only)
    "company",  # a company's own data: its roles and admins
    "write",  # operators (own company) and admins
    "park",  # the park role and admins
    "admin",  # admins only
    "page",  # dashboard pages: redirect to login without a session
    "page_park",
    "page_company",
    "login",
    "redirect",
]
A1 = "acme/north/hall/l1/acme-m1"
B1 = "bolt/main/l1/bolt-m1"


@dataclass(frozen=True)
class Target:
    """One concrete request: URL, owner company ('' global, None: does not exist), body."""

    url: str
    owner: str | None = ""
    body: Any = None


@dataclass(frozen=True)
class Case:
    rule: Rule
    targets: list[Target] = field(default_factory=list)


def owned(template: str, values: dict[str, str], **params: str) -> list[Target]:
    """Targets for own (acme), other (bolt) and missing owners of a company-scoped route."""
    out = []
    for owner, value in values.items():
        url = template.format(value) + (
            "?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else ""
        )
        out.append(Target(url, None if owner == "missing" else owner))
    return out


COMPANY = {"acme": "acme", "bolt": "bolt", "missing": "nope"}
ASSET = {"acme": A1, "bolt": B1, "missing": "acme/north/hall/l1/nope"}
BIG = {"limit": "1000"}
WRITE_BODY = {"value": 1.5}

CASES: dict[tuple[str, str], Case] = {
    ("GET", "/api/v1/openapi.json"): Case("public", [Target("/api/v1/openapi.json")]),
    ("GET", "/api/v1/docs"): Case("public", [Target("/api/v1/docs")]),
    ("GET", "/dashboard/static"): Case("public", [Target("/dashboard/static/style.css")]),
    ("GET", "/api/v1/me"): Case("any", [Target("/api/v1/me")]),
    ("GET", "/api/v1/park"): Case("any", [Target("/api/v1/park")]),
    ("GET", "/api/v1/companies"): Case("any", [Target("/api/v1/companies?limit=1000")]),
    ("GET", "/api/v1/connections"): Case("any", [Target("/api/v1/connections?limit=1000")]),
    ("GET", "/api/v1/companies/{company}"): Case("named", owned("/api/v1/companies/{}", COMPANY)),
    ("GET", "/api/v1/companies/{company}/sites"): Case(
        "company", owned("/api/v1/companies/{}/sites", COMPANY)
    ),
    ("GET", "/api/v1/companies/{company}/lines"): Case(
        "company", owned("/api/v1/companies/{}/lines", COMPANY)
    ),
    ("GET", "/api/v1/companies/{company}/assets"): Case(
        "company", owned("/api/v1/companies/{}/assets", COMPANY, **BIG)
    ),
    ("GET", "/api/v1/companies/{company}/kpis"): Case(
        "company", owned("/api/v1/companies/{}/kpis", COMPANY, **BIG)
    ),
    ("GET", "/api/v1/companies/{company}/kpis/history"): Case(
        "company", owned("/api/v1/companies/{}/kpis/history", COMPANY, **BIG)
    ),
    ("GET", "/api/v1/assets/{path}"): Case("company", owned("/api/v1/assets/{}", ASSET)),
    ("GET", "/api/v1/assets/{path}/signals/{name}"): Case(
        "company", owned("/api/v1/assets/{}/signals/temperature", ASSET)
    ),
    ("POST", "/api/v1/assets/{path}/signals/{name}/write"): Case(
        "write",
        [
            Target(t.url, t.owner, WRITE_BODY)
            for t in owned("/api/v1/assets/{}/signals/setpoint/write", ASSET)
        ],
    ),
    ("GET", "/api/v1/park/view"): Case("park", [Target("/api/v1/park/view?limit=1000")]),
    ("GET", "/api/v1/park/view/history"): Case("park", [Target("/api/v1/park/view/history?limit=1000")]),
    ("GET", "/api/v1/park/benchmarks"): Case("park", [Target("/api/v1/park/benchmarks?limit=1000")]),
    ("GET", "/metrics"): Case("admin", [Target("/metrics")]),
    ("GET", "/metrics/park"): Case("park", [Target("/metrics/park")]),
    ("GET", "/metrics/company/{company}"): Case("company", owned("/metrics/company/{}", COMPANY)),
    ("GET", "/"): Case("redirect", [Target("/")]),
    ("GET", "/dashboard/login"): Case("public", [Target("/dashboard/login")]),
    ("POST", "/dashboard/login"): Case("login", [Target("/dashboard/login")]),
    ("POST", "/dashboard/logout"): Case("redirect", [Target("/dashboard/logout")]),
    ("GET", "/dashboard"): Case("page", [Target("/dashboard")]),
    ("GET", "/dashboard/park"): Case(
        "page_park", [Target(f"/dashboard/park?window={w}") for w in ("hour", "shift")]
    ),
    ("GET", "/dashboard/benchmarks"): Case("page_park", [Target("/dashboard/benchmarks?window=hour")]),
    ("GET", "/dashboard/health"): Case("page_park", [Target("/dashboard/health")]),
    ("GET", "/dashboard/company/{company}"): Case("page_company", owned("/dashboard/company/{}", COMPANY)),
}


def app_routes(park: Park) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves."""
    out: set[tuple[str, str]] = set()
    for route in iter_route_contexts(park.app.routes):  # flattens included routers (FastAPI ≥ 0.120)
        assert route.path, route
        if isinstance(route.original_route, Mount):
            out.add(("GET", route.path))
        else:
            out.update((m, route.path.replace(":path}", "}")) for m in route.methods or () if m != "HEAD")
    return out


def test_every_route_has_a_case(sqlite_park: Park) -> None:
    routes = app_routes(sqlite_park)
    assert not routes - set(CASES), f"routes without a leak-matrix case: {sorted(routes - set(CASES))}"
    assert not set(CASES) - routes, f"cases for routes that no longer exist: {sorted(set(CASES) - routes)}"


def expected(rule: Rule, who: str | None, owner: str | None) -> int:
    """The status a principal must get (owner None: the target does not exist)."""
    role, company = PRINCIPALS[who] if who else (None, None)
    company_role = role in ("viewer", "operator")
    foreign = company_role and owner != company  # another company's, or missing: the same answer
    if rule == "public":
        return 200
    if rule == "redirect":
        return 303
    if rule == "login":
        return 401 if who is None else 303
    if who is None:
        return 303 if rule.startswith("page") else 401
    if rule in ("any", "page"):
        return 303 if rule == "page" else 200
    if rule in ("park", "page_park"):
        return 200 if role in ("park", "admin") else 403
    if rule == "admin":
        return 200 if role == "admin" else 403
    if rule == "named":
        return 404 if owner is None or foreign else 200
    if rule in ("company", "page_company") and role == "park":
        return 403
    if rule == "write" and role in ("viewer", "park"):
        return 403
    return 404 if owner is None or foreign else 200


def forbidden_strings(who: str) -> list[str]:
    """Substrings `who` must never receive."""
    role, company = PRINCIPALS[who]
    values = [str(v) for v in CANARY.values()] + [f"{v:.4g}" for v in CANARY.values()]
    if role == "admin":
        return []
    if role == "park":
        return [*values, "temperature", "setpoint", "bolt-m", "dune-m", ERROR_CANARY]
    others = [c for c in COMPANIES if c != company]
    return [*others, *(str(CANARY[c]) for c in others), *(f"{CANARY[c]:.4g}" for c in others), ERROR_CANARY]


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def check_park_kpis(response: httpx.Response) -> None:
    """Every KPI the park token receives is published by its company's policy."""
    if response.headers.get("content-type", "").startswith("application/json"):
        for obj in _objects(response.json()):
            if isinstance(obj.get("kpis"), dict) and obj.get("level") not in (None, "park"):
                allowed = allowed_kpis(obj["company"], obj["level"])
                assert allowed, f"{obj['company']} publishes nothing at {obj['level']}"
                assert "*" in allowed or set(obj["kpis"]) <= allowed, obj
    elif response.headers.get("content-type", "").startswith("text/plain"):
        names = {metric: kpi for kpi, (metric, _) in KPI_METRICS.items()}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                company, level = sample.labels.get("company", ""), sample.labels.get("level", "")
                if company and level != "park":
                    allowed = allowed_kpis(company, level)
                    kpi = names.get(sample.name.removeprefix("parklink_kpi_"))
                    assert allowed and ("*" in allowed or kpi in allowed), sample


async def call(
    client: httpx.AsyncClient, park: Park, method: str, rule: Rule, target: Target, who: str | None
) -> httpx.Response:
    """The request of one matrix cell: bearer for the API and metrics, the session cookie for pages."""
    headers: dict[str, str] = {}
    client.cookies.clear()
    if who and rule.startswith("page"):
        headers = {"Cookie": f"{COOKIE}={park.tokens[who]}"}
    elif who and rule != "login":
        headers = bearer(park.tokens[who])
    if rule == "login":
        form = {"token": park.tokens[who]} if who else {}
        return await client.post(target.url, data=form)
    if method == "POST":
        return await client.post(target.url, headers=headers, json=target.body)
    return await client.get(target.url, headers=headers)


@pytest.mark.parametrize("who", [None, *PRINCIPALS])
async def test_leak_matrix(park: Park, who: str | None) -> None:
    async with client_for(park.app) as client:
        for (method, _), case in CASES.items():
            for target in case.targets:
                response = await call(client, park, method, case.rule, target, who)
                want = expected(case.rule, who, target.owner)
                assert response.status_code == want, (method, target.url, who, response.text[:300])
                if response.status_code >= 400:
                    assert not any(c in response.text for c in COMPANIES if c != (who and PRINCIPALS[who][1]))
                if who is None or case.rule == "public":
                    continue
                for secret in forbidden_strings(who):
                    assert secret not in response.text, (method, target.url, who, secret)
                if PRINCIPALS[who][0] == "park":
                    check_park_kpis(response)


async def test_error_bodies_carry_no_data(sqlite_park: Park) -> None:
    async with client_for(sqlite_park.app) as client:
        for url in (f"/api/v1/assets/{B1}", "/api/v1/companies/bolt/kpis"):
            response = await client.get(url, headers=bearer(sqlite_park.tokens["acme_viewer"]))
            assert json.loads(response.text) == {"detail": "not found"}
        response = await client.get("/api/v1/park/view", headers=bearer(sqlite_park.tokens["acme_viewer"]))
        assert response.json() == {"detail": "forbidden"}
