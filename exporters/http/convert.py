"""Runtime objects → API answers (schemas.py), and pagination of in-memory lists."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from connectors.base import LinkHealth
from exporters.http.schemas import (
    AssetOut,
    BenchmarkOut,
    HealthOut,
    KpiOut,
    Page,
    QualityName,
    SignalOut,
)
from models.park import AssetRef, SignalRef
from models.sample import Sample
from models.status import name_of, quality_of
from orchestrator.kpi.results import ScopedResult
from orchestrator.sharing import Benchmark, PublishedKpis

T = TypeVar("T")
_QUALITY: dict[int, QualityName] = {0: "bad", 1: "uncertain", 2: "good"}


def at(seconds: float) -> datetime:
    """POSIX seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def utc(seconds: float | None) -> datetime | None:
    """POSIX seconds as an aware UTC datetime; None stays None."""
    return None if seconds is None else at(seconds)


def json_value(value: object) -> Any:
    """A device value that JSON can carry: NaN and infinities are null (JSON has none), bytes hex."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dict):  # a decoded OPC UA structure
        return {str(k): json_value(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)  # datetimes, variants: their text form


def finite(kpis: dict[str, Any]) -> dict[str, float | None]:
    """KPI values as JSON numbers, null where undefined."""
    out: dict[str, float | None] = {}
    for name, value in kpis.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value) if math.isfinite(value) else None
        elif value is None:
            out[name] = None
    return out


def paginate(items: Sequence[T], limit: int, offset: int) -> Page[T]:
    """One page of a list, with the total."""
    return Page[T](items=list(items[offset : offset + limit]), total=len(items), limit=limit, offset=offset)


def health_out(health: LinkHealth, private: bool) -> HealthOut:
    """A connection's health; `private` adds the last error text (company and admins only)."""
    rtt = health.last_rtt
    return HealthOut(
        company=health.company,
        connection=health.connection,
        kind=health.kind,
        up=health.up,
        down_since=None if health.up else utc(health.down_since),
        samples=health.samples,
        read_errors=health.read_errors,
        reconnects=health.reconnects,
        round_trip_seconds=rtt if math.isfinite(rtt) else None,
        last_error=(health.last_error or None) if private else None,
    )


def asset_out(asset: AssetRef) -> AssetOut:
    """An asset's place and type."""
    return AssetOut(
        path=asset.path,
        company=asset.company,
        site=asset.site,
        area=asset.area,
        line=asset.line,
        id=asset.asset,
        name=asset.name or asset.asset,
        type=asset.type,
        connection=asset.connection,
        ideal_cycle_time=asset.ideal_cycle_time,
        retired=asset.retired,
    )


def signal_out(signal: SignalRef, sample: Sample | None) -> SignalOut:
    """A signal with its latest sample."""
    good = sample is not None and quality_of(sample.status) > 0
    return SignalOut(
        name=signal.name,
        path=signal.path,
        role=signal.role,
        unit=signal.unit,
        data_type=signal.data_type,
        writable=bool(getattr(signal.binding, "writable", False)),
        value=json_value(sample.value) if good and sample is not None else None,
        quality=None if sample is None else _QUALITY[quality_of(sample.status)],
        status=None if sample is None else name_of(sample.status),
        source_time=None if sample is None else utc(sample.source_time),
        server_time=None if sample is None else utc(sample.server_time),
    )


def _kpi(
    level: str, scope: str, names: Sequence[str], kind: str, label: str, start: float, end: float
) -> dict[str, Any]:
    company, site, area, line, asset = names
    return {
        "level": level,
        "scope": scope,
        "company": company,
        "site": site,
        "area": area,
        "line": line,
        "asset": asset,
        "window": kind,
        "window_label": label,
        "start": at(start),
        "end": at(end),
    }


def scoped_out(r: ScopedResult) -> KpiOut:
    """A company's own result (every KPI)."""
    base = _kpi(r.level, r.scope, r.names, r.window_kind, r.window_label, r.start, r.end)
    return KpiOut(**base, kpis=finite(r.result.kpis()), suspect=list(r.suspect))


def published_out(p: PublishedKpis) -> KpiOut:
    """A result as the park view publishes it (only shared KPIs)."""
    base = _kpi(p.level, p.scope, p.names, p.window_kind, p.window_label, p.start, p.end)
    return KpiOut(**base, kpis=finite(p.kpis), companies=p.companies if p.level == "park" else None)


def benchmark_out(b: Benchmark) -> BenchmarkOut:
    """A benchmark (never names a company)."""
    return BenchmarkOut(
        asset_type=b.asset_type,
        kpi=b.kpi,
        window=b.window_kind,
        window_label=b.window_label,
        median=b.median,
        q1=b.q1,
        q3=b.q3,
        best=b.best,
        assets=b.assets,
        companies=b.companies,
    )
