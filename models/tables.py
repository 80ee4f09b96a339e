"""Database tables of the asset model (sqlmodel: SQLite by default, PostgreSQL by URL).

Rows are keyed by their ISA-95 path, so syncing a config is an idempotent upsert and an asset
removed from the config is marked retired rather than deleted (its KPI history keeps a home).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column
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
