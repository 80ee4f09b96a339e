"""The hub's live KPIs: the results edges share and their park view (a `KpiSource`)."""

from __future__ import annotations

import time

from sqlalchemy import Engine

from models.park import Park
from orchestrator.kpi.elements import Elements
from orchestrator.kpi.results import ScopedResult
from orchestrator.sharing import ParkView, park_view


class HubKpis:
    """The hub's live KPIs: the results edges share, their park view (a `KpiSource`)."""

    def __init__(self, park: Park) -> None:
        self.park = park
        self.current: list[ScopedResult] = []
        self.view = ParkView()
        self.asset_types: dict[str, str] = {}
        self.cumulative: dict[str, Elements] = {}  # per-asset counters stay at the edges
        self.job_seconds = 0.0
        self.db: Engine | None = None
        self._by_company: dict[str, list[ScopedResult]] = {}

    def set_park(self, park: Park) -> None:
        self.park = park
        self.asset_types = {a.path: a.type for a in park.assets}
        self._by_company = {c: rs for c, rs in self._by_company.items() if c in park.companies}
        self.recompute()

    def take_current(self, company: str, results: list[ScopedResult]) -> None:
        self._by_company[company] = results
        self.recompute()

    def recompute(self) -> None:
        started = time.perf_counter()
        self.current = [r for company in sorted(self._by_company) for r in self._by_company[company]]
        k = self.park.kpi.benchmark_min_companies
        self.view = park_view(self.current, self.park.share, self.asset_types, k)
        self.job_seconds += time.perf_counter() - started
