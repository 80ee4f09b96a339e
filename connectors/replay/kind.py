"""Registration of the replay connector kind."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.base import BoundSignal, ConnectorKind, LinkHealth
from connectors.replay.config import ReplayBinding, ReplayConnection
from connectors.replay.connector import ReplayConnector
from models.assets import DataType


def validate_binding(raw: dict[str, Any], data_type: DataType) -> ReplayBinding:
    del data_type  # the file's values are taken as they are
    return ReplayBinding.model_validate(raw)


def create(conn: ReplayConnection, signals: Sequence[BoundSignal], health: LinkHealth) -> ReplayConnector:
    return ReplayConnector(conn, signals, health)


def explain(conn: ReplayConnection, signals: Sequence[BoundSignal]) -> str:
    pace = "as fast as possible" if conn.speed == 0 else f"at {conn.speed:g}x real time"
    times = "shifted to now" if conn.align == "now" else "as recorded"
    lines = [f"{conn.file}: replayed {pace}, times {times}"]
    lines += [f"  {s.binding.source or s.path}  -> {s.path}" for s in signals]
    return "\n".join(lines)


KIND = ConnectorKind(
    name="replay",
    connection_model=ReplayConnection,
    validate_binding=validate_binding,
    create=create,
    explain=explain,
)
