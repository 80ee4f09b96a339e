"""The runtime: one asyncio loop running every connection of the park into one snapshot.

Each connection runs under a supervisor task: a connector that raises (a bug, not a device fault,
which connectors handle themselves) is logged with its traceback and restarted after a backoff,
so one failing connection never stops the others. Shutdown cancels every connector and waits at
most `SHUTDOWN_SECONDS` for them to close their sessions. Under the data clock, when every
connection is a recording (`FiniteConnector`) and all have played, the KPI service closes the
windows that ended by the last sample at once (`KpiService.finish`) rather than at stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from connectors.base import BoundSignal, Connector, ConnectorKind, FiniteConnector, LinkHealth
from connectors.common.backoff import Backoff
from exporters.http.server import HttpServer, serve
from exporters.mqtt.edge_feed import EdgeFeed
from exporters.mqtt.kpi_feed import KpiFeed
from exporters.mqtt.metrics import MqttCollector
from exporters.mqtt.publisher import MqttPublisher
from exporters.prometheus.collector import ParkCollector
from exporters.prometheus.kpi_collector import KpiCollector
from exporters.prometheus.server import MetricsServer, serve_metrics
from models.park import ConnectionRef, Park
from models.store import SyncReport, create_tables, make_engine, sync_park
from orchestrator.config import LoadedConfig, Role
from orchestrator.kpi.clock import DataClock
from orchestrator.kpi.results import ScopedResult
from orchestrator.kpi.service import KpiService
from orchestrator.snapshot import Snapshot

log = logging.getLogger("parklink.runtime")
SHUTDOWN_SECONDS = 5.0


def bound_signals(park: Park, ref: ConnectionRef) -> list[BoundSignal]:
    """What a connector of `ref` is handed: its signals with their validated bindings."""
    return [
        BoundSignal(s.index, s.path, s.data_type, s.binding, bool(getattr(s.binding, "writable", False)))
        for s in park.signals_of(ref.company, ref.id)
    ]


@dataclass
class Link:
    """One configured connection, its connector and its health."""

    ref: ConnectionRef
    connector: Connector
    health: LinkHealth
    signals: Sequence[BoundSignal]


@dataclass
class Runtime:
    """Everything `parklink run` keeps alive."""

    loaded: LoadedConfig
    kinds: Mapping[str, ConnectorKind]
    metrics_host: str | None = None
    metrics_port: int | None = None
    park: Park = field(init=False)
    snapshot: Snapshot = field(init=False)
    links: list[Link] = field(init=False, default_factory=list)
    kpi: KpiService = field(init=False)
    mqtt: MqttPublisher | None = field(init=False)
    http: HttpServer | None = field(init=False, default=None)
    http_port: int | None = None
    role: Role = "all"
    healths: list[LinkHealth] = field(init=False)
    registry: CollectorRegistry = field(init=False)
    metrics: MetricsServer | None = field(init=False, default=None)
    engine: Engine | None = field(init=False, default=None)
    _tasks: list[asyncio.Task[None]] = field(init=False, default_factory=list)
    _mqtt_task: list[asyncio.Task[None]] = field(init=False, default_factory=list)
    _finishing: asyncio.Task[list[ScopedResult]] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.park = self.loaded.park
        self.snapshot = Snapshot(len(self.park.signals))
        for ref in self.park.connections:
            health = LinkHealth(ref.id, ref.kind, ref.company)
            bound = bound_signals(self.park, ref)
            connector = self.kinds[ref.kind].create(ref.settings, bound, health)
            self.links.append(Link(ref, connector, health, bound))
        clock: Callable[[], float] = time.time
        if self.park.kpi.clock == "data":
            data_clock = DataClock()  # listens before the engine: its time covers the batch it feeds
            self.snapshot.listeners.append(data_clock.on_batch)
            clock = data_clock
        self.kpi = KpiService(self.park, db=None, clock=clock)
        if isinstance(clock, DataClock):
            clock.on_first = self.kpi.start_at
        self.snapshot.listeners.append(self.kpi.engine.feed)
        self.registry = CollectorRegistry()
        self.healths = [link.health for link in self.links]
        self.registry.register(ParkCollector(self.park, self.snapshot, self.healths))
        self.registry.register(KpiCollector(self.kpi, "full"))
        self.mqtt = None
        mqtt_settings = self.loaded.mqtt
        if mqtt_settings is not None:
            self.mqtt = MqttPublisher(mqtt_settings, self.park)
            self.snapshot.listeners.append(self.mqtt.on_batch)
            self.kpi.listeners.append(KpiFeed(self.mqtt).on_results)
            if self.role == "edge":
                self.kpi.listeners.append(EdgeFeed(self.mqtt, self.park).on_results)
            self.healths.append(self.mqtt.health.link)
            self.registry.register(MqttCollector(self.mqtt.health))

    async def start(self) -> None:
        """Sync the asset model to the database, serve metrics, start every connection."""
        self.engine = make_engine(self.loaded.database_url)
        report = await asyncio.to_thread(self._sync_model, self.engine)
        log.info(
            "asset model synced: %d added, %d updated, %d retired, %d unchanged",
            report.added,
            report.updated,
            report.retired,
            report.unchanged,
        )
        self.kpi.db = self.engine
        await self.kpi.start()
        self.http = await serve(self, port=self.http_port, settings=self.loaded.http)
        settings = self.loaded.config.metrics
        host = self.metrics_host or settings.host
        port = settings.port if self.metrics_port is None else self.metrics_port
        self.metrics = serve_metrics(self.registry, host, port)
        # The park, its bindings and collectors live as long as the process: move them out of the
        # garbage collector's sight, so full collections stop walking ~10 objects per signal.
        gc.freeze()
        for link in self.links:
            self._tasks.append(asyncio.create_task(self._supervise(link), name=f"link {link.ref.id}"))
        played = [link.connector.played for link in self.links if isinstance(link.connector, FiniteConnector)]
        if self.park.kpi.clock == "data" and played and len(played) == len(self.links):
            self._tasks.append(asyncio.create_task(self._when_played(played), name="end of data"))
        if self.mqtt is not None:
            self._mqtt_task.append(asyncio.create_task(self.mqtt.run(), name="mqtt"))
        log.info(
            "running %d connections, %d assets, %d signals; metrics on http://%s:%d/metrics; "
            "API and dashboard on http://%s:%d/dashboard",
            len(self.links),
            len(self.park.assets),
            len(self.park.signals),
            host,
            self.metrics.port,
            self.loaded.http.host,
            self.http.port if self.http else 0,
        )

    def _sync_model(self, engine: Engine) -> SyncReport:
        create_tables(engine)
        return sync_park(engine, self.park)

    async def _supervise(self, link: Link) -> None:
        backoff = Backoff(1.0, 60.0)
        sink = self.snapshot.push
        while True:
            try:
                await link.connector.run(sink)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s/%s: connector crashed; restarting", link.ref.company, link.ref.id)
                link.health.mark_down("connector crashed")
                link.health.read_errors += 1
                await asyncio.sleep(backoff.next_delay())

    async def _when_played(self, played: list[asyncio.Event]) -> None:
        """Every connection has played its whole recording: no sample can come any more, so the
        windows that ended by the last one need not wait for late samples (nor for the stop)."""
        for event in played:
            await event.wait()
        # Shielded, and awaited by `stop`: a stop meanwhile never cuts a database write half done.
        self._finishing = asyncio.create_task(self.kpi.finish(), name="closing the last windows")
        results = await asyncio.shield(self._finishing)
        log.info("every recording played: %d KPI results of the last windows closed", len(results))

    async def stop(self) -> None:
        """Stop connections (bounded wait), close KPI windows, hand what is left to the MQTT queue,
        then stop metrics and close the database."""
        if self.http is not None:
            await self.http.stop()
            self.http = None
        await self._cancel(self._tasks)
        self._tasks.clear()
        if self._finishing is not None:
            await asyncio.wait([self._finishing])
        await self.kpi.stop()
        if self.mqtt is not None:
            await self.mqtt.flush()  # on disk now: published after the next start
            await self._cancel(self._mqtt_task)
            self.mqtt.close()
        if self.metrics is not None:
            await asyncio.to_thread(self.metrics.stop)
            self.metrics = None
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None

    @staticmethod
    async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_SECONDS)
            for task in pending:
                log.warning("%s did not stop within %.0f s", task.get_name(), SHUTDOWN_SECONDS)
        tasks.clear()

    async def run_until_stopped(
        self, duration: float | None = None, started: Callable[[Runtime], None] | None = None
    ) -> None:
        """Start, then run until SIGINT/SIGTERM or `duration` seconds, then stop cleanly."""
        await run_until_stopped(self, duration, started)


class Startable(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


S = TypeVar("S", bound=Startable)


async def run_until_stopped(
    target: S, duration: float | None = None, started: Callable[[S], None] | None = None
) -> None:
    """Start `target`, run until SIGINT/SIGTERM or `duration` seconds, then stop it cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await target.start()
        if started is not None:
            started(target)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=duration)
        log.info("stopping")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await target.stop()
