"""The web dashboard: login with a token (kept in an HttpOnly, SameSite=Strict cookie) and pages.

Pages follow the API's role rules (access.py): park pages for the park role and admins, a company
page for that company's tokens and admins. The cookie is scoped to /dashboard and the API never
reads it (API calls carry a bearer header, so no cross-site request can act with a session).
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from exporters.http import access
from exporters.http.auth import COOKIE, LoginThrottled, Principal, check_token, client_address
from exporters.http.context import Context, Ctx
from exporters.http.pages import benchmarks_page, company_page, health_rows, park_overview
from exporters.http.templates import SECURITY_HEADERS, render

router = APIRouter(include_in_schema=False)
LOGIN = "/dashboard/login"
WINDOWS = ("rolling_hour", "hour", "shift", "day")
MAX_FORM = 4096


def _window(value: str | None) -> str:
    return value if value in WINDOWS else WINDOWS[0]


def _to_login() -> Response:
    response = RedirectResponse(LOGIN, status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(COOKIE, path="/dashboard")
    return response


def _error(status: int, message: str, who: Principal | None = None) -> Response:
    return render("error.html", status, status=status, message=message, who=who)


async def _session(context: Context, request: Request) -> Principal | Response:
    """The logged-in principal, or the answer to send instead (login page, 429)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return _to_login()
    try:
        principal = await check_token(context, client_address(request), token)
    except LoginThrottled:
        return _error(429, "Too many failed logins from this address; try again in a minute.")
    return principal if principal is not None else _to_login()


def _same_origin(request: Request) -> bool:
    """A form post from this site (or a client that sends neither header, like curl), not another site.

    Browsers send Sec-Fetch-Site (the reliable signal) and Origin; an opaque origin ("null", e.g. a
    sandboxed frame) is refused.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host", "")


@router.get("/")
async def root() -> Response:
    """The dashboard is the home page."""
    return RedirectResponse("/dashboard", status_code=303)


@router.get(LOGIN)
async def login_page() -> Response:
    """The login form: paste an API token."""
    return render("login.html", message=None, who=None)


@router.post(LOGIN)
async def login(context: Ctx, request: Request) -> Response:
    """Check the pasted token; on success keep it in the session cookie."""
    if not _same_origin(request):
        return _error(403, "Cross-site login refused.")
    if int(request.headers.get("content-length") or 0) > MAX_FORM:
        return _error(413, "Form too large.")
    body = (await request.body())[:MAX_FORM]
    token = parse_qs(body.decode(errors="replace")).get("token", [""])[0].strip()
    if not token:
        return render("login.html", 401, message="Paste a token.", who=None)
    try:
        principal = await check_token(context, client_address(request), token)
    except LoginThrottled as exc:
        throttled = render(
            "login.html", 429, message="Too many failed logins; try again in a minute.", who=None
        )
        throttled.headers["Retry-After"] = str(int(exc.seconds) + 1)
        return throttled
    if principal is None:
        return render("login.html", 401, message="This token is not valid.", who=None)
    response = RedirectResponse("/dashboard", status_code=303, headers=SECURITY_HEADERS)
    secure = context.settings.cookie_secure == "always" or request.url.scheme == "https"
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(context.settings.session_hours * 3600),
        path="/dashboard",
        secure=secure,
        httponly=True,  # no script may read it (and the pages run none)
        samesite="strict",  # never sent on requests started by another site
    )
    return response


@router.post("/dashboard/logout")
async def logout(request: Request) -> Response:
    """Forget the session cookie."""
    if not _same_origin(request):
        return _error(403, "Cross-site logout refused.")
    return _to_login()


@router.get("/dashboard")
async def home(context: Ctx, request: Request) -> Response:
    """The page for the caller's role."""
    who = await _session(context, request)
    if isinstance(who, Response):
        return who
    target = f"/dashboard/company/{who.company}" if who.is_company else "/dashboard/park"
    return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)


async def _park_session(context: Context, request: Request) -> Principal | Response:
    who = await _session(context, request)
    if isinstance(who, Principal) and who.role not in access.PARK_VIEWERS:
        return _error(403, "This page is for the park operator.", who)
    return who


@router.get("/dashboard/park")
async def park(context: Ctx, request: Request, window: str | None = None) -> Response:
    """Park overview: companies' shared KPIs, trends of the last day, connections down."""
    who = await _park_session(context, request)
    if isinstance(who, Response):
        return who
    values = await asyncio.to_thread(park_overview, context, _window(window))
    return render("park.html", who=who, park=context.park, windows=WINDOWS, page="park", **values)


@router.get("/dashboard/benchmarks")
async def benchmarks(context: Ctx, request: Request, window: str | None = None) -> Response:
    """Benchmarks per asset type."""
    who = await _park_session(context, request)
    if isinstance(who, Response):
        return who
    values = benchmarks_page(context, _window(window))
    return render("benchmarks.html", who=who, park=context.park, windows=WINDOWS, page="benchmarks", **values)


@router.get("/dashboard/health")
async def health(context: Ctx, request: Request) -> Response:
    """Every connection: up or down, and since when."""
    who = await _park_session(context, request)
    if isinstance(who, Response):
        return who
    rows = health_rows(context, None, private=who.role == "admin")
    return render("health.html", who=who, park=context.park, rows=rows, page="health")


@router.get("/dashboard/company/{company}")
async def company(context: Ctx, request: Request, company: str, window: str | None = None) -> Response:
    """A company's own assets, latest values, KPIs and connections."""
    who = await _session(context, request)
    if isinstance(who, Response):
        return who
    if who.role not in access.READERS:
        return _error(403, "This page is for the company's own tokens.", who)
    if company not in context.park.companies or not access.visible(who, company):
        return _error(404, "Not found.", who)
    values = await asyncio.to_thread(company_page, context, company, _window(window))
    return render("company.html", who=who, park=context.park, windows=WINDOWS, page="company", **values)
