"""The unified model rebuilt from the edges' announcements: one `Park` like a config would give.

Each company's part comes from its edge's model message (exporters/mqtt/edge_protocol.py); the
park's own settings (id, name, KPI windows, benchmark k) from the hub's config. Signals get hub
indices in a stable order (company, then as announced), so a rebuild after one edge's change
keeps every other signal's series.
"""

from __future__ import annotations

from collections.abc import Mapping

from exporters.mqtt.edge_protocol import CompanyModel
from models.assets import KpiSettings
from models.park import AssetRef, ConnectionRef, Park, SignalRef

EDGE_CONNECTION = "edge"  # the one connection of every company at the hub: its edge


def build_park(park_id: str, name: str, kpi: KpiSettings, models: Mapping[str, CompanyModel]) -> Park:
    """A Park from the companies' models (in company id order)."""
    companies: dict[str, str] = {}
    sites: dict[tuple[str, str], str] = {}
    shifts = {}
    share = {}
    assets: list[AssetRef] = []
    signals: list[SignalRef] = []
    connections: list[ConnectionRef] = []
    for company in sorted(models):
        model = models[company]
        companies[company] = model.name
        share[company] = list(model.share)
        connections.append(ConnectionRef(company, EDGE_CONNECTION, "edge", None))
        for site in model.sites:
            sites[(company, site.id)] = site.timezone
            if site.shifts:
                shifts[(company, site.id)] = list(site.shifts)
        by_path: dict[str, AssetRef] = {}
        for a in model.assets:
            ref = AssetRef(
                company, a.site, a.area, a.line, a.asset, a.name, a.type, EDGE_CONNECTION, a.ideal_cycle_time
            )
            by_path[ref.path] = ref
            assets.append(ref)
        for s in model.signals:
            asset = by_path.get(s.asset)
            if asset is not None:  # a signal of an asset not announced: left out, never guessed
                signals.append(SignalRef(len(signals), asset, s.name, s.role, s.unit, s.data_type, None))
    return Park(park_id, name, companies, sites, assets, signals, connections, shifts, share, kpi)
