"""`parklink run --role hub`: the park rebuilt from what its edges publish, stored and served.

One MQTT session (a persistent one by default: the broker queues for the hub while it is away)
subscribed to the park's UNS subtree and to Sparkplug deaths. Messages are handled on the loop,
one at a time, without I/O:
- `<company>/_edge/model`: the company's part of the unified model → the hub's `Park` is rebuilt
  (signals keep their latest values), synced to the database, and the API and metrics follow.
- `<company>/_edge/status`: online at every edge connect; offline is the edge's MQTT will, so a
  killed edge is marked down at once; an edge silent for `hub.stale_after` is marked down too.
  A Sparkplug NDEATH of the edge's node (with the bdSeq of its current birth) does the same.
- `<company>/_edge/results`: KPI results the company shares. The sharing policy is applied again
  here (what an edge sends beyond its own announced policy is dropped), current results feed the
  hub's park view, closed ones are upserted in the database (one row per scope and window, so a
  replayed message changes nothing), and kept in memory while the database is down. The guard
  (orchestrator/kpi/guard.py) runs again on the received elements, with the hub's own
  `kpi.max_effectiveness`: a suspect result is kept flagged, never in the park view.
- UNS signal topics: the latest value per signal, the end-to-end delay measured on the way.
- Sparkplug DBIRTH/DDATA of an announced edge node: the same, many values per message (the
  high-volume path: one DDATA per asset and publish interval instead of one message per value).

Duplicates that at-least-once delivery allows are dropped by message id: an edge's queue numbers
its messages, in order, per producer (`<producer>-<n>`), so the hub keeps the highest seen.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from connectors.base import LinkHealth, SampleSink
from connectors.common.backoff import Backoff
from exporters.http.server import HttpServer, serve
from exporters.mqtt import uns
from exporters.mqtt.client import ConnectionLost, RawMessage, connect
from exporters.mqtt.edge_protocol import CompanyModel, ResultsMessage, parse_model, parse_results
from exporters.mqtt.settings import MqttSettings
from exporters.mqtt.sparkplug import payloads as spb
from exporters.mqtt.subscriber import SparkplugDecoder, decode_uns
from exporters.prometheus.collector import ParkCollector
from exporters.prometheus.kpi_collector import KpiCollector
from exporters.prometheus.server import MetricsServer, serve_metrics
from models.park import ConnectionRef, Park
from models.sample import Sample
from models.status import BAD, GOOD
from models.store import create_tables, make_engine, sync_park
from orchestrator.config import LoadedConfig
from orchestrator.hub.kpis import HubKpis
from orchestrator.hub.metrics import HubCollector, HubHealth
from orchestrator.hub.model import EDGE_CONNECTION, build_park
from orchestrator.kpi.guard import SuspectLog, flag
from orchestrator.kpi.results import ScopedResult
from orchestrator.kpi.service import save_results
from orchestrator.runtime import Link
from orchestrator.sharing import shares
from orchestrator.snapshot import Snapshot

log = logging.getLogger("parklink.hub")
HOUSEKEEPING_EVERY = 1.0


class EdgeConnector:
    """An edge as a connection of the hub: its data arrives by MQTT, nothing to run or write."""

    async def run(self, sink: SampleSink) -> None:
        del sink
        await asyncio.Event().wait()


@dataclass
class HubRuntime:
    """Everything `parklink run --role hub` keeps alive."""

    loaded: LoadedConfig
    metrics_host: str | None = None
    metrics_port: int | None = None
    http_port: int | None = None
    park: Park = field(init=False)
    snapshot: Snapshot = field(init=False)
    links: list[Link] = field(init=False, default_factory=list)
    kpi: HubKpis = field(init=False)
    registry: CollectorRegistry = field(init=False)
    engine: Engine | None = field(init=False, default=None)
    http: HttpServer | None = field(init=False, default=None)
    metrics: MetricsServer | None = field(init=False, default=None)
    health: HubHealth = field(init=False)
    models: dict[str, CompanyModel] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        config = self.loaded.config
        mqtt = self.loaded.mqtt
        if mqtt is None:
            raise ValueError("a hub needs an mqtt: section")
        # A fixed client id and a persistent session by default: the broker queues what arrives
        # while the hub restarts (QoS 1), so nothing published meanwhile is missed.
        if mqtt.client_id is None:
            mqtt = mqtt.model_copy(
                update={"client_id": f"parklink-hub-{config.park.id}", "clean_start": False}
            )
        self.mqtt: MqttSettings = mqtt
        self.settings = self.loaded.hub
        self._root = f"{mqtt.topic_prefix}/{config.park.id}/"
        self.park = build_park(config.park.id, config.park.name, config.kpi, {})
        self.snapshot = Snapshot(0)
        self.kpi = HubKpis(self.park)
        self.health = HubHealth(LinkHealth("mqtt", "mqtt", ""))
        self._edges: dict[str, Link] = {}
        self._last_seen: dict[str, float] = {}
        self._high: dict[str, int] = {}  # producer → highest message number taken
        self._signal_index: dict[str, int] = {}
        self._pending: dict[str, deque[ResultsMessage]] = defaultdict(
            lambda: deque(maxlen=self.settings.max_pending)
        )
        self._closed_backlog: list[ScopedResult] = []
        self._suspects: defaultdict[str, SuspectLog] = defaultdict(lambda: SuspectLog(log, "hub: "))
        self._births: dict[str, int] = {}  # Sparkplug node → bdSeq of its current birth
        self._nodes: defaultdict[str, set[str]] = defaultdict(set)  # Sparkplug node → companies announcing it
        self._sparkplug_decoder = SparkplugDecoder()
        self._sync_due = False
        self._warned: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.registry = CollectorRegistry()
        self._park_collector = ParkCollector(self.park, self.snapshot, [])
        self.registry.register(self._park_collector)
        self.registry.register(KpiCollector(self.kpi, "full"))
        self.registry.register(HubCollector(self.health))

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        self.engine = make_engine(self.loaded.database_url)
        await asyncio.to_thread(create_tables, self.engine)
        self.kpi.db = self.engine
        self.http = await serve(self, port=self.http_port, settings=self.loaded.http)
        settings = self.loaded.config.metrics
        host = self.metrics_host or settings.host
        port = settings.port if self.metrics_port is None else self.metrics_port
        self.metrics = serve_metrics(self.registry, host, port)
        self._tasks = [
            asyncio.create_task(self._session_loop(), name="hub mqtt"),
            asyncio.create_task(self._housekeeping_loop(), name="hub housekeeping"),
        ]
        log.info(
            "hub of park %s: listening on %s:%d under %s#; metrics on http://%s:%d/metrics; "
            "API and dashboard on http://%s:%d/dashboard",
            self.park.id,
            self.mqtt.host,
            self.mqtt.port,
            self._root,
            host,
            self.metrics.port,
            self.loaded.http.host,
            self.http.port,
        )

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.stop()
            self.http = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self._store_closed()  # a last attempt; what fails is logged with its count
        if self._closed_backlog:
            log.error("hub: %d closed KPI results not stored at shutdown", len(self._closed_backlog))
        if self.metrics is not None:
            await asyncio.to_thread(self.metrics.stop)
            self.metrics = None
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None

    # -- the MQTT session -----------------------------------------------------------------------
    @property
    def topics(self) -> list[str]:
        births_deaths = [f"{spb.NAMESPACE}/+/{kind}/+" for kind in ("NBIRTH", "NDEATH")]
        device_data = [f"{spb.NAMESPACE}/+/{kind}/+/+" for kind in ("DBIRTH", "DDATA")]
        return [f"{self._root}#", *births_deaths, *device_data]

    async def _session_loop(self) -> None:
        backoff = Backoff(self.mqtt.reconnect.initial, self.mqtt.reconnect.cap)
        client_id = self.mqtt.client_id or f"parklink-hub-{secrets.token_hex(4)}"
        while True:
            try:
                async with connect(self.mqtt, client_id=client_id, clean_start=self.mqtt.clean_start) as conn:
                    await conn.subscribe([(topic, 1) for topic in self.topics])
                    self.health.link.mark_up()
                    backoff.reset()
                    while True:
                        self.handle(await conn.receive())
            except ConnectionLost as exc:
                self.health.link.mark_down(str(exc))
            await asyncio.sleep(backoff.next_delay())

    def handle(self, message: RawMessage) -> None:
        """Take one message (on the loop, no I/O); malformed ones are counted and dropped."""
        self.health.messages_total += 1
        topic = message.topic
        if topic.startswith(self._root):
            rest = topic[len(self._root) :]
            company, _, below = rest.partition("/")
            if company.startswith("_"):
                return  # `_park`: the edges' own park views; the hub builds its own
            allowed = self.settings.companies
            if allowed is not None and company not in allowed:
                self._reject(company, f"company {company!r} is not accepted by this hub (hub.companies)")
                return
            if not message.retain:  # a retained message says nothing about the edge being alive now
                self._alive(company)
            if below.startswith("_edge/"):
                self._edge_message(company, below[6:], message)
            else:
                index = self._signal_index.get(rest)
                if index is not None:
                    self._signal(index, message)
        elif topic.startswith(spb.NAMESPACE + "/"):
            self._sparkplug(topic, message.payload)

    def _signal(self, index: int, message: RawMessage) -> None:
        try:
            value = decode_uns(message.topic, message.payload, self.mqtt.topic_prefix)
        except (ValueError, TypeError):
            self._reject("", f"undecodable signal message on {message.topic}")
            return
        if not self._fresh(value.msg_id, message.retain):
            return
        now = time.time()
        source = value.source_time if value.source_time is not None else now
        status = value.status if value.status is not None else BAD
        sample = Sample(index, value.value, status, source, value.server_time or source)  # type: ignore[arg-type]
        # A retained copy is counted when its own delivery arrives.
        self._take([sample], counted=not message.retain, now=now)

    def _take(self, samples: list[Sample], *, counted: bool, now: float) -> None:
        """Into the snapshot, unless older than what it holds (a queued value behind a newer one)."""
        latest = self.snapshot.latest
        if counted:
            self.health.samples_total += len(samples)
            for sample in samples:
                self.health.observe_delay(max(0.0, now - sample.source_time))
        newer = [
            s for s in samples if (held := latest[s.signal]) is None or s.source_time >= held.source_time
        ]
        if newer:
            self.snapshot.push(newer)

    def _fresh(self, msg_id: object, retained: bool) -> bool:
        """Whether a message is new (not a re-delivery); numbered per producer, in order."""
        if not isinstance(msg_id, str):
            return True
        producer, _, number = msg_id.rpartition("-")
        if not producer or not number.isdigit():
            return True
        n, last = int(number), self._high.get(producer, 0)
        if n <= last:
            self.health.duplicates_total += 1
            return False
        if not retained:  # retained copies arrive out of order (at subscribe): they set no mark
            self._high[producer] = n
        return True

    # -- edge messages ----------------------------------------------------------------------------
    def _edge_message(self, company: str, what: str, message: RawMessage) -> None:
        try:
            payload = uns.decode(message.payload)
            if what == "model":
                self._take_model(company, parse_model(payload))
            elif what == "status":
                self._take_status(company, payload)
            elif what == "results":
                msg_id = payload.get("msg_id")
                if self._fresh(msg_id, message.retain):
                    self._take_results(company, parse_results(payload))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "(top level)"
            self._reject(company, f"malformed {what} message from {company!r}: {where}: {first['msg']}")
        except ValueError as exc:
            reason = str(exc).splitlines()[0]
            self._reject(company, f"malformed {what} message from {company!r}: {reason}")

    def _take_model(self, company: str, model: CompanyModel) -> None:
        if model.company != company or model.park != self.park.id:
            self._reject(company, f"model on {company!r}'s topic names {model.park}/{model.company}")
            return
        model = model.model_copy(update={"msg_id": None})  # every birth has its own: not a change
        if self.models.get(company) == model:
            return
        known = company in self.models
        self.models[company] = model
        log.info(
            "%s %s: %d assets, %d signals",
            "model updated by" if known else "edge announced:",
            company,
            len(model.assets),
            len(model.signals),
        )
        self._rebuild()
        for results in self._pending.pop(company, deque()):
            self._take_results(company, results)

    def _take_status(self, company: str, payload: uns.Payload) -> None:
        client_id = payload.get("client_id")
        if payload.get("online") is True:
            if company in self._edges:
                self._edges[company].health.mark_up()
            return
        # The will of an edge process: every company it hosts is down. Only the process that
        # announced this company speaks for the others it hosts (same client id as its model's),
        # so one edge cannot mark another company's edge down.
        own = self.models.get(company)
        hosted = {company}
        if own is not None and client_id and own.client_id == client_id:
            hosted |= {name for name, model in self.models.items() if model.client_id == client_id}
        for name in hosted & set(self._edges):
            self._edges[name].health.mark_down("edge offline (its MQTT will: the connection was lost)")

    def _take_results(self, company: str, message: ResultsMessage) -> None:
        if message.company != company:
            self._reject(company, f"results on {company!r}'s topic name company {message.company!r}")
            return
        if company not in self.models:
            self._pending[company].append(message)
            return
        results = []
        for item in message.results:
            r = item.scoped()
            # Enforced again: only this company's results, and only what its policy shares.
            if r.company == company and shares(r, self.park.share):
                results.append(r)
            else:
                self._reject(company, f"{company!r} sent a result its policy does not share ({r.scope})")
        # Not trusting the edge: impossible numbers are flagged here again, from the elements.
        results = flag(results, self.park.kpi.max_effectiveness)
        self._suspects[company].update(results, forget=message.kind == "current")
        if message.kind == "current":
            self.kpi.take_current(company, results)
        elif results:
            self._closed_backlog.extend(results)
            self.health.pending_closed = len(self._closed_backlog)

    def _sparkplug(self, topic: str, data: bytes) -> None:
        levels = topic.split("/")
        if len(levels) == 5 and levels[2] in ("DBIRTH", "DDATA"):
            self._sparkplug_values(topic, levels, data)
            return
        if len(levels) != 4:
            return
        node = f"{levels[1]}/{levels[3]}"
        try:
            payload = spb.decode(data)
        except Exception:  # protobuf raises its own DecodeError and others on garbage
            self._reject("", f"undecodable Sparkplug message on {topic}")
            return
        bdseq = next((int(m.long_value) for m in payload.metrics if m.name == spb.BDSEQ), None)
        if levels[2] == "NBIRTH":
            if bdseq is not None:
                self._births[node] = bdseq
            return
        if bdseq is not None and self._births.get(node, bdseq) != bdseq:
            return  # the death of an older session, delivered late: the node is alive again
        for name in self._nodes.get(node, ()):
            self._edges[name].health.mark_down("Sparkplug NDEATH")

    def _sparkplug_values(self, topic: str, levels: list[str], data: bytes) -> None:
        """Device births and data of an announced edge node: asset `a.b.c` → path `a/b/c`, metric = signal."""
        node = f"{levels[1]}/{levels[3]}"
        asset = levels[4].replace(".", "/")
        company = asset.partition("/")[0]
        if company not in self._nodes.get(node, ()):
            return  # not a node this device's company announced: nobody can report for another
        try:
            values = self._sparkplug_decoder.decode(topic, data)
        except Exception:  # protobuf's DecodeError and others on garbage
            self._reject(company, f"undecodable Sparkplug message on {topic}")
            return
        self._alive(company)
        now = time.time()
        batch = []
        for value in values:
            index = self._signal_index.get(f"{asset}/{value.path.rsplit('/', 1)[1]}")
            if index is not None:
                at = value.source_time if value.source_time is not None else now
                status = value.status if value.status is not None else GOOD
                batch.append(Sample(index, value.value, status, at, value.server_time or at))  # type: ignore[arg-type]
        self._take(batch, counted=True, now=now)

    def _alive(self, company: str) -> None:
        self._last_seen[company] = time.monotonic()

    def _reject(self, company: str, reason: str) -> None:
        self.health.rejected_total += 1
        key = f"{company}:{reason[:60]}"
        if key not in self._warned:  # once per kind of problem: a flood of bad messages is one line
            self._warned.add(key)
            log.warning("hub: %s", reason)

    # -- the rebuilt park -----------------------------------------------------------------------
    def _rebuild(self) -> None:
        config = self.loaded.config
        park = build_park(config.park.id, config.park.name, config.kpi, self.models)
        previous = {s.path: self.snapshot.latest[s.index] for s in self.park.signals}
        snapshot = Snapshot(len(park.signals))
        for s in park.signals:
            sample = previous.get(s.path)
            if sample is not None:
                snapshot.latest[s.index] = sample._replace(signal=s.index)
        for company in park.companies:
            if company not in self._edges:
                health = LinkHealth(EDGE_CONNECTION, "edge", company)
                ref = ConnectionRef(company, EDGE_CONNECTION, "edge", None)
                self._edges[company] = Link(ref, EdgeConnector(), health, [])
        self.park, self.snapshot = park, snapshot
        self.links = [self._edges[c] for c in sorted(self._edges)]
        self._signal_index = {s.path: s.index for s in park.signals}
        self._nodes = defaultdict(set)
        for name, model in self.models.items():
            if model.sparkplug_node:
                self._nodes[model.sparkplug_node].add(name)
        self.kpi.set_park(park)
        self.registry.unregister(self._park_collector)
        self._park_collector = ParkCollector(
            park, snapshot, [*[link.health for link in self.links], self.health.link]
        )
        self.registry.register(self._park_collector)
        if self.http is not None:
            self.http.refresh()
        self._sync_due = True

    # -- housekeeping ---------------------------------------------------------------------------
    async def _housekeeping_loop(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_EVERY)
            self._mark_stale()
            if self._sync_due and self.engine is not None:
                self._sync_due = False
                try:
                    await asyncio.to_thread(sync_park, self.engine, self.park)
                except SQLAlchemyError as exc:
                    self._sync_due = True
                    self.health.db_errors_total += 1
                    self._reject("", f"asset model not synced to the database: {exc.__class__.__name__}")
            await self._store_closed()

    def _mark_stale(self) -> None:
        limit = self.settings.stale_after
        now = time.monotonic()
        for company, link in self._edges.items():
            seen = self._last_seen.get(company)
            if link.health.up and (seen is None or now - seen > limit):
                link.health.mark_down(f"stale: no message for {limit:g} s")

    async def _store_closed(self) -> None:
        if not self._closed_backlog or self.engine is None:
            return
        batch, self._closed_backlog = self._closed_backlog, []
        try:
            await asyncio.to_thread(save_results, self.engine, _latest_per_key(batch))
        except SQLAlchemyError as exc:
            self._closed_backlog[:0] = batch  # kept, in order, for the next attempt
            self.health.db_errors_total += 1
            if "db" not in self._warned:
                self._warned.add("db")
                log.error("hub: closed KPI results not stored (%s); kept and retried", exc.__class__.__name__)
        else:
            self._warned.discard("db")
            self.health.results_stored_total += len(batch)
        self.health.pending_closed = len(self._closed_backlog)


def _latest_per_key(results: list[ScopedResult]) -> list[ScopedResult]:
    """One result per (level, scope, window): a window closed twice (a replay) keeps the last."""
    by_key = {(r.level, r.scope, r.window_kind, r.window_label): r for r in results}
    return list(by_key.values())
