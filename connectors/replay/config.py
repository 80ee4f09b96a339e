"""Settings of a replay connection and of one replayed signal."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from models.assets import Strict


class ReplayConnection(Strict):
    """Recorded samples (CSV, see connectors/replay/samples.py) played as if a device sent them."""

    kind: Literal["replay"]
    file: Path = Field(description="the CSV of recorded samples (relative paths: from the working directory)")
    speed: float = Field(
        0.0,
        ge=0,
        description="1: in real time, 10: ten times faster, 0: as fast as the pipeline takes them",
    )
    align: Literal["file", "now"] = Field(
        "file",
        description="'file': samples keep their recorded times; 'now': shifted so the first one is now",
    )
    batch: int = Field(1000, gt=0, le=100_000, description="samples per batch when not paced")


class ReplayBinding(Strict):
    """Which rows of the file feed this signal."""

    source: str | None = Field(
        None,
        description="'<asset path>/<signal>' in the file; default: this signal's own path",
    )
