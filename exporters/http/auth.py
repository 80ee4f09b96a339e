"""Who is calling: bearer tokens (API), bearer or basic (metrics), the session cookie (dashboard).

Every route that returns data depends on one of the `*_principal` dependencies below; the leak
matrix in the tests fails for a route that answers without one. Failed logins are throttled per
client address (`ratelimit.py`) before the token store is asked.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from exporters.http.context import Context, Ctx
from exporters.http.errors import too_many_failures, unauthorized, unavailable
from exporters.http.tokens import COMPANY_ROLES, Role, authenticate, ensure_table

COOKIE = "parklink_session"
_bearer = HTTPBearer(auto_error=False, description="an API token: `Authorization: Bearer plk_…`")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: its token's role and, for company roles, its company."""

    token_id: int
    name: str
    role: Role
    company: str | None

    @property
    def is_company(self) -> bool:
        return self.role in COMPANY_ROLES


class LoginThrottled(Exception):
    """Too many failed logins from this address; retry after `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__("too many failed logins")
        self.seconds = seconds


def client_address(request: Request) -> str:
    """The peer address (proxies' X-Forwarded-For is not trusted: any client could forge it)."""
    return request.client.host if request.client else "unknown"


async def check_token(context: Context, address: str, token: str) -> Principal | None:
    """The principal of `token`, or None (counted as a failure); raises LoginThrottled first."""
    wait = context.limiter.retry_after(address)
    if wait:
        raise LoginThrottled(wait)
    db = context.token_database()
    if db is None:
        raise unavailable()
    if not context.tokens_ready:
        await asyncio.to_thread(ensure_table, db)
        context.tokens_ready = True
    info = await asyncio.to_thread(authenticate, db, token)
    if info is None:
        context.limiter.failed(address)
        return None
    return Principal(info.id, info.name, info.role, info.company)


async def _principal(context: Context, request: Request, token: str | None, scheme: str) -> Principal:
    if not token:
        raise unauthorized(scheme)
    try:
        principal = await check_token(context, client_address(request), token)
    except LoginThrottled as exc:
        raise too_many_failures(exc.seconds) from None
    if principal is None:
        raise unauthorized(scheme)
    return principal


async def api_principal(
    context: Ctx,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller of an API route (`Authorization: Bearer`); 401/429 otherwise."""
    return await _principal(context, request, credentials.credentials if credentials else None, "Bearer")


def _basic_password(header: str) -> str | None:
    try:
        decoded = base64.b64decode(header, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, separator, password = decoded.partition(":")
    return password if separator else None


async def metrics_principal(context: Ctx, request: Request) -> Principal:
    """The caller of a metrics route: bearer, or basic auth with the token as password."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    token: str | None = None
    if scheme.lower() == "bearer":
        token = value.strip()
    elif scheme.lower() == "basic":
        token = _basic_password(value.strip())
    return await _principal(context, request, token, 'Basic realm="parklink metrics"')


Caller = Annotated[Principal, Depends(api_principal)]
