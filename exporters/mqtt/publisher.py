"""The MQTT publisher: samples and KPIs → on-disk queue → broker, in order, at least once.

Flow: `on_batch` (a Snapshot listener, on the event loop) appends (topic, sample) to a memory
buffer, O(1) per sample and no I/O. Every `flush_interval` the buffer is encoded to JSON and
written to the SQLite queue in one transaction, in a worker thread (never on the loop). A sender
peeks the oldest messages, publishes them pipelined at the configured QoS and acks them in the
queue only after the broker's PUBACK. Everything goes through the queue, connected or not: one
path, so order and at-least-once hold across outages and restarts without a second code path.

With `sparkplug` among the payload families, the same object also drives a `SparkplugEdgeNode`
(its own MQTT session: Sparkplug requires a clean session and its own will).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from connectors.base import LinkHealth
from connectors.common.backoff import Backoff
from exporters.mqtt import uns
from exporters.mqtt.client import Connection, ConnectionLost, Will, connect, first_to_end
from exporters.mqtt.settings import MqttSettings
from exporters.mqtt.sparkplug.edge import SparkplugEdgeNode
from exporters.mqtt.store import MessageStore, StoreError
from models.park import Park, SignalRef
from models.sample import Sample

log = logging.getLogger("parklink.mqtt")

_Pending = tuple[str, Sample | uns.Payload, int, bool]  # topic, sample or JSON object, qos, retain
MAX_BUFFER = 200_000  # messages held in memory while the store cannot be written
STORE_RETRY = (1.0, 10.0)  # backoff (s) of flushes while the store fails: each one encodes the buffer again


@dataclass
class MqttHealth:
    """Health of the UNS publisher, read by the metrics exporter at scrape time."""

    link: LinkHealth  # up (connected 0/1), reconnects, last error; logs transitions once
    published_total: int = 0  # messages acknowledged by the broker (or written, at QoS 0)
    queued: int = 0  # waiting: on disk plus in memory
    dropped_total: int = 0  # dropped by the queue limits or by a full memory buffer
    store_errors_total: int = 0  # failed reads/writes of the on-disk queue
    store_writable: bool = True  # False from a failed read/write of the queue until a write succeeds


class MqttPublisher:
    """Publishes the park to MQTT; `run()` until cancelled, feed it with `on_batch` and `publish_kpis`."""

    def __init__(
        self,
        settings: MqttSettings,
        park: Park,
        *,
        signals: Sequence[SignalRef] | None = None,
        store: MessageStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.park = settings, park
        self.store = store if store is not None else MessageStore.from_settings(settings.store)
        self.client_id = settings.client_id or f"parklink-{secrets.token_hex(4)}"
        self.health = MqttHealth(LinkHealth("mqtt", "mqtt", ""))
        self._clock = clock
        # msg_id = "<producer>-<n>": unique per publisher instance, cheap to make, easy to dedupe.
        self._producer = secrets.token_hex(6)
        self._counter = 0
        chosen = signals if signals is not None else [s for s in park.signals if not s.asset.retired]
        size = max((s.index for s in park.signals), default=-1) + 1
        self._topics: list[str | None] = [None] * size
        if "uns_json" in settings.payloads:
            for signal in chosen:
                self._topics[signal.index] = uns.signal_topic(settings.topic_prefix, park.id, signal)
        self._uns_samples = "uns_json" in settings.payloads
        self._buffer: list[_Pending] = []
        self._buffer_dropped = 0
        self._store_failing = False
        self._io = ThreadPoolExecutor(1, thread_name_prefix="parklink-mqtt-store")  # FIFO: keeps order
        self._has_data = asyncio.Event()
        self._flushing = asyncio.Lock()
        self.sparkplug = (
            SparkplugEdgeNode(settings, park, signals=chosen, clock=clock)
            if "sparkplug" in settings.payloads
            else None
        )
        # Edge role: a will the broker publishes if this process dies, and births sent first on
        # every connect (retained, not queued: they describe the present, not history).
        self.will: Will | None = None
        self.births: Callable[[], list[tuple[str, uns.Payload]]] | None = None
        self._births_sent = 0
        self._update_health()

    def on_batch(self, batch: Sequence[Sample]) -> None:
        """Take one batch (a Snapshot listener): O(1) per sample, no I/O, never blocks."""
        if self._uns_samples:
            topics, size, buffer = self._topics, len(self._topics), self._buffer
            qos, retain = self.settings.qos, self.settings.retain
            for sample in batch:
                if sample.signal < size and (topic := topics[sample.signal]) is not None:
                    buffer.append((topic, sample, qos, retain))
            if len(buffer) > MAX_BUFFER:
                self._trim()
        if self.sparkplug is not None:
            self.sparkplug.on_batch(batch)

    def publish_kpis(
        self,
        scope: Sequence[str] | str,
        window: str,
        kpis: Mapping[str, float | None],
        *,
        time: float,
        view: uns.View = "company",
        start: float | None = None,
        end: float | None = None,
        extra: Mapping[str, uns.JsonValue] | None = None,
    ) -> int:
        """Queue the KPIs of one scope and window as UNS JSON (see `uns.kpi_messages`); how many.

        Only pass what the company's sharing policy allows: this function publishes what it is given.
        """
        messages = uns.kpi_messages(
            self.settings.topic_prefix,
            self.park.id,
            scope,
            window,
            kpis,
            time=time,
            view=view,
            start=start,
            end=end,
            extra=extra,
        )
        for topic, payload in messages:
            self._buffer.append((topic, payload, self.settings.qos, self.settings.retain))
        return len(messages)

    def publish(
        self, topic: str, payload: uns.Payload, *, qos: int | None = None, retain: bool = False
    ) -> None:
        """Queue any JSON object (it gets a msg_id) through the same ordered, persistent path."""
        self._buffer.append((topic, payload, self.settings.qos if qos is None else qos, retain))

    async def run(self) -> None:
        """Flush, connect, send, reconnect with backoff; until cancelled (then flush to disk)."""
        jobs = [self._flush_loop(), self._connection_loop()]
        if self.sparkplug is not None:
            jobs.append(self.sparkplug.run())
        try:
            await first_to_end(*jobs)
        finally:
            # What is still in memory goes to disk so a restart replays it. Through the one worker
            # thread, after any write already under way, so the order holds.
            items, self._buffer = self._buffer, []
            if items:
                try:
                    self._io.submit(self._write, items).result(timeout=30)
                except StoreError as exc:
                    log.error("mqtt: %d messages lost at shutdown: %s", len(items), exc)

    async def flush(self) -> int:
        """Move the memory buffer to the on-disk queue now (one transaction); how many were written.

        Waits for a flush already under way first, so on return everything buffered before the
        call is on disk (or back in the buffer if the store failed).
        """
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> int:
        if not self._buffer:
            return 0
        items, self._buffer = self._buffer, []
        try:
            written = await asyncio.get_running_loop().run_in_executor(self._io, self._write, items)
        except StoreError as exc:
            self._store_failed(exc)
            self._buffer[:0] = items  # back in front, in order, for the next attempt
            self._trim()
            self._update_health()
            return 0
        if self._store_failing:
            log.warning("mqtt: message store %s writable again", self.store.path)
            self._store_failing = False
            self.health.store_writable = True
        self._has_data.set()
        self._update_health()
        return written

    async def wait_drained(self, within: float) -> bool:
        """Wait until nothing is buffered or queued (all acknowledged); False after `within` seconds."""
        deadline = time.monotonic() + within
        while self._buffer or len(self.store):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def close(self) -> None:
        """Stop the worker thread and close the queue file (after `run` ended)."""
        self._io.shutdown(wait=True)
        self.store.close()

    def _write(self, items: list[_Pending]) -> int:
        """Encode and store (worker thread): JSON building stays off the event loop."""
        rows = []
        for topic, item, qos, retain in items:
            payload = uns.sample_payload(item) if isinstance(item, Sample) else item
            self._counter += 1
            rows.append((topic, uns.encode(payload, f"{self._producer}-{self._counter}"), qos, retain))
        return self.store.put_many(rows)

    def _trim(self) -> None:
        excess = len(self._buffer) - MAX_BUFFER
        if excess > 0:
            del self._buffer[:excess]  # the oldest, as the store does
            self._buffer_dropped += excess

    def _update_health(self) -> None:
        self.health.queued = len(self.store) + len(self._buffer)
        self.health.dropped_total = self.store.dropped_total + self._buffer_dropped

    def _store_failed(self, exc: StoreError) -> None:
        """Count a failed read or write of the queue; only the first of a run of failures is logged
        (a full disk fails every write and every ack until space is back)."""
        self.health.store_errors_total += 1
        if not self._store_failing:
            log.error("mqtt: %s; keeping messages in memory and retrying", exc)
            self._store_failing = True
            self.health.store_writable = False

    async def _flush_loop(self) -> None:
        retry = Backoff(*STORE_RETRY)
        while True:
            if self._store_failing:
                delay = retry.next_delay()
            else:
                retry.reset()
                delay = self.settings.flush_interval
            await asyncio.sleep(delay)
            await self.flush()

    async def _connection_loop(self) -> None:
        backoff = Backoff(self.settings.reconnect.initial, self.settings.reconnect.cap)
        while True:
            try:
                async with connect(
                    self.settings,
                    client_id=self.client_id,
                    clean_start=self.settings.clean_start,
                    will=self.will,
                ) as conn:
                    await self._send_births(conn)
                    self.health.link.mark_up()
                    backoff.reset()
                    await first_to_end(self._watch(conn), self._send_loop(conn))
            except ConnectionLost as exc:
                self.health.link.mark_down(str(exc))
            await asyncio.sleep(backoff.next_delay())

    async def _send_births(self, conn: Connection) -> None:
        if self.births is None:
            return
        for topic, payload in self.births():
            self._births_sent += 1  # own counter: `_counter` belongs to the store's worker thread
            data = uns.encode(payload, f"{self._producer}-birth-{self._births_sent}")
            await conn.publish(topic, data, qos=1, retain=True)

    async def _watch(self, conn: Connection) -> None:
        """Nothing is subscribed: this only notices the end of the session."""
        async for _ in conn.messages():
            pass
        raise ConnectionLost("session ended")

    async def _send_loop(self, conn: Connection) -> None:
        """A sliding window over the queue: up to `inflight` messages await their PUBACK while the
        next ones are read, and the acknowledged prefix is deleted with one statement."""
        loop = asyncio.get_running_loop()
        inflight = self.settings.inflight
        window: deque[tuple[int, asyncio.Task[None]]] = deque()
        last = 0  # the newest id handed to this session
        try:
            while True:
                room = inflight - len(window)
                if room > 0 and (not window or room >= inflight // 4):
                    self._has_data.clear()  # before the peek: a flush after it sets it again
                    try:
                        rows = await loop.run_in_executor(self._io, self.store.peek, room, last)
                    except StoreError as exc:
                        self._store_failed(exc)
                        await asyncio.sleep(1.0)
                        continue
                    if rows:
                        tasks = conn.publish_ordered([(r.topic, r.payload, r.qos, r.retain) for r in rows])
                        window.extend(zip((r.id for r in rows), tasks, strict=True))
                        last = rows[-1].id
                if not window:
                    await self._has_data.wait()
                    continue
                await asyncio.wait([window[0][1]], timeout=None if len(window) >= inflight else 0.02)
                await self._ack_done(window, raise_errors=True)
        finally:
            # Also when the session ends (this task is then cancelled): ack what the broker did
            # acknowledge; the rest is re-sent first on the next session.
            for _, task in window:
                task.cancel()
            await asyncio.gather(*(task for _, task in window), return_exceptions=True)
            await self._ack_done(window, raise_errors=False)

    async def _ack_done(self, window: deque[tuple[int, asyncio.Task[None]]], *, raise_errors: bool) -> None:
        """Pop the acknowledged prefix of the window and delete it from the queue."""
        last, count = 0, 0
        while window and window[0][1].done():
            task = window[0][1]
            error = None if task.cancelled() else task.exception()
            if task.cancelled() or error is not None:
                if raise_errors and error is not None:
                    await self._ack_through(last, count)
                    raise error
                break
            last, count = window.popleft()[0], count + 1
        await self._ack_through(last, count)

    async def _ack_through(self, last: int, count: int) -> None:
        if not count:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(self._io, self.store.ack_through, last)
        except StoreError as exc:  # deleted by the next ack, or sent again: duplicates, never losses
            self._store_failed(exc)
        self.health.published_total += count
        self._update_health()
