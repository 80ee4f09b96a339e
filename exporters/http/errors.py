"""The error answers of the API: fixed texts that carry no data (no ids, no values, no hints).

404 also stands for "exists, but not for you": a company token asking for another company's asset
gets exactly what it would get for an asset that does not exist, so existence does not leak.
"""

from __future__ import annotations

import math

from fastapi import HTTPException


def unauthorized(scheme: str = "Bearer") -> HTTPException:
    """401: no credentials, or credentials that are not a valid token."""
    return HTTPException(401, "not authenticated", headers={"WWW-Authenticate": scheme})


def forbidden() -> HTTPException:
    """403: a valid token whose role may not use this route at all."""
    return HTTPException(403, "forbidden")


def not_found() -> HTTPException:
    """404: no such thing, or nothing the caller may know of."""
    return HTTPException(404, "not found")


def too_many_failures(retry_after: float) -> HTTPException:
    """429: this client address failed to log in too often; wait `retry_after` seconds."""
    return HTTPException(
        429, "too many failed logins", headers={"Retry-After": str(max(1, math.ceil(retry_after)))}
    )


def unavailable() -> HTTPException:
    """503: the database is not connected yet (the runtime has not started)."""
    return HTTPException(503, "database not available")
