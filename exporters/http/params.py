"""Query parameters shared by the routes: pagination, time ranges, KPI filters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import HTTPException, Query

from exporters.http.history import RangeError, time_range
from models.assets import WindowKind

Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="items to skip")]
From = Annotated[
    datetime | None,
    Query(alias="from", description="ISO 8601 (UTC if no offset) or POSIX seconds; default: `to` − 1 day"),
]
To = Annotated[datetime | None, Query(alias="to", description="end of the range (exclusive); default: now")]
Window = Annotated[WindowKind | None, Query(description="window kind")]
LevelName = Literal["park", "company", "site", "area", "line", "asset"]
Level = Annotated[LevelName | None, Query(description="scope level")]
Scope = Annotated[str | None, Query(max_length=400, description="exact scope path, e.g. acme/north/l1")]


def checked_range(start: datetime | None, end: datetime | None, now: float) -> tuple[float, float]:
    """`history.time_range`, with its errors as 422 answers."""
    try:
        return time_range(start, end, now)
    except RangeError as exc:  # shaped like FastAPI's validation errors, as the OpenAPI document says
        raise HTTPException(
            422, [{"loc": ["query", "from"], "msg": str(exc), "type": "value_error"}]
        ) from None
