"""The app factory: the versioned API, the scoped metrics endpoints and the dashboard on one FastAPI app.

Every `/api/v1` route sits behind the bearer dependency at router level, so a new route cannot
forget authentication; what each role may then see is decided in access.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError

from exporters.http.auth import api_principal
from exporters.http.context import Context
from exporters.http.routes import dashboard, docs, health, hierarchy, kpis, metrics, park, park_view, signals
from exporters.http.settings import HttpSettings
from exporters.http.templates import HERE
from models.store import make_engine

if TYPE_CHECKING:
    from exporters.http.context import Served

API = "/api/v1"
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no token, or not a valid one"},
    403: {"description": "the token's role may not use this route"},
    404: {"description": "no such thing, or nothing the caller may know of"},
    429: {"description": "too many failed logins from this address"},
    503: {"description": "the database is not connected yet"},
}


def _version() -> str:
    try:
        return version("parklink")
    except PackageNotFoundError:
        return "0"


async def _validation_error(_request: Request, exc: Exception) -> Response:
    # FastAPI's default answer echoes the input back; keep only where and what.
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors
    ]
    return JSONResponse({"detail": detail}, status_code=422)


async def _database_down(_request: Request, _exc: Exception) -> Response:
    # A lost database is a temporary outage of ours, not a bug: 503, and no driver text in the body.
    return JSONResponse({"detail": "database not available"}, status_code=503)


def create_app(runtime: Served, settings: HttpSettings | None = None) -> FastAPI:
    """The HTTP app of a runtime (not started: serve it with `serve` or any ASGI server)."""
    settings = settings or HttpSettings()
    token_engine = make_engine(settings.token_database) if settings.token_database else None
    app = FastAPI(
        title="parklink",
        version=_version(),
        description="Park, companies, assets, signals, KPIs and the park view of a parklink runtime.",
        openapi_url=f"{API}/openapi.json",
        docs_url=None,  # Swagger UI loads from a CDN; routes/docs.py serves an offline page instead
        redoc_url=None,
    )
    app.state.parklink = Context(runtime, settings, token_engine)
    api = APIRouter(prefix=API, dependencies=[Depends(api_principal)], responses=ERRORS)
    # Signal routes before the asset route: `/assets/{path:path}` would swallow their suffixes.
    for module in (park, kpis, park_view, health, signals, hierarchy):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(docs.router)
    app.include_router(metrics.router)
    app.include_router(dashboard.router)
    app.mount("/dashboard/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(OperationalError, _database_down)

    @app.middleware("http")
    async def _no_sniff(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    return app
