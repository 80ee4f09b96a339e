"""Database tables of the asset model (sqlmodel: SQLite by default, PostgreSQL by URL).

Rows are keyed by their ISA-95 path, so syncing a config is an idempotent upsert and an asset
removed from the config is marked retired rather than deleted (its KPI history keeps a home).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


class EquipmentRow(SQLModel, table=True):
    """One level of the hierarchy: park, company, site, area, line or asset."""

    __tablename__ = "equipment"

    id: int | None = Field(default=None, primary_key=True)
    path: str = Field(index=True, unique=True, max_length=400)
    level: str = Field(max_length=16)
    parent_path: str | None = Field(default=None, max_length=400)
    name: str = Field(default="", max_length=200)
    asset_type: str | None = Field(default=None, max_length=64)
    connection: str | None = Field(default=None, max_length=64)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    retired: bool = False
    updated_at: datetime = Field(default_factory=_now)


class SignalRow(SQLModel, table=True):
    """One signal of one asset, with its binding as configured."""

    __tablename__ = "signal"

    id: int | None = Field(default=None, primary_key=True)
    path: str = Field(index=True, unique=True, max_length=460)
    asset_path: str = Field(index=True, max_length=400)
    name: str = Field(max_length=64)
    role: str | None = Field(default=None, max_length=32)
    unit: str = Field(default="", max_length=32)
    data_type: str = Field(max_length=16)
    binding: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    retired: bool = False
    updated_at: datetime = Field(default_factory=_now)


class KpiResultRow(SQLModel, table=True):
    """The KPIs of one scope over one closed window, with the summed elements they come from.

    Unique on (level, scope, window kind, window label): closing a window twice (a catch-up after
    a restart, a replay) updates the row instead of adding a duplicate.
    """

    __tablename__ = "kpi_result"
    __table_args__ = (UniqueConstraint("level", "scope", "window_kind", "window_label"),)

    id: int | None = Field(default=None, primary_key=True)
    level: str = Field(max_length=16)  # park, company, site, area, line, asset
    scope: str = Field(index=True, max_length=400)  # "" for the park, else company/site/…
    company: str = Field(index=True, max_length=64)  # "" for the park scope
    window_kind: str = Field(max_length=16)
    window_label: str = Field(max_length=64)
    window_start: float = Field(index=True)  # POSIX seconds
    window_end: float
    coverage: float | None = None
    oee: float | None = None
    kpis: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    elements: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    computed_at: datetime = Field(default_factory=_now)


class KpiStateRow(SQLModel, table=True):
    """The KPI engine's state (counters' last values, current states), so a restart loses nothing."""

    __tablename__ = "kpi_state"

    park: str = Field(primary_key=True, max_length=64)
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    closed_until: float = 0.0  # windows ending at or before this instant are persisted
    updated_at: datetime = Field(default_factory=_now)
