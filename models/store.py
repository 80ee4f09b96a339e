"""Persistence of the asset model: engine creation and the idempotent sync from a config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Engine, event
from sqlmodel import Session, SQLModel, create_engine, select

from models.park import Park
from models.tables import EquipmentRow, SignalRow, _now


def make_engine(url: str) -> Engine:
    """An engine for `sqlite:///file.db` or `postgresql://…` (driven by psycopg 3)."""
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            # WAL lets the metrics/API threads read while the runtime writes.
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def create_tables(engine: Engine) -> None:
    """Create missing tables (all of parklink's, whichever module declared them)."""
    SQLModel.metadata.create_all(engine)


@dataclass(frozen=True)
class SyncReport:
    added: int
    updated: int
    retired: int
    unchanged: int


def sync_park(engine: Engine, park: Park) -> SyncReport:
    """Make the tables match the park: upsert by path, retire what the config no longer has."""
    wanted_equipment = _equipment_rows(park)
    wanted_signals = _signal_rows(park)
    counts = {"added": 0, "updated": 0, "retired": 0, "unchanged": 0}
    with Session(engine) as session:
        _sync_table(session, EquipmentRow, wanted_equipment, counts)
        _sync_table(session, SignalRow, wanted_signals, counts)
        session.commit()
    return SyncReport(**counts)


Row = TypeVar("Row", EquipmentRow, SignalRow)


def _sync_table(
    session: Session, model: type[Row], wanted: dict[str, dict[str, Any]], counts: dict[str, int]
) -> None:
    existing = {row.path: row for row in session.exec(select(model)).all()}
    for path, values in wanted.items():
        row = existing.pop(path, None)
        if row is None:
            session.add(model(path=path, **values))
            counts["added"] += 1
        elif any(getattr(row, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = _now()
            session.add(row)
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    for row in existing.values():
        if row.retired:
            counts["unchanged"] += 1
            continue
        row.retired, row.updated_at = True, _now()
        session.add(row)
        counts["retired"] += 1


def _equipment_rows(park: Park) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {
        park.id: {"level": "park", "parent_path": None, "name": park.name, "retired": False}
    }

    def level(path: str, kind: str, parent: str, name: str) -> None:
        rows.setdefault(path, {"level": kind, "parent_path": parent, "name": name, "retired": False})

    for company, name in park.companies.items():
        level(f"{park.id}/{company}", "company", park.id, name)
    for company, site in park.sites:
        level(f"{park.id}/{company}/{site}", "site", f"{park.id}/{company}", site)
    for asset in park.assets:
        parent = f"{park.id}/{asset.company}/{asset.site}"
        if asset.area:
            level(f"{parent}/{asset.area}", "area", parent, asset.area)
            parent = f"{parent}/{asset.area}"
        level(f"{parent}/{asset.line}", "line", parent, asset.line)
        rows[f"{park.id}/{asset.path}"] = {
            "level": "asset",
            "parent_path": f"{parent}/{asset.line}",
            "name": asset.name,
            "asset_type": asset.type,
            "connection": asset.connection,
            "attributes": {"params": asset.params, "ideal_cycle_time": asset.ideal_cycle_time},
            "retired": asset.retired,
        }
    return rows


def _signal_rows(park: Park) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for signal in park.signals:
        binding = signal.binding.model_dump(mode="json") if isinstance(signal.binding, BaseModel) else {}
        rows[f"{park.id}/{signal.path}"] = {
            "asset_path": f"{park.id}/{signal.asset.path}",
            "name": signal.name,
            "role": signal.role,
            "unit": signal.unit,
            "data_type": signal.data_type,
            "binding": binding,
            "retired": False,
        }
    return rows
