"""The unified asset model as declared in a config: Park ▸ Company ▸ Site ▸ (Area) ▸ Line ▸ Asset ▸ Signal.

ISA-95 / IEC 62264 levels: a company is an enterprise, a line a work centre, an asset a work unit.
Asset types are templates: they declare signals (unit, data type, KPI role) and binding templates
with `{param}` placeholders, so that 300 similar machines take 300 one-line instances.

These are pydantic models with unknown keys forbidden. The connection type is a parameter: the
orchestrator fills it with the union of the registered connector kinds' models, so models/ never
imports a connector.
"""

from __future__ import annotations

import zoneinfo
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

Id = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$"),
    Field(description="lower-case letters, digits, '_' and '-'; starts with a letter or digit"),
]
SignalName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]

KpiRole = Literal[
    "state", "good_count", "scrap_count", "rework_count", "total_count", "ideal_cycle_time", "energy"
]
DataType = Literal[
    "bool",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float32",
    "float64",
    "string",
    "raw",
    "datetime",
    "bytes",
    "variant",
]
Scalar = str | int | float | bool


class Strict(BaseModel):
    """Base of every config model: unknown keys are an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


KpiName = Literal[
    "availability",
    "effectiveness",
    "quality",
    "quality_weighted",
    "oee",
    "nee",
    "technical_efficiency",
    "utilization_efficiency",
    "allocation_efficiency",
    "setup_rate",
    "scrap_ratio",
    "rework_ratio",
    "throughput_per_hour",
    "mtbf",
    "mttr",
    "energy_per_unit",
    "energy_per_good_unit",
    "coverage",
]
WindowKind = Literal["rolling_hour", "hour", "day", "shift"]
ShareLevel = Literal["asset", "line", "site", "company"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
StateBucket = Literal["production", "setup", "delay", "no_order", "planned_down", "unknown"]


class StateMapSpec(Strict):
    """Raw state values → ISO 22400 time elements (APT, AUST, ADET, ADOT, PDOT, unknown)."""

    buckets: dict[StateBucket, list[Any]] = Field(
        description="bucket → raw values, e.g. {production: [3], setup: [4], delay: [1], "
        "no_order: [2], planned_down: [0]}; lists of lists for composite states"
    )
    inputs: list[SignalName] = Field(
        default_factory=list,
        description="signals whose values form the raw state as a tuple (e.g. [item_state, operation_mode]); "
        "empty: the asset's one signal with role 'state'",
    )
    default: StateBucket = Field("unknown", description="bucket of unmapped values")


StateMapRef = Annotated[
    str | StateMapSpec,
    Field(description="a ready map ('demo_machine_state', 'machinery', 'machine_tool') or an own map"),
]


class SignalSpec(Strict):
    """A signal that every asset of a type has."""

    role: KpiRole | None = Field(None, description="what the KPI engine reads this signal as")
    unit: str = Field("", description="unit as the device gives it, e.g. 'ms', 'kWh', '°C'; '' for none")
    type: DataType = Field("float64", description="data type on the device")
    description: str = ""
    binding: dict[str, Any] = Field(
        default_factory=dict,
        description="binding template for the connector, '{param}' placeholders filled per asset",
    )
    max_rate: float | None = Field(
        None,
        gt=0,
        description="counters: the most units per second the device can count; a drop is a register "
        "wrap only if the wrapped increase fits this rate (default for part counters: 1 / PRU), "
        "else a reset",
    )
    rollover: int | None = Field(
        None,
        ge=2,
        description="counters: the value at which the counter wraps back to 0, e.g. 1000000 for a "
        "6-digit counter (default: 2^bits of an integer type)",
    )

    @model_validator(mode="after")
    def _counter_settings_on_counters(self) -> SignalSpec:
        if (self.max_rate is not None or self.rollover is not None) and self.role not in _COUNTER_ROLES:
            raise ValueError(
                f"max_rate and rollover apply to counters (roles {', '.join(sorted(_COUNTER_ROLES))}), "
                f"not to role {self.role!r}"
            )
        return self


_COUNTER_ROLES = frozenset({"good_count", "scrap_count", "rework_count", "total_count", "energy"})


class AssetType(Strict):
    """A template of signals shared by similar machines."""

    description: str = ""
    signals: dict[SignalName, SignalSpec] = Field(min_length=1)
    parameters: dict[str, Scalar] = Field(
        default_factory=dict, description="default instance parameters for the binding templates"
    )
    ideal_cycle_time: float | None = Field(
        None, gt=0, description="planned run time per unit (ISO 22400 PRU), seconds"
    )
    state_map: StateMapRef = "demo_machine_state"


class Asset(Strict):
    """One machine (ISA-95 work unit): an instance of an asset type bound to one connection."""

    id: Id
    name: str = ""
    type: str
    connection: str = Field(description="id of a connection of the same company")
    params: dict[str, Scalar] = Field(default_factory=dict, description="fills the type's placeholders")
    signals: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-signal binding fields overriding the type's template"
    )
    ideal_cycle_time: float | None = Field(None, gt=0, description="overrides the type's PRU, seconds")
    state_map: StateMapRef | None = Field(None, description="overrides the type's state map")
    retired: bool = False


class Line(Strict):
    """A production line (ISA-95 work centre)."""

    id: Id
    name: str = ""
    assets: list[Asset] = Field(default_factory=list)


class Area(Strict):
    """An optional grouping of lines inside a site."""

    id: Id
    name: str = ""
    lines: list[Line] = Field(default_factory=list)


class Shift(Strict):
    """A recurring shift in the site's wall-clock time; `end` ≤ `start` crosses midnight."""

    name: SignalName
    start: str = Field(pattern=r"^\d{2}:\d{2}$", description="HH:MM local time")
    end: str = Field(pattern=r"^\d{2}:\d{2}$", description="HH:MM local time")
    breaks: list[Annotated[str, Field(pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")]] = Field(
        default_factory=list, description="planned breaks 'HH:MM-HH:MM' (planned down time)"
    )
    days: list[Weekday] = Field(
        default_factory=lambda: list[Weekday](["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
        description="weekdays the shift starts on",
    )


class Site(Strict):
    """A plant of a company, with its own time zone (for shift calendars)."""

    id: Id
    name: str = ""
    timezone: str = "UTC"
    shifts: list[Shift] = Field(default_factory=list, description="the site's shift calendar")
    areas: list[Area] = Field(default_factory=list)
    lines: list[Line] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. 'Europe/Berlin')") from None
        return value


class SharePolicy(Strict):
    """What a company publishes to the park: these KPIs, at this level, for these windows."""

    kpis: list[KpiName] | Literal["all"] = Field(description="KPI names, or 'all'")
    level: ShareLevel = Field(
        "company", description="finest level published: asset, line, site or company (coarser levels too)"
    )
    windows: list[WindowKind] = Field(
        default_factory=lambda: list[WindowKind](["shift", "day"]), description="windows published"
    )


ConnectionT = TypeVar("ConnectionT")


class Company(Strict, Generic[ConnectionT]):
    """A tenant of the park: owns its connections and its plants; sees no other company's data."""

    id: Id
    name: str = ""
    connections: dict[Id, ConnectionT] = Field(default_factory=dict)
    sites: list[Site] = Field(default_factory=list)
    share: list[SharePolicy] = Field(
        default_factory=list, description="sharing policy with the park; nothing is shared by default"
    )


class ParkInfo(Strict):
    id: Id
    name: str = ""


class DatabaseSettings(Strict):
    url: str = Field(
        "sqlite:///parklink.db",
        description="SQLAlchemy URL: sqlite:///file.db or postgresql://user@host/db; "
        "PARKLINK_DATABASE_URL overrides it",
    )


class MetricsSettings(Strict):
    host: str = Field("127.0.0.1", description="bind address; loopback by default")
    port: int = Field(9108, ge=0, le=65535)


class KpiSettings(Strict):
    """How the KPI engine runs."""

    windows: list[WindowKind] = Field(
        default_factory=lambda: list[WindowKind](["rolling_hour", "hour", "day", "shift"]),
        description="windows computed",
    )
    update_interval: float = Field(10.0, gt=0, description="seconds between updates of current windows")
    state_interval: float = Field(
        30.0, gt=0, description="seconds between saves of the engine state (where a restart resumes)"
    )
    benchmark_min_companies: int = Field(
        3, ge=2, description="park benchmarks per asset type need this many contributing companies"
    )
    retention_days: float = Field(400.0, gt=0, description="closed KPI results older than this are deleted")
    max_effectiveness: float = Field(
        1.5,
        gt=1,
        description="a result with a higher effectiveness is flagged suspect and never shared: above 1 "
        "the PRU is too generous (shown as is, never clamped), far above 1 a counter or mapping is wrong",
    )
    counter_tolerance: float = Field(
        1.5,
        ge=1,
        description="a counter drop is a register wrap only if the wrapped increase is at most this "
        "many times what max_rate (or 1 / PRU) allows in the elapsed time; else it is a reset",
    )
    clock: Literal["wall", "data"] = Field(
        "wall",
        description="'wall': windows follow this machine's clock; 'data': they follow the newest sample "
        "time seen (replaying recorded days, backfills: results then depend only on the samples)",
    )


class ParkConfig(Strict, Generic[ConnectionT]):
    """The whole config file."""

    park: ParkInfo
    database: DatabaseSettings = DatabaseSettings()
    metrics: MetricsSettings = MetricsSettings()
    kpi: KpiSettings = KpiSettings()
    asset_types: dict[Id, AssetType] = Field(default_factory=dict)
    companies: list[Company[ConnectionT]] = Field(
        default_factory=list, description="the companies and their plants (none in a hub's config)"
    )
