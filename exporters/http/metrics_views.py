"""The three Prometheus views served by the app, each its own registry.

- full: the runtime's registry (every raw signal, connection and KPI): administrators only;
- park: `KpiCollector(service, "park")`, what sharing publishes plus benchmarks;
- company: one company's raw signals, assets and connections (the ParkCollector's own logic over
  the company's slice of the park) plus `KpiCollector(service, "company", id)`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from exporters.prometheus.collector import ParkCollector
from exporters.prometheus.kpi_collector import KpiCollector
from models.park import Park

if TYPE_CHECKING:
    from exporters.http.context import Served


def company_slice(park: Park, company: str) -> Park:
    """The park as one company's collector may see it: its assets, signals and connections only.

    Signal indices are kept, so the slice reads the same snapshot slots as the whole park.
    """
    return replace(
        park,
        companies={company: park.companies[company]},
        sites={key: zone for key, zone in park.sites.items() if key[0] == company},
        assets=[a for a in park.assets if a.company == company],
        signals=[s for s in park.signals if s.asset.company == company],
        connections=[c for c in park.connections if c.company == company],
        shifts={key: s for key, s in park.shifts.items() if key[0] == company},
        share={company: park.share.get(company, [])},
    )


@dataclass(frozen=True)
class MetricsViews:
    """A registry per view (registries are cheap: collectors only build families at scrape time)."""

    full: CollectorRegistry
    park: CollectorRegistry
    companies: dict[str, CollectorRegistry]


def metrics_views(runtime: Served) -> MetricsViews:
    """Registries for the runtime's park."""
    park_registry = CollectorRegistry(auto_describe=False)
    park_registry.register(KpiCollector(runtime.kpi, "park"))
    companies: dict[str, CollectorRegistry] = {}
    health = [link.health for link in runtime.links]
    for company in runtime.park.companies:
        registry = CollectorRegistry(auto_describe=False)
        own = [h for h in health if h.company == company]
        registry.register(ParkCollector(company_slice(runtime.park, company), runtime.snapshot, own))
        registry.register(KpiCollector(runtime.kpi, "company", company))
        companies[company] = registry
    return MetricsViews(runtime.registry, park_registry, companies)
