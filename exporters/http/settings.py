"""Settings of the HTTP API and dashboard: bind address, token store, login throttling, /metrics access.

Validated once, at load, like every parklink config model (unknown keys are an error). No I/O here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from models.assets import Strict

FullMetricsAccess = Literal["admin_token", "open_on_loopback"]
CookieSecure = Literal["auto", "always"]


class HttpSettings(Strict):
    """Where the API listens and how it authenticates."""

    host: str = Field("127.0.0.1", description="bind address; loopback by default (put TLS in front)")
    port: int = Field(8080, ge=0, le=65535, description="TCP port; 0 picks a free one")
    token_database: str | None = Field(
        None,
        description="SQLAlchemy URL of the token store (sqlite:///tokens.db, postgresql://…); "
        "None: the park database",
    )
    failed_logins_per_minute: int = Field(
        10, ge=1, le=10_000, description="failed logins per client IP per minute before 429"
    )
    full_metrics: FullMetricsAccess = Field(
        "admin_token",
        description="who may scrape /metrics (every company's raw data): an admin token, or also "
        "anonymous clients on loopback while the server is bound to loopback",
    )
    cookie_secure: CookieSecure = Field(
        "auto", description="mark the dashboard cookie Secure: when the request was https, or always"
    )
    session_hours: float = Field(12.0, gt=0, le=24 * 30, description="dashboard login lifetime")
