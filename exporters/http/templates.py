"""Rendering the dashboard's Jinja2 templates, with the security headers every page carries.

The pages run no script and load nothing from elsewhere: the policy below forbids both, so a
template bug cannot turn into script injection and the browser never reaches past the park's own
server (the park network may be offline; a page that phones home would also leak who looks).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on our own form
    # posts, which the login's cross-site check could not tell from a hostile page.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",  # pages carry company data: not for shared caches or the back button
}


def _pct(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value * 100:.1f} %"
    return "n/a"


def _when(value: object) -> str:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float):
        moment = datetime.fromtimestamp(value, UTC)
    else:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(value: object) -> str:
    if not isinstance(value, datetime):
        return ""
    seconds = max(0, int((datetime.now(UTC) - value).total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _number(value: object) -> str:
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")) or abs(value) >= 1e9:
            return f"{value:.4g}"
        if 0 < abs(value) < 1e-3:
            return f"{value:.3g}"
        return f"{value:.3f}".rstrip("0").rstrip(".")  # 111111.5, 5, 0.125
    return "—" if value is None else str(value)


environment = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters.update(pct=_pct, when=_when, ago=_ago, number=_number)


def render(template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """A page from `templates/<template>`."""
    html = environment.get_template(template).render(**values)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
