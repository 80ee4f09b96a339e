"""The OPC UA connector: one session per connection, a Subscription or poll loop per group, reconnects.

Hot path: `BatchSubscription.publish_callback` receives each PublishResponse whole and
`codec.decode_items` turns its MonitoredItems into ONE list of Samples for the sink. asyncua's
handler mode (one Task per notification) and iterator mode (a bounded queue that drops) are not used.

Loss is detected here (connection_lost_callback, status change notifications, a periodic Read of
the server clock, silent subscriptions); each reconnect builds a fresh `Session` (session.py):
client, security, limits, resolved addresses, subscriptions and monitored items.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Sequence
from typing import Any

from asyncua import ua
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.uaerrors import UaStatusCodeError

from connectors.base import BoundSignal, LinkHealth, SampleSink
from connectors.common.backoff import Backoff
from connectors.opcua.codec import (
    BAD_CONFIGURATION_ERROR,
    EncodeError,
    decode_data_value,
    decode_items,
    encode_value,
    parse_address,
    variant_type_of,
)
from connectors.opcua.config import OpcUaConnection
from connectors.opcua.groups import Group, ItemParams, plan_groups
from connectors.opcua.security import Pki
from connectors.opcua.session import (
    BatchSubscription,
    NotificationsHandler,
    Session,
    close,
    describe,
    read,
    status_name,
)
from models import status as st
from models.sample import Sample, bad

log = logging.getLogger("parklink.opcua")

_DATA_CHANGE, _STATUS_CHANGE = ua.DataChangeNotification, ua.StatusChangeNotification


class OpcUaConnector:
    """Streams (or polls) the signals bound to one OPC UA server into a sink."""

    def __init__(self, conn: OpcUaConnection, signals: Sequence[BoundSignal], health: LinkHealth) -> None:
        self._conn = conn
        self._health = health
        self._signals = list(signals)
        # Client handle of a monitored item = index into these lists (the hot path's lookup).
        self._ids = [s.signal for s in self._signals]
        self._addresses = [parse_address(s.binding.address) for s in self._signals]
        self._groups, self._unknown_groups = plan_groups(conn, [s.binding for s in self._signals])
        self._index = {s.signal: i for i, s in enumerate(self._signals)}
        self._pki = Pki.of(conn, health.company, health.connection)
        self._reported: dict[int, int] = {}  # slot -> status already logged for it
        self._session: Session | None = None
        self._down_pushed = False
        self._types_loaded = False

    @property
    def groups(self) -> list[Group]:
        return self._groups

    # --- run loop ---------------------------------------------------------------------------

    async def run(self, sink: SampleSink) -> None:
        """Connect, stream or poll into `sink`, reconnect with backoff; until cancelled."""
        backoff = Backoff(self._conn.reconnect_initial, self._conn.reconnect_max)
        while True:
            session = Session(self._conn, self._pki)
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
                await close(session.client)
            await asyncio.sleep(backoff.next_delay())

    async def _connect(self, session: Session, sink: SampleSink) -> str:
        """Open the session and set up items; '' on success, else the reason (a connect error)."""
        try:
            load_types = self._conn.load_data_types and not self._types_loaded
            self._types_loaded |= await session.open(load_types)
            failures = await session.resolve(self._addresses)
            failures.update(
                (slot, (BAD_CONFIGURATION_ERROR, why)) for slot, why in self._unknown_groups.items()
            )
            on_data = self._on_data_factory(session, sink)
            for group in self._groups:
                if group.mode == "subscribe":
                    failures.update(await self._subscribe(session, group, on_data))
            self._health.last_rtt = await session.probe()
        except Exception as exc:
            self._health.read_errors += 1
            return f"connect failed: {describe(exc)}"
        session.up = True
        self._down_pushed = False
        self._health.mark_up()
        if failures:
            now = time.time()
            for slot, (status, why) in failures.items():
                self._report(slot, status, why)
            sink([bad(self._ids[slot], status, now) for slot, (status, _) in sorted(failures.items())])
        return ""

    async def _serve(self, session: Session, sink: SampleSink) -> str:
        """Run the watchdog and the poll loops until the session is lost; returns why."""
        loops = [self._watch(session)] + [
            self._poll(session, g, sink) for g in self._groups if g.mode == "poll"
        ]
        tasks = [asyncio.create_task(self._guard(session, loop)) for loop in loops]
        try:
            await session.lost.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return session.reason

    def _went_down(self, reason: str, sink: SampleSink) -> None:
        self._health.mark_down(reason)
        if not self._down_pushed:  # one Bad batch per outage, not per failed attempt
            self._down_pushed = True
            now = time.time()
            sink([bad(signal, st.BAD_NO_COMMUNICATION, now) for signal in self._ids])

    async def _guard(self, session: Session, work: Awaitable[None]) -> None:
        """Run a loop of the session; an exception means the session is lost."""
        try:
            await work
        except Exception as exc:
            self._health.read_errors += 1
            session.signal_loss(describe(exc))

    # --- subscriptions ----------------------------------------------------------------------

    async def _subscribe(
        self, session: Session, group: Group, on_data: NotificationsHandler
    ) -> dict[int, tuple[int, str]]:
        """The group's Subscription, then its monitored items in calls of the server's limit."""
        conn = self._conn
        interval = group.publishing_interval
        keepalive = group.keepalive_count(conn.watchdog_interval)
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=interval,
            RequestedLifetimeCount=max(3 * keepalive, math.ceil(60_000 / interval)),
            RequestedMaxKeepAliveCount=keepalive,
            MaxNotificationsPerPublish=0,  # no limit: a whole change set per response
            PublishingEnabled=True,
            Priority=0,
        )
        subscription = BatchSubscription(session.client, params, on_data, group.name)
        await subscription.init()
        session.subscriptions.append(subscription)
        params_of = dict(zip(group.slots, group.params, strict=True))
        failures: dict[int, tuple[int, str]] = {}
        for chunk in session.chunks(group.slots, session.items_per_call):
            requests = [_item_request(slot, node_id, params_of[slot]) for slot, node_id in chunk]
            try:
                results: list[Any] = await subscription.create_items(requests)
            except UaStatusCodeError as exc:  # the whole call refused, e.g. BadTooManyOperations
                results = [ua.MonitoredItemCreateResult(StatusCode=ua.StatusCode(exc.code))] * len(chunk)
            for (slot, _), result in zip(chunk, results, strict=True):
                if not result.StatusCode.is_good():
                    failures[slot] = (result.StatusCode.value, "monitored item refused")
        return failures

    def _on_data_factory(self, session: Session, sink: SampleSink) -> NotificationsHandler:
        ids, health, report = self._ids, self._health, self._report
        lost = session.lost

        def on_data(notifications: list[Any]) -> None:
            """The hot path: one publish response in, one batch of Samples out."""
            batch: list[Sample] = []
            now = time.time()
            for notification in notifications:
                if notification.__class__ is _DATA_CHANGE:
                    for slot in decode_items(notification.MonitoredItems, ids, now, batch):
                        report(slot, st.BAD_DATA_TYPE_ID_UNKNOWN, "")
                elif isinstance(notification, _STATUS_CHANGE):
                    # BadTimeout: the server dropped the subscription; BadShutdown: asyncua saw the
                    # connection die. Either way the session is of no further use.
                    session.signal_loss(f"subscription status {status_name(notification.Status.value)}")
            # A late response of a session already declared lost must not follow its Bad batch.
            if batch and not lost.is_set():
                health.samples += len(batch)
                sink(batch)

        return on_data

    async def _watch(self, session: Session) -> None:
        """Probe the server every watchdog_interval; notice subscriptions that went silent."""
        conn = self._conn
        limits = [
            (s, 3 * s.parameters.RequestedMaxKeepAliveCount * s.parameters.RequestedPublishingInterval / 1000)
            for s in session.subscriptions
        ]
        while not session.lost.is_set():
            await asyncio.sleep(conn.watchdog_interval)
            self._health.last_rtt = await session.probe()
            # The server must answer within each keep-alive period, data or not; a silent
            # subscription means the publish loop died although reads still work.
            now = time.monotonic()
            for subscription, keepalives in limits:
                silent_limit = keepalives + conn.timeout
                if now - subscription.last_response_at > silent_limit:
                    session.signal_loss(
                        f"no publish response for {silent_limit:.0f} s (group {subscription.group!r})"
                    )

    # --- poll mode --------------------------------------------------------------------------

    async def _poll(self, session: Session, group: Group, sink: SampleSink) -> None:
        """Read the group's signals once per its poll_interval, one batch per poll."""
        loop = asyncio.get_running_loop()
        chunks = session.chunks(group.slots, session.nodes_per_read)
        next_at = loop.time()
        while not session.lost.is_set():
            batch: list[Sample] = []
            for chunk in chunks:
                results = await read(session.client, [node_id for _, node_id in chunk])
                now = time.time()
                for (slot, _), dv in zip(chunk, results, strict=True):
                    value, status, source_time, server_time = decode_data_value(dv, now)
                    if status in (st.BAD_DATA_TYPE_ID_UNKNOWN, st.BAD_NODE_ID_UNKNOWN):
                        self._report(slot, status, "read refused" if status == st.BAD_NODE_ID_UNKNOWN else "")
                    batch.append(Sample(self._ids[slot], value, status, source_time, server_time))
            if batch and not session.lost.is_set():
                self._health.samples += len(batch)
                sink(batch)
            next_at = max(next_at + group.poll_interval, loop.time())  # skip polls we were late for
            await asyncio.sleep(next_at - loop.time())

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
            vtype = session.variant_types.get(slot) or await _variant_type(session, node_id)
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

    # --- logging ----------------------------------------------------------------------------

    def _report(self, slot: int, status: int, what: str) -> None:
        """One log line per node and status, however many samples carry it."""
        if self._reported.get(slot) == status or status == st.GOOD:
            return
        self._reported[slot] = status
        what = what or "value is a structure without a definition, or of a type parklink cannot represent"
        signal = self._signals[slot]
        log.warning("%s: %s: %s (%s)", signal.path, signal.binding.address, what, status_name(status))


def _item_request(slot: int, node_id: ua.NodeId, params: ItemParams) -> ua.MonitoredItemCreateRequest:
    return ua.MonitoredItemCreateRequest(
        ItemToMonitor=ua.ReadValueId(NodeId=node_id, AttributeId=AttributeIds.Value),
        MonitoringMode=ua.MonitoringMode.Reporting,
        RequestedParameters=ua.MonitoringParameters(
            ClientHandle=slot,
            SamplingInterval=params.sampling_interval,
            QueueSize=params.queue_size,
            DiscardOldest=params.discard_oldest,
            Filter=params.data_change_filter(),
        ),
    )


async def _variant_type(session: Session, node_id: ua.NodeId) -> ua.VariantType:
    """The VariantType to write: the node's built-in DataType, else its current value's type."""
    (type_dv,) = await read(session.client, [node_id], AttributeIds.DataType)
    type_dv.StatusCode.check()
    vtype = variant_type_of(type_dv.Value.Value)
    if vtype is None:  # enumerations travel as Int32, subtypes as their base type: ask the value
        (value_dv,) = await read(session.client, [node_id])
        vtype = value_dv.Value.VariantType if value_dv.Value is not None else ua.VariantType.Null
    if vtype in (ua.VariantType.Null, ua.VariantType.ExtensionObject):
        raise EncodeError("cannot write a value of this node's data type", st.BAD_NOT_WRITABLE)
    return vtype
