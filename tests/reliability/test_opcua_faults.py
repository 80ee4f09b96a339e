"""OPC UA servers that are slow, hang, answer garbage or restart, again and again: campaign rows.

tests/connectors/opcua has a SIGKILLed and restarted server process and a SIGSTOPped one, once each.
Here, in one process: a proxy (tcp_proxy.DelayProxy) makes the simulator answer at half and at twice
the request timeout, or not at all while keeping the connection open; a fake server answers the
connector's Hello with garbage; the simulator is stopped and started on its endpoint three times.
The server that drops sessions is test_opcua_session_drops.py.

What "lost" counts: after each recovery the test waits until parklink shows the machine's current
good count (a total, so an outage delays it but loses nothing); lost is what the machine counted that
parklink's last value lacks at the end (0); where no outage is expected, the batches that were not Good.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from asyncua import ua

from connectors.base import LinkHealth
from connectors.common.simulated_machine import SimulatedMachine
from connectors.opcua.codec import make_node_id
from connectors.opcua.config import OpcUaConnection
from connectors.opcua.connector import OpcUaConnector
from connectors.opcua.simulator import OpcUaSimulator
from models.status import BAD_NO_COMMUNICATION, GOOD
from tests.conftest import Recorder
from tests.connectors.opcua.opcua_helpers import Collector, bind, connection, free_port, running
from tests.reliability.tcp_proxy import DelayProxy

pytestmark = [pytest.mark.timeout(60), pytest.mark.asyncio(loop_scope="module")]

# s per request; the watchdog probes as often (see test_slow_server_below_the_timeout)
TIMEOUT = 1.0
VARIABLES = ("GoodCount", "State", "TargetSpeed")  # TargetSpeed: the test's ticker, +1 every 0.1 s
GOOD_COUNT = 0  # the signal index of GoodCount


def fast_link(endpoint: str) -> OpcUaConnection:
    return connection(
        endpoint,
        timeout=TIMEOUT,
        watchdog_interval=TIMEOUT,
        reconnect_initial=0.1,
        reconnect_max=0.3,
        load_data_types=False,
    )


@dataclass
class Server:
    """The module's simulated machine and its OPC UA server."""

    machine: SimulatedMachine
    port: int
    sim: OpcUaSimulator

    async def tick(self) -> None:
        """Count TargetSpeed up every 0.1 s, so that data always flows."""
        node = make_node_id("mill1.TargetSpeed", 2)
        for n in itertools.count():
            await asyncio.sleep(0.1)
            with contextlib.suppress(Exception):  # keep ticking whatever a test does to the server
                value = ua.DataValue(ua.Variant(float(n), ua.VariantType.Double))
                await self.sim.server.write_attribute_value(node, value)

    async def stop(self) -> None:
        """The server goes away: listener and connections closed, every session gone."""
        await self.sim.server.stop()

    async def start(self) -> None:
        """The server is back on its endpoint (same address space, as a restarted PLC's)."""
        await self.sim.server.start()


@dataclass
class Plant:
    """The server, a proxy in front of it, a connector through the proxy."""

    server: Server
    proxy: DelayProxy
    connector: OpcUaConnector
    sink: Collector
    health: LinkHealth
    start: tuple[int, int] = (0, 0)  # (reconnects, all-Bad batches) when the test began

    def since_start(self) -> tuple[int, int]:
        """(reconnects, all-Bad batches) since the test began (the setup may have had an outage)."""
        return self.health.reconnects - self.start[0], self.bad_batches() - self.start[1]

    def good_count(self) -> int | None:
        sample = self.sink.latest().get(GOOD_COUNT)
        return sample.value if sample is not None and sample.status == GOOD else None  # type: ignore[return-value]

    async def caught_up(self, within: float = 10.0) -> None:
        """Up, and the machine's good count as it is now has arrived Good."""
        machine = self.server.machine
        await self.sink.until(
            lambda: self.health.up and self.good_count() == machine.good_count, within, "caught up"
        )

    def lost(self) -> int:
        value = self.good_count()
        assert value is not None
        return self.server.machine.good_count - value

    def bad_batches(self) -> int:
        return sum(1 for b in self.sink.batches if {s.status for s in b} == {BAD_NO_COMMUNICATION})

    async def outage(self, start: int) -> None:
        """Wait until the link is found down and its all-Bad batch pushed (the `start`-th and later)."""
        await self.sink.until(lambda: not self.health.up, 2 * TIMEOUT + 2, "link found down")
        await self.sink.until(lambda: self.bad_batches() > start, 1, "all-Bad batch")


async def start_sim(port: int, machine: SimulatedMachine) -> OpcUaSimulator:
    """The simulator on `port`, its machine moving every 0.1 s (asyncua takes about 2 s to start one)."""
    sim = OpcUaSimulator(f"opc.tcp://127.0.0.1:{port}/", [machine], update_interval=0.1)
    await sim.start()
    return sim


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[Server]:
    machine = SimulatedMachine("mill1", seed=5)
    port = free_port()
    s = Server(machine, port, await start_sim(port, machine))
    ticker = asyncio.create_task(s.tick())
    yield s
    ticker.cancel()
    await asyncio.wait([ticker])
    await s.sim.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def plant(server: Server) -> AsyncIterator[Plant]:
    """A proxy in front of the server and a connector through it, caught up with the machine."""
    proxy = DelayProxy(server.port)
    await proxy.start()
    signals = bind([f"ns=2;s=mill1.{v}" for v in VARIABLES])
    try:
        async with running(fast_link(f"opc.tcp://127.0.0.1:{proxy.port}/"), signals) as (
            connector,
            sink,
            health,
        ):
            p = Plant(server, proxy, connector, sink, health)
            await p.caught_up()
            p.start = (health.reconnects, p.bad_batches())
            yield p
    finally:
        await proxy.stop()


async def test_slow_server_below_the_timeout(plant: Plant, record: Recorder) -> None:
    """Every answer takes half the timeout for 3 s: values keep coming Good, the link never drops.

    (The watchdog interval is the timeout here: asyncua's own watchdog gives its probe only
    min(watchdog_interval, session timeout / 2), so with a shorter watchdog interval a server
    answering within the timeout but slower than the interval is taken for dead.)"""
    plant.proxy.delay = 0.5 * TIMEOUT
    start, ups = len(plant.sink.batches), []
    for _ in range(60):
        ups.append(plant.health.up)
        await asyncio.sleep(0.05)
    batches = plant.sink.batches[start:]
    good = sum(all(s.status == GOOD for s in b) for b in batches)
    record(
        "opcua server slow, 0.5× timeout", len(batches), good, len(batches) - good, "lost = batches not Good"
    )
    assert len(batches) >= 4 and good == len(batches)  # one Publish in flight: about one per delay
    assert all(ups) and plant.since_start() == (0, 0)
    assert plant.health.last_rtt >= 0.5 * TIMEOUT  # the watchdog's probe went through the slow link


async def test_slow_server_beyond_the_timeout(plant: Plant, record: Recorder) -> None:
    """Answers take twice the timeout, twice: down and all Bad within watchdog interval + timeout,
    reconnect attempts time out; fast again: up, and the machine's count arrives."""
    episodes, recovered, lost = 2, 0, 0
    try:
        for n in range(episodes):
            plant.proxy.delay = 2 * TIMEOUT
            started, bad = time.monotonic(), plant.bad_batches()
            await plant.outage(bad)
            assert time.monotonic() - started < TIMEOUT + TIMEOUT + 1.0
            await asyncio.sleep(1.0)
            assert not plant.health.up and plant.since_start()[0] == n
            plant.proxy.delay = 0.0
            await plant.caught_up()
            recovered += 1
        lost = plant.lost()
    finally:
        record("opcua server slow, 2× timeout", episodes, recovered, lost, "about 1 s each")
    assert plant.since_start() == (episodes, episodes)
    assert lost == 0


async def test_server_hangs(plant: Plant, record: Recorder) -> None:
    """The server's side goes silent with the TCP connection open (and new connections are accepted
    but never answered), twice for about 2.5 s: found down within watchdog interval + timeout, back
    by itself."""
    hangs, recovered, lost = 2, 0, 0
    try:
        for n in range(hangs):
            plant.proxy.hold = True
            started, bad, connections = time.monotonic(), plant.bad_batches(), plant.proxy.connections
            await plant.outage(bad)
            assert time.monotonic() - started < TIMEOUT + TIMEOUT + 1.0
            # after closing the dead session (up to 2 s), it connects again: accepted, never answered
            await plant.sink.until(lambda: plant.proxy.connections > connections, 5, "a new attempt")  # noqa: B023
            await asyncio.sleep(0.5)
            assert not plant.health.up and plant.since_start()[0] == n
            plant.proxy.hold = False
            await plant.caught_up()
            recovered += 1
        lost = plant.lost()
    finally:
        record("opcua server hangs (TCP open, no answer)", hangs, recovered, lost, "about 2.5 s each")
    assert plant.since_start() == (hangs, hangs)
    assert lost == 0


async def test_server_restarts(plant: Plant, record: Recorder) -> None:
    """The server stops and starts again on its endpoint 3 times (the machine running on): each time
    down with one all-Bad batch, then a new session with its subscription, and the current count.
    (asyncua's Server.stop and start: listener, connections, sessions and subscriptions go and
    come back; the address space stays, as a restarted PLC's does. A killed and restarted
    simulator process is tests/connectors/opcua.)"""
    restarts, recovered, lost = 3, 0, 0
    try:
        for _ in range(restarts):
            bad = plant.bad_batches()
            await plant.server.stop()
            await plant.outage(bad)
            plant.server.machine.step(time.time() + 600)  # the machine ran on meanwhile
            await plant.server.start()
            await plant.caught_up()
            recovered += 1
        lost = plant.lost()
    finally:
        record("opcua server restarts", restarts, recovered, lost, "server stopped and started in-process")
    assert plant.since_start() == (restarts, restarts)
    assert lost == 0


def _ack(receive: int, send: int, max_message: int = 0, chunks: int = 0) -> bytes:
    """An OPC UA TCP Acknowledge (OPC 10000-6 §7.1.2.4)."""
    return b"ACKF" + struct.pack("<IIIIII", 28, 0, receive, send, max_message, chunks)


_rng = random.Random(8)
GARBAGE: list[tuple[str, bytes, bytes | None]] = [
    # (what, answer to the Hello, answer to the next message or None to close after the first)
    ("random bytes", _rng.randbytes(200), None),
    ("zeros, connection kept open", bytes(64), b""),
    ("an HTTP answer", b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", None),
    ("ACK claiming 4 GiB", b"ACKF" + struct.pack("<I", 0xFFFFFFFF) + _rng.randbytes(20), b""),
    ("ERR with a garbage reason", b"ERRF" + struct.pack("<II", 40, 0x80010000) + _rng.randbytes(32), None),
    ("ACK with zero buffer sizes", _ack(0, 0), _rng.randbytes(100)),
    ("valid ACK, garbage to OpenSecureChannel", _ack(65536, 65536), _rng.randbytes(300)),
    (
        "valid ACK, OPN header with a garbage body",
        _ack(65536, 65536),
        b"OPNF" + struct.pack("<I", 60) + bytes(52),
    ),
]


class GarbageServer:
    """Accepts OPC UA TCP connections and answers each with the next entry of GARBAGE."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answered: list[str] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        what, first, then = GARBAGE[len(self.answered) % len(GARBAGE)]
        self.answered.append(what)
        self._writers.add(writer)
        try:
            await reader.read(65536)  # the Hello
            writer.write(first)
            await writer.drain()
            if then is not None:
                await reader.read(65536)
                writer.write(then)
                await writer.drain()
                await reader.read(65536)  # until the client gives up
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()


async def test_server_answers_garbage(server: Server, record: Recorder) -> None:
    """A server that answers each connect with something that is not OPC UA (8 kinds, each at least
    once): every attempt fails cleanly within the timeout (a counted read error, a reason, one all-Bad
    batch for the whole time), and when a real server takes the port, the link comes up."""
    port = free_port()
    garbage = GarbageServer(port)
    await garbage.start()
    signals = bind([f"ns=2;s=mill1.{v}" for v in VARIABLES])
    tried = survived = 0
    real: DelayProxy | None = None
    try:
        async with running(fast_link(f"opc.tcp://127.0.0.1:{port}/"), signals) as (_, sink, health):
            await sink.until(lambda: len(garbage.answered) > len(GARBAGE), 25, "every garbage answer tried")
            tried = len(garbage.answered) - 1  # attempts that ended (the last one may still be going)
            survived = min(tried, health.read_errors)  # each ended in a counted, failed connect
            await garbage.stop()
            assert health.read_errors >= tried and not health.up
            assert health.last_error.startswith("connect failed")
            assert len(sink.batches) == 1 and {s.status for s in sink.batches[0]} == {BAD_NO_COMMUNICATION}
            real = DelayProxy(server.port, port=port)  # the real server now answers on that port
            await real.start()
            await sink.until(lambda: health.up and len(sink.batches) >= 3, 10, "values from the real server")
            assert all(s.status == GOOD for b in sink.batches[1:] for s in b)
    finally:
        record(
            "opcua server answers garbage", tried, survived, 0, f"{len(GARBAGE)} kinds; then a real server"
        )
        if real is not None:
            await real.stop()
    assert set(garbage.answered) == {what for what, _, _ in GARBAGE}
    assert survived == tried and health.reconnects == 0  # the first success is no recovery
