"""A Sparkplug B 3.0 edge node session: births, report-by-exception data, NDEATH will, rebirth, STATE.

The model (README "Sparkplug mapping"):
- this process is one edge node `spBv1.0/<group_id>/…/<edge_node_id>`;
- each asset is a device; `device_id` is the asset's ISA-95 path joined by '.', e.g.
  `acme.north.hall.l1.oven-1` (no area level when the line sits under the site). parklink ids
  never contain '.', so the id is unambiguous and free of the characters Sparkplug forbids;
- each signal is a metric named by the signal name, with alias 16 + signal index (aliases below 16
  belong to the node: 0 bdSeq, 1 `Node Control/Rebirth`).

Session rules implemented (spec 3.0 ch. 5-6): clean session; the NDEATH (bdSeq, QoS 1, not
retained) is the MQTT will; bdSeq goes up by one per CONNECT (0..255, optionally persisted);
NBIRTH has seq 0, then every message seq+1 wrapping 255 → 0; all DBIRTHs precede any DDATA;
births and data QoS 0, never retained; DDATA carries changed metrics only, by alias; an NCMD
`Node Control/Rebirth`=true re-sends the births; with a primary host configured, births wait for
its STATE `{"online": true}` and are re-sent whenever it comes online again (newer timestamp),
data stops while it is offline. One broker only: the "walk to the next server" rule has nowhere
to go, so the node stays connected and waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import DecodeError

from connectors.base import LinkHealth
from connectors.common.backoff import Backoff
from exporters.mqtt.client import Connection, ConnectionLost, Will, connect, first_to_end
from exporters.mqtt.settings import MqttSettings
from exporters.mqtt.sparkplug import payloads as spb
from exporters.mqtt.sparkplug import sparkplug_b_pb2 as pb
from models.park import AssetRef, Park, SignalRef
from models.sample import Sample
from models.status import BAD_WAITING_FOR_INITIAL_DATA, quality_of

log = logging.getLogger("parklink.mqtt.sparkplug")

ALIAS_BDSEQ, ALIAS_REBIRTH, ALIAS_BASE = 0, 1, 16
MAX_PENDING = 100_000  # changes held between flushes; beyond, a rebirth carries the latest values


def device_id(asset: AssetRef) -> str:
    """The Sparkplug device id of an asset: its ISA-95 path joined by '.'."""
    return asset.path.replace("/", ".")


class _Metric:
    __slots__ = ("alias", "datatype", "device", "latest", "name", "sent")

    def __init__(self, signal: SignalRef, device: _Device) -> None:
        self.name = signal.name
        self.alias = ALIAS_BASE + signal.index
        self.datatype = spb.DATATYPES[signal.data_type]
        self.device = device
        self.latest: Sample | None = None
        self.sent: tuple[object, int] | None = None  # (value, status) last published


class _Device:
    __slots__ = ("id", "metrics", "pending")

    def __init__(self, device_id: str) -> None:
        self.id = device_id
        self.metrics: list[_Metric] = []
        self.pending: list[tuple[_Metric, Sample]] = []


@dataclass
class SparkplugHealth:
    """Counters of the edge node, read by the exporters' metrics at scrape time."""

    link: LinkHealth
    messages_total: int = 0  # NBIRTH, DBIRTH, DDATA published
    births_total: int = 0  # complete birth sequences
    rebirth_requests_total: int = 0
    commands_ignored_total: int = 0  # DCMD and unknown NCMD metrics: parklink does not write
    decode_errors_total: int = 0
    widened_total: int = 0  # metrics whose datatype had to widen (each forces a rebirth)
    bdseq: int = -1
    seq: int = -1
    host_online: bool = field(default=False)


def _same(sent: tuple[object, int] | None, value: object, status: int) -> bool:
    if sent is None or sent[1] != status:
        return False
    # `type` too: True == 1 in Python, but a bool signal turning int is a change worth sending.
    return sent[0] is value or (type(sent[0]) is type(value) and sent[0] == value)


class SparkplugEdgeNode:
    """Publishes the park's signals as one Sparkplug B edge node; `on_batch` feeds it, `run` drives it."""

    def __init__(
        self,
        settings: MqttSettings,
        park: Park,
        *,
        signals: Sequence[SignalRef] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        spk = settings.sparkplug
        self.settings = settings
        self.group_id = spk.group_id or park.id
        self.edge_node_id = spk.edge_node_id
        base_id = settings.client_id or f"parklink-{secrets.token_hex(4)}"
        self.client_id = f"{base_id}-spb"
        self.health = SparkplugHealth(LinkHealth(f"sparkplug:{self.edge_node_id}", "mqtt", ""))
        self._clock = clock
        self._bdseq_file: Path | None = spk.bdseq_file
        self._state_topic = f"{spb.NAMESPACE}/STATE/{spk.primary_host_id}" if spk.primary_host_id else None
        chosen = signals if signals is not None else [s for s in park.signals if not s.asset.retired]
        self.devices: list[_Device] = []
        by_path: dict[str, _Device] = {}
        size = max((s.index for s in park.signals), default=-1) + 1
        self._by_signal: list[_Metric | None] = [None] * size
        for signal in chosen:
            device = by_path.get(signal.asset.path)
            if device is None:
                device = by_path[signal.asset.path] = _Device(device_id(signal.asset))
                self.devices.append(device)
            metric = _Metric(signal, device)
            device.metrics.append(metric)
            self._by_signal[signal.index] = metric
        self._pending = 0
        self._live = False  # births sent in this session and host online: changes are queued
        self._host_online = False
        self._rebirth = False
        self._seq = -1
        self._state_time = -1
        self._wake = asyncio.Event()

    def topic(self, message_type: str, device: str | None = None) -> str:
        """The topic of one of this node's messages."""
        return spb.topic(self.group_id, message_type, self.edge_node_id, device)

    def on_batch(self, batch: Sequence[Sample]) -> None:
        """Take one batch (a Snapshot listener): O(1) per sample, never blocks."""
        metrics, size, live = self._by_signal, len(self._by_signal), self._live
        for sample in batch:
            if sample.signal < size and (metric := metrics[sample.signal]) is not None:
                metric.latest = sample
                if live:
                    metric.device.pending.append((metric, sample))
                    self._pending += 1
        if self._pending > MAX_PENDING:  # the broker cannot keep up: births resync from the latest
            self.request_rebirth()

    def request_rebirth(self) -> None:
        """Re-send NBIRTH and all DBIRTHs at the next opportunity."""
        self._rebirth = True
        self._wake.set()

    async def run(self) -> None:
        """Connect, publish and reconnect with backoff until cancelled; NDEATH on the way out."""
        backoff = Backoff(self.settings.reconnect.initial, self.settings.reconnect.cap)
        while True:
            bdseq = self._next_bdseq()
            will = Will(self.topic("NDEATH"), spb.ndeath(bdseq, self._clock()), qos=1, retain=False)
            try:
                async with connect(self.settings, client_id=self.client_id, will=will) as conn:
                    self.health.link.mark_up()
                    backoff.reset()
                    await self._session(conn, bdseq)
            except ConnectionLost as exc:
                self.health.link.mark_down(str(exc))
            finally:
                self._live = False
            await asyncio.sleep(backoff.next_delay())

    async def _session(self, conn: Connection, bdseq: int) -> None:
        self._live, self._rebirth, self._host_online = False, False, self._state_topic is None
        self.health.host_online = self._host_online
        topics = [(self.topic("NCMD"), 1), (self.topic("DCMD") + "/+", 1)]
        if self._state_topic:
            topics.append((self._state_topic, 1))
        try:
            # Subscribed before any birth (spec: STATE is known before NBIRTH, NCMD is not missed).
            await conn.subscribe(topics)
            await first_to_end(self._receive(conn), self._publish_loop(conn, bdseq))
        except asyncio.CancelledError:
            # Intentional disconnect: NDEATH first, then DISCONNECT (which makes the broker drop the will).
            self._live = False
            with contextlib.suppress(ConnectionLost, TimeoutError):
                await asyncio.wait_for(
                    conn.publish(self.topic("NDEATH"), spb.ndeath(bdseq, self._clock()), 1), 2
                )
            raise
        raise ConnectionLost("session ended")

    async def _publish_loop(self, conn: Connection, bdseq: int) -> None:
        interval = self.settings.sparkplug.publish_interval
        while True:
            if self._host_online and (self._rebirth or not self._live):
                await self._births(conn, bdseq)
            elif self._live:
                await self._flush(conn)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) % 256
        self.health.seq = self._seq
        return self._seq

    async def _send(
        self, conn: Connection, message_type: str, device: str | None, payload: pb.Payload
    ) -> None:
        await conn.publish(self.topic(message_type, device), payload.SerializeToString(), 0, False)
        self.health.messages_total += 1

    async def _births(self, conn: Connection, bdseq: int) -> None:
        now = self._clock()
        self._rebirth = False
        for device in self.devices:
            device.pending.clear()
        self._pending = 0
        # Live from here: changes during the births queue up and are compared with what the
        # births carried, so none is lost and none is sent twice. DDATA waits for this to return.
        self._live = True
        self._seq = -1
        nbirth = pb.Payload(timestamp=spb.ms(now), seq=self._next_seq())
        spb.node_metric(nbirth, spb.BDSEQ, ALIAS_BDSEQ, pb.UInt64, bdseq, now)
        spb.node_metric(nbirth, spb.REBIRTH, ALIAS_REBIRTH, pb.Boolean, False, now)
        await self._send(conn, "NBIRTH", None, nbirth)
        for device in self.devices:
            dbirth = pb.Payload(timestamp=spb.ms(now), seq=self._next_seq())
            for m in device.metrics:
                s = m.latest
                value, status, when = (
                    (s.value, s.status, s.source_time) if s else (None, BAD_WAITING_FOR_INITIAL_DATA, now)
                )
                if quality_of(status) == 0:
                    value = None
                if not spb.fits(m.datatype, value):
                    self._widen(m, value)
                spb.add_metric(
                    dbirth,
                    name=m.name,
                    alias=m.alias,
                    datatype=m.datatype,
                    value=value,
                    status=status,
                    timestamp=when,
                )
                m.sent = (value, status)
            await self._send(conn, "DBIRTH", device.id, dbirth)
        self.health.births_total += 1

    async def _flush(self, conn: Connection) -> None:
        now = self._clock()
        for device in self.devices:
            if not device.pending:
                continue
            items, device.pending = device.pending, []
            self._pending -= len(items)
            ddata: pb.Payload | None = None
            for m, s in items:
                value = None if quality_of(s.status) == 0 else s.value
                if _same(m.sent, value, s.status):
                    continue
                if not spb.fits(m.datatype, value):
                    self._widen(m, value)
                    self.request_rebirth()  # a datatype only changes with a new birth
                    return
                if ddata is None:
                    ddata = pb.Payload(timestamp=spb.ms(now))
                spb.add_metric(
                    ddata,
                    alias=m.alias,
                    datatype=m.datatype,
                    value=value,
                    status=s.status,
                    timestamp=s.source_time,
                )
                m.sent = (value, s.status)
            if ddata is not None:
                ddata.seq = self._next_seq()
                await self._send(conn, "DDATA", device.id, ddata)

    def _widen(self, m: _Metric, value: object) -> None:
        before, m.datatype = m.datatype, spb.widen(m.datatype, value)
        self.health.widened_total += 1
        log.warning(
            "sparkplug: %s/%s: value %r does not fit datatype %s; now %s",
            m.device.id,
            m.name,
            value,
            pb.DataType.Name(before),
            pb.DataType.Name(m.datatype),
        )

    async def _receive(self, conn: Connection) -> None:
        ncmd = self.topic("NCMD")
        async for message in conn.messages():
            if message.topic == ncmd:
                try:
                    command = spb.decode(message.payload)
                except DecodeError:
                    self.health.decode_errors_total += 1
                    continue
                if spb.rebirth_requested(command.metrics, ALIAS_REBIRTH):
                    self.health.rebirth_requests_total += 1
                    self.request_rebirth()
                else:
                    self.health.commands_ignored_total += 1
            elif message.topic == self._state_topic:
                self._on_state(message.payload)
            else:  # DCMD: parklink exports, it does not write to machines through Sparkplug
                self.health.commands_ignored_total += 1

    def _on_state(self, data: bytes) -> None:
        try:
            state = json.loads(data)
            online, stamp = state["online"], int(state.get("timestamp", 0))
            if not isinstance(online, bool):
                raise TypeError("online is not a boolean")
        except (ValueError, TypeError, KeyError, AttributeError):
            self.health.decode_errors_total += 1
            return
        # A STATE older than the last one seen is a late delivery of an earlier session (spec 3.0).
        if stamp < self._state_time or (online and self._host_online and stamp == self._state_time):
            return
        self._state_time = stamp
        if online:
            self._host_online = True
            self.request_rebirth()  # first online, or the host restarted: it needs our births
        else:
            self._host_online = self._live = False
        self.health.host_online = self._host_online
        self._wake.set()

    def _next_bdseq(self) -> int:
        """The bdSeq of the next CONNECT: one more than the last (0..255), kept in `bdseq_file` if set."""
        previous = self.health.bdseq
        path = self._bdseq_file
        if previous < 0 and path is not None:
            try:
                previous = int(path.read_text().strip())
            except (OSError, ValueError):
                previous = -1
        bdseq = (previous + 1) % 256
        self.health.bdseq = bdseq
        if path is not None:
            try:
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_text(f"{bdseq}\n")
                os.replace(tmp, path)
            except OSError as exc:
                log.warning("sparkplug: bdSeq file %s not written: %s", path, exc)
        return bdseq
