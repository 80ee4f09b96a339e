"""What every request handler reads: the runtime, the settings, indexes of the park, throttling state."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Protocol

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from exporters.http.metrics_views import MetricsViews, metrics_views
from exporters.http.ratelimit import FailedLogins
from exporters.http.settings import HttpSettings
from models.park import AssetRef, Park, SignalRef
from orchestrator.kpi.service import KpiSource
from orchestrator.snapshot import Snapshot

if TYPE_CHECKING:  # the runtime will import this package to serve it: no import cycle at run time
    from orchestrator.runtime import Link


class Served(Protocol):
    """What the app serves: an all-in-one or edge `Runtime`, or a hub's rebuilt park."""

    @property
    def park(self) -> Park: ...
    @property
    def snapshot(self) -> Snapshot: ...
    @property
    def links(self) -> Sequence[Link]: ...
    @property
    def kpi(self) -> KpiSource: ...
    @property
    def registry(self) -> CollectorRegistry: ...
    @property
    def engine(self) -> Engine | None: ...


@dataclass
class Context:
    """Per-app state, built once by `create_app`."""

    runtime: Served
    settings: HttpSettings
    token_engine: Engine | None = None  # a separate token store, when the settings name one
    limiter: FailedLogins = field(init=False)
    assets: dict[str, AssetRef] = field(init=False)  # by path (company/site[/area]/line/asset)
    signals: dict[str, list[SignalRef]] = field(init=False)  # by asset path, in index order
    links: dict[tuple[str, str], Link] = field(init=False)  # by (company, connection id)
    metrics: MetricsViews = field(init=False)
    tokens_ready: bool = False

    def __post_init__(self) -> None:
        self.limiter = FailedLogins(self.settings.failed_logins_per_minute)
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the indexes from the runtime's park (a hub calls it when an edge's model changes)."""
        park = self.runtime.park
        self.assets = {a.path: a for a in park.assets}
        signals: dict[str, list[SignalRef]] = defaultdict(list)
        for s in park.signals:
            signals[s.asset.path].append(s)
        self.signals = dict(signals)
        self.links = {(link.ref.company, link.ref.id): link for link in self.runtime.links}
        self.metrics = metrics_views(self.runtime)

    @property
    def park(self) -> Park:
        return self.runtime.park

    def database(self) -> Engine | None:
        """The park database (KPI history), once the runtime has connected it."""
        return self.runtime.engine or self.runtime.kpi.db

    def token_database(self) -> Engine | None:
        """Where tokens live: their own store, or the park database."""
        return self.token_engine or self.database()


def get_context(request: Request) -> Context:
    """The app's context (a FastAPI dependency)."""
    context: Context = request.app.state.parklink
    return context


Ctx = Annotated[Context, Depends(get_context)]
