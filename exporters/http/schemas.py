"""The shapes of API answers (pydantic models; they make the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from models.assets import SharePolicy

T = TypeVar("T")
QualityName = Literal["good", "uncertain", "bad"]


class Out(BaseModel):
    """Base of the answers: closed shapes, documented as such."""

    model_config = ConfigDict(extra="forbid")


class Page(Out, Generic[T]):
    """One page of a list: `items`, the `total` matching the filters, and the window asked for."""

    items: list[T]
    total: int
    limit: int
    offset: int


class Me(Out):
    role: Literal["viewer", "operator", "park", "admin"]
    company: str | None
    token_name: str


class ParkOut(Out):
    id: str
    name: str
    windows: list[str] = Field(description="KPI windows computed")
    benchmark_min_companies: int


class CompanyOut(Out):
    id: str
    name: str
    sites: int
    share: list[SharePolicy] = Field(description="what the company publishes to the park")


class ShiftOut(Out):
    name: str
    start: str
    end: str
    breaks: list[str]


class SiteOut(Out):
    company: str
    id: str
    timezone: str
    shifts: list[ShiftOut]


class LineOut(Out):
    company: str
    site: str
    area: str
    id: str
    path: str
    assets: int


class HealthOut(Out):
    company: str
    connection: str
    kind: str
    up: bool
    down_since: datetime | None = Field(description="when the connection went down; null while up")
    samples: int
    read_errors: int
    reconnects: int
    round_trip_seconds: float | None
    last_error: str | None = Field(description="the company's and admins' eyes only; null for the park")


class AssetOut(Out):
    path: str = Field(description="company/site[/area]/line/asset: the asset's id in URLs and KPI scopes")
    company: str
    site: str
    area: str
    line: str
    id: str
    name: str
    type: str
    connection: str
    ideal_cycle_time: float | None
    retired: bool


class SignalOut(Out):
    name: str
    path: str
    role: str | None
    unit: str
    data_type: str
    writable: bool
    value: Any = Field(description="latest value (null when Bad, absent or not finite); bytes as hex")
    quality: QualityName | None = Field(description="null: no sample yet")
    status: str | None = Field(description="OPC UA status code name of the latest sample")
    source_time: datetime | None
    server_time: datetime | None


class AssetDetail(AssetOut):
    signals: list[SignalOut]
    connection_health: HealthOut | None


class KpiOut(Out):
    level: str
    scope: str = Field(description="'' for the park, else company/site[/area]/line/asset down to the level")
    company: str
    site: str
    area: str
    line: str
    asset: str
    window: str
    window_label: str
    start: datetime
    end: datetime
    kpis: dict[str, float | None]
    companies: int | None = Field(None, description="park aggregates: contributing companies")
    suspect: list[str] = Field(
        default_factory=list,
        description="why the result is physically impossible (e.g. 'effectiveness 4.25 > 1.5', "
        "'contains suspect asset …'); such a result is never shared. Empty when plausible",
    )


class BenchmarkOut(Out):
    asset_type: str
    kpi: str
    window: str
    window_label: str
    median: float
    q1: float
    q3: float
    best: float
    assets: int
    companies: int


class WriteIn(Out):
    value: bool | int | float | str = Field(description="the value to write, in the signal's data type")


class WriteOut(Out):
    signal: str
    status: str = Field(description="OPC UA status code name returned by the device, e.g. Good, BadTimeout")
    code: int
    good: bool
