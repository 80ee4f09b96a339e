"""The OPC UA connector: one session per connection, subscriptions or polled Reads, own reconnect loop.

Hot path: `_BatchSubscription.publish_callback` receives each PublishResponse whole and turns its
`DataChangeNotification.MonitoredItems` into ONE list of Samples for the sink. asyncua's handler
mode (one Task per notification) and iterator mode (a bounded queue that drops) are not used.

asyncua runs with `auto_reconnect=False`: loss is detected here (connection_lost_callback, status
change notifications, a periodic Read of the server clock, silent subscriptions) and each
reconnect builds a fresh client, session, subscription and monitored items.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.subscription import Subscription
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.uaerrors import UaStatusCodeError

from connectors.base import BoundSignal, LinkHealth, SampleSink
from connectors.common.backoff import Backoff
from connectors.opcua.codec import (
    EncodeError,
    NodeAddress,
    decode_data_value,
    encode_value,
    make_node_id,
    parse_node_id,
    variant_type_of,
)
from connectors.opcua.config import OpcUaConnection
from models import status as st
from models.sample import Sample, bad

log = logging.getLogger("parklink.opcua")
# asyncua logs every PublishResult at INFO (formatting it whole): never let that through.
logging.getLogger("asyncua").setLevel(logging.WARNING)


_EXPECTED_NOISE = (
    "close_session was called but connection is closed",
    "close_secure_channel was called but connection is closed",
    "Publish iteration crashed; retrying in 1s",  # its request failed with the socket
)


def _not_expected_noise(record: logging.LogRecord) -> bool:
    """asyncua complains about a connection we already know is dead (and close next): drop that."""
    exc = record.exc_info[1] if record.exc_info else None
    return not (record.msg in _EXPECTED_NOISE and (exc is None or isinstance(exc, ConnectionError)))


for _name in ("asyncua.client.ua_session.UaSession", "asyncua.client.ua_client.UaClient"):
    logging.getLogger(_name).addFilter(_not_expected_noise)

_CLOSE_TIMEOUT = 2.0
_SESSION_TIMEOUT_MS = 120_000  # the server frees our session 2 min after we vanish
_CURRENT_TIME = make_node_id(ObjectIds.Server_ServerStatus_CurrentTime)
_UNREPRESENTABLE = frozenset({st.BAD_DATA_TYPE_ID_UNKNOWN, st.BAD_DECODING_ERROR})

NotificationsHandler = Callable[[list[Any]], None]


class _BatchSubscription(Subscription):
    """A Subscription that hands each publish response's notifications over in one call."""

    def __init__(
        self, client: Client, params: ua.CreateSubscriptionParameters, on_data: NotificationsHandler
    ):
        super().__init__(client.uaclient.session, params, handler=None, queue_maxsize=1)
        self._on_data = on_data

    async def publish_callback(self, publish_result: ua.PublishResult) -> None:
        """Called by asyncua's publish loop once per PublishResponse; never awaits."""
        self.last_publish_at = time.monotonic()
        message = publish_result.NotificationMessage
        if message.NotificationData:
            self.last_sequence_number = message.SequenceNumber
            self._on_data(message.NotificationData)


class _Session:
    """One connection attempt: its client, resolved node ids and loss flag.

    A fresh object per attempt, so a late callback of a dead session cannot disturb the next one.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self.lost = asyncio.Event()
        self.reason = ""
        self.node_ids: list[ua.NodeId | None] = []
        self.variant_types: dict[int, ua.VariantType] = {}
        self.subscription: _BatchSubscription | None = None
        self.up = False

    def chunks(self, size: int) -> list[list[tuple[int, ua.NodeId]]]:
        """(slot, node id) of every resolved node, in runs of `size` (one service call each)."""
        live = [(slot, node_id) for slot, node_id in enumerate(self.node_ids) if node_id is not None]
        return [live[start : start + size] for start in range(0, len(live), size)]

    def signal_loss(self, reason: str) -> None:
        """Record the first reason the session died and wake the supervising loop."""
        if not self.lost.is_set():
            self.reason = reason
            self.lost.set()

    async def on_connection_lost(self, exc: Exception) -> None:
        """asyncua's connection_lost_callback: the socket closed or its watchdog Read failed."""
        self.signal_loss(f"connection lost ({_describe(exc)})")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, UaStatusCodeError):
        return st.name_of(exc.code)
    if isinstance(exc, TimeoutError):
        return "timeout"
    return str(exc) or type(exc).__name__


async def _read(client: Client, node_ids: Sequence[ua.NodeId], attr: int = AttributeIds.Value) -> list[Any]:
    """One Read request asking for both timestamps (asyncua's read_attributes asks for Source only)."""
    params = ua.ReadParameters()
    params.TimestampsToReturn = ua.TimestampsToReturn.Both
    params.NodesToRead = [ua.ReadValueId(NodeId=n, AttributeId=attr) for n in node_ids]
    results: list[Any] = await client.uaclient.read(params)
    return results


async def _close(client: Client) -> None:
    """Close the session politely within 2 s; then drop the socket whatever happened."""
    try:
        await asyncio.wait_for(client.disconnect(), _CLOSE_TIMEOUT)
    except Exception:
        log.debug("disconnect failed", exc_info=True)
    finally:
        client.disconnect_socket()


class OpcUaConnector:
    """Streams (or polls) the signals bound to one OPC UA server into a sink."""

    def __init__(self, conn: OpcUaConnection, signals: Sequence[BoundSignal], health: LinkHealth) -> None:
        self._conn = conn
        self._health = health
        self._signals = list(signals)
        # Client handle of a monitored item = index into these lists (the hot path's lookup).
        self._ids = [s.signal for s in self._signals]
        self._addresses: list[NodeAddress] = [parse_node_id(s.binding.address) for s in self._signals]
        self._index = {s.signal: i for i, s in enumerate(self._signals)}
        self._reported: dict[int, int] = {}  # slot -> status already logged for it
        self._session: _Session | None = None
        self._down_pushed = False

    # --- run loop ---------------------------------------------------------------------------

    async def run(self, sink: SampleSink) -> None:
        """Connect, stream or poll into `sink`, reconnect with backoff; until cancelled."""
        backoff = Backoff(self._conn.reconnect_initial, self._conn.reconnect_max)
        while True:
            session = _Session(self._new_client())
            self._session = session
            try:
                reason = await self._connect(session, sink)
                if not reason:
                    backoff.reset()
                    reason = await self._serve(session, sink)
                session.up = False
                self._went_down(reason, sink)  # before closing: that may take its full timeout
            finally:  # also on cancellation: the session is closed before CancelledError goes on
                session.up = False
                self._session = None
                await _close(session.client)
            await asyncio.sleep(backoff.next_delay())

    def _new_client(self) -> Client:
        conn = self._conn
        client = Client(conn.endpoint, timeout=conn.timeout, watchdog_intervall=conn.watchdog_interval)
        client.name = client.description = "parklink"
        client.session_timeout = _SESSION_TIMEOUT_MS
        if conn.username is not None:
            client.set_user(conn.username)
        if conn.password is not None:
            client.set_password(conn.password.get_secret_value())
        return client

    async def _connect(self, session: _Session, sink: SampleSink) -> str:
        """Open the session and set up items; '' on success, else the reason (a connect error)."""
        client, conn = session.client, self._conn
        try:
            if security := conn.security_string():
                await client.set_security_string(security)  # may fetch the server certificate
            client.connection_lost_callback = session.on_connection_lost
            await client.connect(auto_reconnect=False)
            failures = await self._resolve(session)
            if conn.mode == "subscribe":
                failures += await self._subscribe(session, sink)
            await self._probe(session)
        except Exception as exc:
            self._health.read_errors += 1
            return f"connect failed: {_describe(exc)}"
        session.up = True
        self._down_pushed = False
        self._health.mark_up()
        if failures:
            sink(failures)
        return ""

    async def _serve(self, session: _Session, sink: SampleSink) -> str:
        """Run until the session is lost; returns why."""
        try:
            if self._conn.mode == "poll":
                await self._poll_loop(session, sink)
            else:
                await self._watch_loop(session)
        except Exception as exc:
            self._health.read_errors += 1
            session.signal_loss(_describe(exc))
        return session.reason

    def _went_down(self, reason: str, sink: SampleSink) -> None:
        self._health.mark_down(reason)
        if not self._down_pushed:  # one Bad batch per outage, not per failed attempt
            self._down_pushed = True
            now = time.time()
            sink([bad(signal, st.BAD_NO_COMMUNICATION, now) for signal in self._ids])

    async def _probe(self, session: _Session) -> None:
        """Read the server clock; its round trip is the link's RTT. Raises if the server is gone."""
        start = time.perf_counter()
        (dv,) = await _read(session.client, [_CURRENT_TIME])
        self._health.last_rtt = time.perf_counter() - start
        dv.StatusCode.check()

    # --- address resolution and subscription ------------------------------------------------

    async def _resolve(self, session: _Session) -> list[Sample]:
        """NodeIds for every slot, with `nsu=` looked up in the server's NamespaceArray."""
        namespaces: list[str] | None = None
        if any(a.namespace_uri is not None for a in self._addresses):
            namespaces = list(await session.client.get_namespace_array())
        failures: list[Sample] = []
        now = time.time()
        session.node_ids = []
        for slot, address in enumerate(self._addresses):
            try:
                session.node_ids.append(address.resolve(namespaces))
            except LookupError as exc:
                session.node_ids.append(None)
                self._report(slot, st.BAD_NODE_ID_UNKNOWN, str(exc))
                failures.append(bad(self._ids[slot], st.BAD_NODE_ID_UNKNOWN, now))
        return failures

    async def _subscribe(self, session: _Session, sink: SampleSink) -> list[Sample]:
        """Create the subscription, then its monitored items in calls of subscribe_batch_size."""
        conn = self._conn
        # Keep-alives every watchdog_interval let a silent subscription be noticed (see _watch_loop).
        keepalive = max(1, math.ceil(conn.watchdog_interval * 1000 / conn.publishing_interval))
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=conn.publishing_interval,
            RequestedLifetimeCount=max(3 * keepalive, math.ceil(60_000 / conn.publishing_interval)),
            RequestedMaxKeepAliveCount=keepalive,
            MaxNotificationsPerPublish=0,  # no limit: a whole change set per response
            PublishingEnabled=True,
            Priority=0,
        )
        subscription = _BatchSubscription(session.client, params, self._on_data_factory(session, sink))
        await subscription.init()
        session.subscription = subscription
        failures: list[Sample] = []
        for chunk in session.chunks(conn.subscribe_batch_size):
            requests = [self._item_request(slot, node_id) for slot, node_id in chunk]
            try:
                results: list[Any] = await subscription.create_monitored_items(requests)
            except UaStatusCodeError as exc:  # the whole call refused, e.g. BadTooManyOperations
                results = [ua.StatusCode(exc.code)] * len(chunk)
            now = time.time()
            for (slot, _), result in zip(chunk, results, strict=True):
                if isinstance(result, ua.StatusCode):
                    self._report(slot, result.value, "monitored item refused")
                    failures.append(bad(self._ids[slot], result.value, now))
        return failures

    def _item_request(self, slot: int, node_id: ua.NodeId) -> ua.MonitoredItemCreateRequest:
        sampling = self._signals[slot].binding.sampling_interval
        params = ua.MonitoringParameters(
            ClientHandle=slot,
            SamplingInterval=self._conn.sampling_interval if sampling is None else sampling,
            QueueSize=self._conn.queue_size,
            DiscardOldest=True,
        )
        return ua.MonitoredItemCreateRequest(
            ItemToMonitor=ua.ReadValueId(NodeId=node_id, AttributeId=AttributeIds.Value),
            MonitoringMode=ua.MonitoringMode.Reporting,
            RequestedParameters=params,
        )

    def _on_data_factory(self, session: _Session, sink: SampleSink) -> NotificationsHandler:
        ids, health = self._ids, self._health
        count = len(ids)

        def on_data(notifications: list[Any]) -> None:
            """The hot path: one publish response in, one batch of Samples out."""
            now = time.time()
            batch: list[Sample] = []
            append = batch.append
            for notification in notifications:
                if isinstance(notification, ua.DataChangeNotification):
                    for item in notification.MonitoredItems:
                        slot = item.ClientHandle
                        if not 0 <= slot < count:
                            continue  # not one of ours (cannot happen with a server that behaves)
                        try:
                            value, status, source_time, server_time = decode_data_value(item.Value, now)
                        except Exception:
                            value, status, source_time, server_time = None, st.BAD_DECODING_ERROR, now, now
                        if status in _UNREPRESENTABLE:
                            self._report(slot, status, "")
                        append(Sample(ids[slot], value, status, source_time, server_time))
                elif isinstance(notification, ua.StatusChangeNotification):
                    # BadTimeout: the server dropped the subscription; BadShutdown: asyncua saw the
                    # connection die. Either way the session is of no further use.
                    session.signal_loss(f"subscription status {st.name_of(notification.Status.value)}")
            # A late response of a session already declared lost must not follow its Bad batch.
            if batch and not session.lost.is_set():
                health.samples += len(batch)
                sink(batch)

        return on_data

    async def _watch_loop(self, session: _Session) -> None:
        """Subscribe mode: probe the server every watchdog_interval until the session is lost."""
        conn = self._conn
        subscription = session.subscription
        assert subscription is not None
        keepalive_s = subscription.parameters.RequestedMaxKeepAliveCount * conn.publishing_interval / 1000
        silent_limit = 3 * keepalive_s + conn.timeout
        while not session.lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.lost.wait(), conn.watchdog_interval)
                return
            await self._probe(session)
            # The server must answer every publish within the keep-alive period, data or not; a
            # silent subscription means the publish loop died although reads still work.
            last = subscription.last_publish_at
            if last is not None and time.monotonic() - last > silent_limit:
                session.signal_loss(f"no publish response for {silent_limit:.0f} s")

    # --- poll mode --------------------------------------------------------------------------

    async def _poll_loop(self, session: _Session, sink: SampleSink) -> None:
        """Poll mode: Read every signal once per poll_interval, one batch per poll."""
        conn, loop = self._conn, asyncio.get_running_loop()
        chunks = session.chunks(conn.subscribe_batch_size)
        next_at = last_probe = loop.time()
        while not session.lost.is_set():
            batch: list[Sample] = []
            for chunk in chunks:
                results = await _read(session.client, [node_id for _, node_id in chunk])
                now = time.time()
                for (slot, _), dv in zip(chunk, results, strict=True):
                    value, status, source_time, server_time = decode_data_value(dv, now)
                    if status in (st.BAD_DATA_TYPE_ID_UNKNOWN, st.BAD_NODE_ID_UNKNOWN):
                        self._report(slot, status, "read refused" if status == st.BAD_NODE_ID_UNKNOWN else "")
                    batch.append(Sample(self._ids[slot], value, status, source_time, server_time))
            if batch and not session.lost.is_set():
                self._health.samples += len(batch)
                sink(batch)
            if loop.time() - last_probe >= conn.watchdog_interval:
                await self._probe(session)
                last_probe = loop.time()
            next_at = max(next_at + conn.poll_interval, loop.time())  # skip polls we were late for
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.lost.wait(), next_at - loop.time())

    # --- writes -----------------------------------------------------------------------------

    async def write(self, signal: BoundSignal, value: object) -> int:
        """Write `value` to a writable signal, converted to the node's type; the server's status."""
        if not getattr(signal.binding, "writable", False):
            return st.BAD_NOT_WRITABLE
        slot = self._index.get(signal.signal)
        session = self._session
        if slot is None:
            return st.BAD_NOT_FOUND
        if session is None or not session.up:
            return st.BAD_NO_COMMUNICATION
        node_id = session.node_ids[slot]
        if node_id is None:
            return st.BAD_NODE_ID_UNKNOWN
        try:
            vtype = session.variant_types.get(slot) or await self._variant_type(session, node_id)
            session.variant_types[slot] = vtype
            data_value = ua.DataValue(encode_value(value, vtype))
            (status,) = await session.client.uaclient.write_attributes([node_id], [data_value])
        except EncodeError as exc:
            log.info("%s: write refused: %s", signal.path, exc)
            return exc.status
        except UaStatusCodeError as exc:
            return int(exc.code)
        except TimeoutError:
            return st.BAD_TIMEOUT
        except (ConnectionError, OSError):
            return st.BAD_COMMUNICATION_ERROR
        return int(status.value)

    async def _variant_type(self, session: _Session, node_id: ua.NodeId) -> ua.VariantType:
        """The VariantType to write: the node's built-in DataType, else its current value's type."""
        (type_dv,) = await _read(session.client, [node_id], AttributeIds.DataType)
        type_dv.StatusCode.check()
        vtype = variant_type_of(type_dv.Value.Value)
        if vtype is None:  # enumerations travel as Int32, subtypes as their base type: ask the value
            (value_dv,) = await _read(session.client, [node_id])
            vtype = value_dv.Value.VariantType if value_dv.Value is not None else ua.VariantType.Null
        if vtype in (ua.VariantType.Null, ua.VariantType.ExtensionObject):
            raise EncodeError("cannot write a value of this node's data type", st.BAD_NOT_WRITABLE)
        return vtype

    # --- logging ----------------------------------------------------------------------------

    def _report(self, slot: int, status: int, what: str) -> None:
        """One log line per node and status, however many samples carry it."""
        if self._reported.get(slot) == status or status == st.GOOD:
            return
        self._reported[slot] = status
        what = what or "value is a structure or of a type parklink cannot represent"
        signal = self._signals[slot]
        log.warning("%s: %s: %s (%s)", signal.path, signal.binding.address, what, st.name_of(status))
