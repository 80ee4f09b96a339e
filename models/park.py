"""The resolved park: flat, indexed tables built once from a validated config.

Templates are expanded, bindings validated by their connector kind, and every signal gets an
integer index. The hot path (connectors → snapshot → metrics) works on these indices only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models.assets import DataType, KpiRole, KpiSettings, SharePolicy, Shift


@dataclass(frozen=True, slots=True)
class AssetRef:
    """One asset with its place in the hierarchy (ISA-95 path)."""

    company: str
    site: str
    area: str  # "" when the line sits directly under the site
    line: str
    asset: str
    name: str
    type: str
    connection: str
    ideal_cycle_time: float | None
    params: dict[str, Any] = field(default_factory=dict)
    retired: bool = False
    state_map: Any = "demo_machine_state"  # a ready map name or a StateMapSpec (models/assets.py)

    @property
    def path(self) -> str:
        levels = (self.company, self.site, self.area, self.line, self.asset)
        return "/".join(level for level in levels if level)


@dataclass(frozen=True, slots=True)
class SignalRef:
    """One signal of one asset, bound to a connection."""

    index: int
    asset: AssetRef
    name: str
    role: KpiRole | None
    unit: str
    data_type: DataType
    binding: Any  # the connector kind's binding model
    max_rate: float | None = None  # counters: most units per second the device can count
    rollover: int | None = None  # counters: the value at which it wraps to 0 (else its register width)

    @property
    def path(self) -> str:
        return f"{self.asset.path}/{self.name}"


@dataclass(frozen=True, slots=True)
class ConnectionRef:
    """A connection of a company, with its kind's validated settings."""

    company: str
    id: str
    kind: str
    settings: Any


@dataclass(frozen=True)
class Park:
    """Everything the runtime needs to know about the park, resolved and indexed."""

    id: str
    name: str
    companies: dict[str, str]  # id → display name
    sites: dict[tuple[str, str], str]  # (company, site) → time zone
    assets: list[AssetRef]
    signals: list[SignalRef]
    connections: list[ConnectionRef]
    shifts: dict[tuple[str, str], list[Shift]] = field(default_factory=dict)  # (company, site) →
    share: dict[str, list[SharePolicy]] = field(default_factory=dict)  # company → its policies
    kpi: KpiSettings = field(default_factory=KpiSettings)

    def signals_of(self, company: str, connection: str) -> list[SignalRef]:
        """The signals bound to one connection, in index order."""
        return [s for s in self.signals if s.asset.company == company and s.asset.connection == connection]
