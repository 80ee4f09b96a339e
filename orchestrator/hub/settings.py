"""The `hub:` section of a config run with `--role hub`."""

from __future__ import annotations

from pydantic import Field

from models.assets import Id, Strict


class HubSettings(Strict):
    """How a hub listens to its edges."""

    stale_after: float = Field(
        60.0,
        gt=0,
        description="an edge with no message for this many seconds is marked stale (down); "
        "a killed edge is marked at once by its will",
    )
    companies: list[Id] | None = Field(
        None, description="accept only these companies' edges; None: every company that announces itself"
    )
    max_pending: int = Field(
        100, gt=0, description="results messages kept per company while its model has not arrived yet"
    )
