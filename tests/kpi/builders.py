"""Small builders for KPI tests: a Park without a config file, local times as POSIX seconds."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from models.assets import DataType, KpiRole
from models.park import AssetRef, Park, SignalRef

SignalDef = tuple[str, KpiRole | None, DataType, str]  # name, role, data type, unit


def at(text: str, zone: str = "Europe/Berlin") -> float:
    """POSIX seconds of a local wall time like '2025-03-10 06:00'."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def asset_ref(
    asset: str = "m1",
    *,
    company: str = "acme",
    site: str = "north",
    area: str = "",
    line: str = "line-1",
    pru: float | None = 1.0,
    type: str = "machine",
) -> AssetRef:
    """An AssetRef with sensible defaults."""
    return AssetRef(company, site, area, line, asset, asset, type, "conn", pru)


STANDARD_SIGNALS: list[SignalDef] = [
    ("state", "state", "uint16", ""),
    ("good_count", "good_count", "uint32", ""),
    ("scrap_count", "scrap_count", "uint32", ""),
    ("energy", "energy", "float64", "kWh"),
    ("temperature", None, "float64", "°C"),
]


def make_park(*assets: tuple[AssetRef, list[SignalDef]]) -> Park:
    """A park of the given assets, signals indexed in order."""
    signals: list[SignalRef] = []
    for ref, defs in assets:
        for name, role, data_type, unit in defs:
            signals.append(SignalRef(len(signals), ref, name, role, unit, data_type, None))
    companies = {ref.company: ref.company for ref, _ in assets}
    sites = {(ref.company, ref.site): "Europe/Berlin" for ref, _ in assets}
    return Park("park", "Test park", companies, sites, [ref for ref, _ in assets], signals, [])


def index_of(park: Park, asset: str, signal: str) -> int:
    """The signal index of `asset`'s signal `signal`."""
    for s in park.signals:
        if s.asset.asset == asset and s.name == signal:
            return s.index
    raise KeyError(f"{asset}/{signal}")
