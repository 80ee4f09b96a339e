"""Subscriptions against a real asyncua server the test writes to: groups, filters, queues, limits.

The server records what it was asked for (CreateSubscription, CreateMonitoredItems, Read), so the
tests check both the parameters on the wire and the behaviour where asyncua's server implements
it (queue size, data change trigger, absolute deadband; percent deadband it ignores).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from asyncua import Server, ua
from asyncua.common.utils import ServiceError
from opcua_helpers import bind, connection, free_port, running

from models.status import GOOD, UNCERTAIN

pytestmark = pytest.mark.asyncio(loop_scope="module")
NAMES = [f"N{i}" for i in range(12)]
T0 = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass
class FilterServer:
    server: Server
    endpoint: str
    item_calls: list[list[ua.MonitoredItemCreateRequest]] = field(default_factory=list)
    read_sizes: list[int] = field(default_factory=list)
    max_items: int | None = None  # refuse bigger CreateMonitoredItems calls
    max_reads: int | None = None

    async def write(self, name: str, value: float, status: int = GOOD, when: datetime | None = None) -> None:
        when = when or datetime.now(UTC)
        new: Any = ua.DataValue
        dv = new(ua.Variant(value, ua.VariantType.Double), ua.StatusCode(status), SourceTimestamp=when)
        dv.ServerTimestamp = when
        await self.server.write_attribute_value(ua.NodeId(f"F.{name}", 2), dv)

    async def set_limits(self, items: int, reads: int) -> None:
        ids = ua.ObjectIds
        for node, value in (
            (ids.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall, items),
            (ids.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead, reads),
        ):
            await self.server.write_attribute_value(
                ua.NodeId(node), ua.DataValue(ua.Variant(value, ua.VariantType.UInt32))
            )
        self.max_items, self.max_reads = items, reads

    def subscriptions(self) -> list[Any]:
        return list(self.server.iserver.subscription_service.subscriptions.values())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def srv() -> AsyncIterator[FilterServer]:
    """An in-process server with Double variables F.N0..F.N11 that only change when a test writes."""
    server = Server()
    await server.init()
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/filters/"
    server.set_endpoint(endpoint)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace("urn:parklink:filters")
    folder = await server.nodes.objects.add_folder(ua.NodeId("F", idx), ua.QualifiedName("F", idx))
    for name in NAMES:
        await folder.add_variable(ua.NodeId(f"F.{name}", idx), ua.QualifiedName(name, idx), 0.0)
    test = FilterServer(server, endpoint)

    service = server.iserver.subscription_service
    create_items = service.create_monitored_items

    async def record_items(params: ua.CreateMonitoredItemsParameters) -> Any:
        test.item_calls.append(list(params.ItemsToCreate))
        if test.max_items is not None and len(params.ItemsToCreate) > test.max_items:
            raise ServiceError(ua.StatusCodes.BadTooManyOperations)
        return await create_items(params)

    service.create_monitored_items = record_items
    attributes = server.iserver.attribute_service
    read = attributes.read

    def record_read(params: ua.ReadParameters) -> Any:
        test.read_sizes.append(len(params.NodesToRead))
        if test.max_reads is not None and len(params.NodesToRead) > test.max_reads:
            raise ServiceError(ua.StatusCodes.BadTooManyOperations)
        return read(params)

    attributes.read = record_read
    async with server:
        yield test


def _values(samples: list[Any]) -> list[float]:
    return [s.value for s in samples]


async def test_groups_have_their_own_subscription(srv: FilterServer) -> None:
    """One Subscription per group at its publishing interval; items carry the cascaded settings."""
    srv.item_calls.clear()
    before = {id(s) for s in srv.subscriptions()}
    conn = connection(
        srv.endpoint,
        queue_size=3,
        groups={
            "fast": {"publishing_interval": 50, "sampling_interval": 10},
            "slow": {"publishing_interval": 1000},
        },
    )
    signals = bind(
        [
            "ns=2;s=F.N0",
            {"address": "ns=2;s=F.N1", "group": "fast", "discard_oldest": False},
            {"address": "ns=2;s=F.N2", "group": "slow", "queue_size": 1},
        ]
    )
    async with running(conn, signals) as (connector, sink, health):
        await sink.until(lambda: health.up and len(sink.latest()) == 3, 10, "initial values")
        mine = [s for s in srv.subscriptions() if id(s) not in before]
        assert sorted(s.data.RevisedPublishingInterval for s in mine) == [50.0, 100.0, 1000.0]
        for value in range(1, 11):  # a change every 50 ms to both N1 (fast) and N2 (slow)
            await srv.write("N1", float(value))
            await srv.write("N2", float(value))
            await asyncio.sleep(0.05)
        await sink.until(lambda: sink.latest()[2].value == 10.0, 3, "the slow group's last value")
    fast_batches = sum(1 for b in sink.batches if any(s.signal == 1 for s in b))
    slow_batches = sum(1 for b in sink.batches if any(s.signal == 2 for s in b))
    assert fast_batches >= 5 and slow_batches <= 3, (fast_batches, slow_batches)
    assert len(sink.of(2)) <= 3  # queue size 1: the slow group sees the last value, not every one
    requests = {
        r.ItemToMonitor.NodeId.Identifier: r.RequestedParameters for call in srv.item_calls for r in call
    }
    n0, n1, n2 = requests["F.N0"], requests["F.N1"], requests["F.N2"]
    assert (n0.SamplingInterval, n0.QueueSize, n0.DiscardOldest) == (50.0, 3, True)
    assert not isinstance(n0.Filter, ua.DataChangeFilter)  # none sent: the server's default
    assert (n1.SamplingInterval, n1.QueueSize, n1.DiscardOldest) == (10.0, 3, False)
    assert (n2.SamplingInterval, n2.QueueSize) == (50.0, 1)
    assert [g.name for g in connector.groups] == ["default", "fast", "slow"]


async def test_queue_keeps_every_change_of_a_publishing_interval(srv: FilterServer) -> None:
    """queue_size 5: three writes within one publishing interval arrive as three samples, in order."""
    conn = connection(srv.endpoint, publishing_interval=600, queue_size=5)
    async with running(conn, bind(["ns=2;s=F.N3"])) as (_, sink, health):
        await sink.until(lambda: health.up and 0 in sink.latest(), 10, "initial value")
        await asyncio.sleep(0.7)
        for value in (1.0, 2.0, 3.0):
            await srv.write("N3", value)
        await sink.until(lambda: sink.latest()[0].value == 3.0, 3, "the last write")
    batch = next(b for b in sink.batches if any(s.value == 3.0 for s in b))
    assert _values(batch) == [1.0, 2.0, 3.0]


async def test_data_change_triggers(srv: FilterServer) -> None:
    """trigger status: only status changes; status_value_timestamp: also a new timestamp alone."""
    signals = bind(
        [
            {"address": "ns=2;s=F.N4", "trigger": "status"},
            {"address": "ns=2;s=F.N5", "trigger": "status_value_timestamp"},
            {"address": "ns=2;s=F.N6"},  # status_value (the default)
        ]
    )
    async with running(connection(srv.endpoint), signals) as (_, sink, health):
        await sink.until(lambda: health.up and len(sink.latest()) == 3, 10, "initial values")
        await srv.write("N4", 1.0)
        await srv.write("N4", 2.0)
        await srv.write("N4", 2.0, UNCERTAIN)
        for name in ("N5", "N6"):
            await srv.write(name, 5.0, when=T0)
        await asyncio.sleep(0.3)  # more than a publishing interval: no coalescing in the queue of 1
        for name in ("N5", "N6"):
            await srv.write(name, 5.0, when=T0 + timedelta(seconds=1))  # same value, new time
        await sink.until(lambda: len(sink.of(0)) >= 2 and len(sink.of(1)) >= 3, 3, "notifications")
        await asyncio.sleep(0.3)
    assert [(s.value, s.status) for s in sink.of(0)] == [(0.0, GOOD), (2.0, UNCERTAIN)]
    assert [s.source_time for s in sink.of(1)][1:] == [T0.timestamp(), T0.timestamp() + 1]
    assert [s.source_time for s in sink.of(2)][1:] == [T0.timestamp()]


async def test_deadbands(srv: FilterServer) -> None:
    """An absolute deadband drops small changes; a percent deadband is requested as configured."""
    srv.item_calls.clear()
    await srv.write("N7", 10.0)
    signals = bind(
        [
            {"address": "ns=2;s=F.N7", "deadband_type": "absolute", "deadband_value": 1.0},
            {"address": "ns=2;s=F.N8", "deadband_type": "percent", "deadband_value": 2.5},
        ]
    )
    async with running(connection(srv.endpoint), signals) as (_, sink, health):
        await sink.until(lambda: health.up and len(sink.latest()) == 2, 10, "initial values")
        for value in (10.4, 10.8, 12.5):  # asyncua compares with the previous value, not the last sent
            await srv.write("N7", value)
        await sink.until(lambda: sink.latest()[0].value == 12.5, 3, "the big change")
    assert _values(sink.of(0)) == [10.0, 12.5]
    filters = {
        r.ItemToMonitor.NodeId.Identifier: r.RequestedParameters.Filter for c in srv.item_calls for r in c
    }
    absolute, percent = filters["F.N7"], filters["F.N8"]
    assert (absolute.DeadbandType, absolute.DeadbandValue) == (ua.DeadbandType.Absolute, 1.0)
    assert (percent.DeadbandType, percent.DeadbandValue) == (ua.DeadbandType.Percent, 2.5)
    assert percent.Trigger == ua.DataChangeTrigger.StatusValue


@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_server_operation_limits(srv: FilterServer, mode: str) -> None:
    """A server limit below subscribe_batch_size is read at connect and honoured."""
    srv.item_calls.clear()
    srv.read_sizes.clear()
    await srv.set_limits(items=5, reads=4)
    try:
        signals = bind([f"ns=2;s=F.{name}" for name in NAMES])
        # asyncua's own structure loader Reads 48 nodes at once, whatever the limit: leave it out here
        conn = connection(
            srv.endpoint, mode=mode, poll_interval=0.2, subscribe_batch_size=1000, load_data_types=False
        )
        async with running(conn, signals) as (_, sink, health):
            await sink.until(lambda: health.up and len(sink.latest()) == len(NAMES), 10, "every value")
            assert all(s.status & 0x80000000 == 0 for s in sink.latest().values())
    finally:
        srv.max_items = srv.max_reads = None
        await srv.set_limits(items=10_000, reads=10_000)
    if mode == "subscribe":
        assert [len(call) for call in srv.item_calls] == [5, 5, 2]
    else:
        assert srv.read_sizes and max(srv.read_sizes) == 4
        assert srv.read_sizes.count(4) >= 4  # the limits, then three Reads of at most four nodes per poll
