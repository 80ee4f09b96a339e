"""Faults, each as small as it is: malformed answers from a hand-written server, Modbus exceptions,
dropped connections, and devices that are down while others are polled."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from modbus_helpers import (
    MACHINE_SIGNALS,
    Collector,
    all_status,
    bind,
    by_path,
    connection,
    create,
    free_port,
    health,
    link_for,
    running,
)
from raw_server import RawModbusServer, coil_value, register_value

from connectors.modbus import connector as connector_module
from connectors.modbus.simulator import ModbusSimulator
from connectors.modbus.transport import StrictHoldingRegisters
from models.sample import Sample
from models.status import (
    BAD_DECODING_ERROR,
    BAD_DEVICE_FAILURE,
    BAD_NO_COMMUNICATION,
    BAD_NOT_FOUND,
    BAD_RESOURCE_UNAVAILABLE,
    BAD_TIMEOUT,
    GOOD,
)

pytestmark = pytest.mark.timeout(30)

REGISTER_SIGNALS = [
    ("a", "uint16", {"address": 10}),
    ("b", "uint16", {"address": 11}),
    ("c", "uint16", {"address": 12}),
]
COIL_SIGNALS = [(f"k{i}", "bool", {"table": "coil", "address": i}) for i in range(10)]
ANSWERED_BADLY = {"short_count", "long_count", "byte_count_lies", "odd_byte_count", "wrong_function"}
ANSWERED_BADLY |= {"exception_of_other_function"}
NO_USABLE_ANSWER = {"wrong_transaction", "wrong_unit", "truncated", "bad_protocol_id", "unknown_function"}
NO_USABLE_ANSWER |= {"garbage", "silent", "bad_crc"}


@pytest.fixture
async def raw_server() -> AsyncIterator[RawModbusServer]:
    server = RawModbusServer()
    yield server
    await server.stop()


def _never_wrong(signals: Any, batches: list[list[Sample]]) -> None:
    """No Good sample in any batch carries a value other than the device's true one."""
    for batch in batches:
        for s in batch:
            if s.status == GOOD:
                b = signals[s.signal].binding
                expected = coil_value(b.address) if b.table == "coil" else register_value(b.address)
                assert s.value == expected, (signals[s.signal].path, s.value)


@pytest.mark.parametrize(
    ("framing", "mode", "specs"),
    [
        *[("tcp", m, REGISTER_SIGNALS) for m in sorted(ANSWERED_BADLY | NO_USABLE_ANSWER - {"bad_crc"})],
        *[
            ("tcp", m, COIL_SIGNALS)
            for m in ("short_count", "long_count", "byte_count_lies", "wrong_function")
        ],
        *[
            ("rtu", m, REGISTER_SIGNALS)
            for m in ("short_count", "wrong_function", "bad_crc", "wrong_unit", "silent")
        ],
    ],
)
async def test_malformed_answers_are_rejected_never_decoded(
    raw_server: RawModbusServer, framing: str, mode: str, specs: Any
) -> None:
    """Each way a frame can be wrong: Bad samples (never a wrong value), no crash; a usable but wrong
    answer keeps the link up (BadDecodingError), no usable answer is a timeout (BadNoCommunication);
    once the device answers properly again, the values come back Good."""
    raw_server.framing, raw_server.mode = framing, mode
    await raw_server.start()
    signals = bind(specs)
    h = health()
    transport = "rtu_over_tcp" if framing == "rtu" else "tcp"
    connector = create(
        connection(raw_server.port, transport=transport, poll_interval=0.05, timeout=0.2), signals, h
    )
    sink = Collector()
    async with running(connector, sink) as task:
        if mode in ANSWERED_BADLY:
            await sink.wait_for(all_status(BAD_DECODING_ERROR))
            await sink.next()
            await sink.wait_for(all_status(BAD_DECODING_ERROR))
            assert h.up and h.reconnects == 0 and h.read_errors >= 2
        else:
            await sink.wait_for(all_status(BAD_NO_COMMUNICATION))
            assert not h.up
        assert not task.done()
        raw_server.mode = "ok"
        await sink.wait_for(all_status(GOOD), within=5)
    _never_wrong(signals, sink.batches)
    assert h.up


async def test_connection_reset_after_each_answer(raw_server: RawModbusServer) -> None:
    """A device that closes the connection after every answer: values arrive, reconnects are counted.

    (With two requests per poll every poll would fail: a poll cut by a lost link reports all Bad.)
    """
    raw_server.close_after_answer = True
    await raw_server.start()
    signals = bind(REGISTER_SIGNALS)
    h = health()
    connector = create(connection(raw_server.port, poll_interval=0.05, timeout=0.2), signals, h)
    sink = Collector()
    async with running(connector, sink) as task:
        await asyncio.sleep(1.0)
        assert not task.done()
    _never_wrong(signals, sink.batches)
    good = [s for b in sink.batches for s in b if s.status == GOOD]
    assert len(good) >= 3 and h.reconnects >= 1


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (2, BAD_NOT_FOUND),  # illegal data address
        (4, BAD_DEVICE_FAILURE),
        (6, BAD_RESOURCE_UNAVAILABLE),  # server device busy
        (10, BAD_NO_COMMUNICATION),  # gateway path unavailable
        (11, BAD_NO_COMMUNICATION),  # gateway target device failed to respond
    ],
)
async def test_exception_spoils_only_that_units_requests(
    simulator: ModbusSimulator, caplog: Any, code: int, status: int
) -> None:
    """A Modbus exception from unit 2: its signals get the mapped status, unit 1 stays Good, the link
    stays up, and each failing request is logged once, not once per poll."""
    simulator.fail_units, simulator.fail_code = {2}, code
    signals = bind(MACHINE_SIGNALS[:3] + MACHINE_SIGNALS[7:8], units=(1, 2))  # 2 requests per unit
    h = health()
    connector = create(connection(simulator.port, poll_interval=0.03), signals, h)
    sink = Collector()
    with caplog.at_level(logging.WARNING, logger="parklink.modbus"):
        async with running(connector, sink):
            for _ in range(5):
                batch = await sink.next()
    for s in batch:
        expected = GOOD if signals[s.signal].path.startswith("u1/") else status
        assert (s.status, s.value is None) == (expected, expected != GOOD), signals[s.signal].path
    assert h.up and h.read_errors >= 10 and h.reconnects == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "parklink.modbus"]
    assert len(lines) == 2 and all(f"exception {code} (" in line for line in lines)


@pytest.mark.parametrize("transport", ["tcp", "rtu_over_tcp"])
async def test_dropped_connections_recover(machines: Any, transport: str) -> None:
    """The device closes the connection, between polls or in the middle of a request: Bad once,
    reconnected with backoff, Good again, one recovery counted per drop."""
    sim = ModbusSimulator("127.0.0.1", 0, machines, 3600, transport=transport)
    await sim.start()
    signals = bind(MACHINE_SIGNALS, units=(1, 2))
    h = health()
    connector = create(link_for(sim, poll_interval=0.05, timeout=0.3), signals, h)
    sink = Collector()
    try:
        async with running(connector, sink):
            await sink.wait_for(all_status(GOOD))
            assert sim.drop_connections() == 1
            await sink.wait_for(all_status(BAD_NO_COMMUNICATION))
            await sink.wait_for(all_status(GOOD))
            assert h.reconnects == 1
            sim.drop_after = 3  # the third request from now is never answered; the connection closes
            await sink.wait_for(all_status(BAD_NO_COMMUNICATION))
            await sink.wait_for(all_status(GOOD))
            assert h.reconnects == 2
    finally:
        await sim.stop()
    assert sum(all_status(BAD_NO_COMMUNICATION)(b) for b in sink.batches) == 2


async def test_down_devices_do_not_slow_other_connections(simulator: ModbusSimulator) -> None:
    """Three connections in one event loop: refused, accepting but silent, healthy. The healthy one
    keeps its poll period while the others time out and back off."""
    silent = RawModbusServer(mode="silent")
    await silent.start()
    fast = dict(poll_interval=0.05, timeout=0.5, reconnect_initial=0.2, reconnect_max=1.0)
    healthy = create(connection(simulator.port, **fast), bind(MACHINE_SIGNALS, units=(1, 2)), health())
    refused = create(connection(free_port(), **fast), bind(MACHINE_SIGNALS), health())
    mute = create(connection(silent.port, **fast), bind(MACHINE_SIGNALS), health())
    sinks = [Collector(), Collector(), Collector()]
    times: list[float] = []

    def healthy_sink(batch: Any) -> None:
        times.append(time.monotonic())
        sinks[0](batch)

    try:
        async with running(healthy, healthy_sink), running(refused, sinks[1]), running(mute, sinks[2]):
            await asyncio.sleep(2.0)
    finally:
        await silent.stop()
    periods = [b - a for a, b in itertools.pairwise(times[5:])]
    assert len(times) >= 35  # 2 s / 0.05 s = 40
    assert max(periods) < 0.05 + 0.05
    assert healthy.overruns == 0
    assert all(all_status(BAD_NO_COMMUNICATION)(b) for b in sinks[1].batches + sinks[2].batches)
    assert len(sinks[1].batches) == len(sinks[2].batches) == 1  # one Bad batch per outage
    assert silent.requests >= 2  # the mute device was asked again after backoff


async def test_healthy_unit_behind_gateway_keeps_its_rate(simulator: ModbusSimulator) -> None:
    """A gateway with one dead unit (timeouts): the live unit is still read every poll."""
    simulator.silent_units = {2}
    signals = bind(MACHINE_SIGNALS[:3], units=(1, 2))
    connector = create(
        connection(simulator.port, poll_interval=0.05, timeout=0.3, reconnect_initial=1, reconnect_max=1),
        signals,
        health(),
    )
    sink = Collector()
    async with running(connector, sink):
        await asyncio.sleep(1.2)
    # one try of unit 2 costs 0.3 s; it rests 1 s, so about one try in 1.2 s besides the first
    u1 = [by_path(signals, b)["u1/state"] for b in sink.batches]
    assert len(u1) >= 12 and all(s.status == GOOD for s in u1)


async def test_library_hang_is_bounded(simulator: ModbusSimulator, monkeypatch: Any) -> None:
    """If pymodbus ever hung on a request, the poll guard ends it: Bad, link down, reconnect."""
    real_read = connector_module.read
    hang = True

    async def hanging_read(client: Any, req: Any) -> Any:
        if hang:
            await asyncio.Event().wait()  # never set: pymodbus' own timeout is not running
        return await real_read(client, req)

    monkeypatch.setattr(connector_module, "read", hanging_read)
    signals = bind(MACHINE_SIGNALS[:1])
    h = health()
    connector = create(connection(simulator.port, timeout=0.2), signals, h)
    sink = Collector()
    async with running(connector, sink):
        batch = await sink.wait_for(all_status(BAD_NO_COMMUNICATION), within=5)
        assert "not done after" in h.last_error
        hang = False
        await sink.wait_for(all_status(GOOD), within=5)
    assert len(batch) == 1


async def test_cancel_survives_a_swallowed_cancellation(monkeypatch: Any) -> None:
    """Python 3.11's wait_for (inside pymodbus) can swallow a cancel when the answer is already there;
    the connector notices the pending cancel and stops anyway."""

    swallowed = 0
    inside = asyncio.Event()

    async def swallowing_read(client: Any, req: Any) -> Any:
        nonlocal swallowed
        inside.set()
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:  # what 3.11's wait_for does in that race
            swallowed += 1
        response = StrictHoldingRegisters()
        response.registers = [3] * req.count
        return response

    class AlwaysThere:
        connected = True

        async def connect(self) -> bool:
            return True

        def close(self) -> None:
            pass

    monkeypatch.setattr(connector_module, "read", swallowing_read)
    monkeypatch.setattr(connector_module, "open_client", lambda conn: AlwaysThere())
    connector = create(connection(1, poll_interval=0.0001), bind(MACHINE_SIGNALS[:1]), health())
    sink = Collector()
    task = asyncio.create_task(connector.run(sink))
    await sink.next()
    inside.clear()
    await inside.wait()
    task.cancel()  # reaches the poll inside swallowing_read
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert connector._client is None
    assert swallowed == 1


async def test_write_to_a_silent_unit_times_out(simulator: ModbusSimulator) -> None:
    """A write that gets no answer is BadTimeout; the polls of the other unit go on."""
    simulator.silent_units = {2}
    signals = bind([("speed", "uint16", {"address": 100, "writable": True})], units=(1, 2))
    connector = create(connection(simulator.port, timeout=0.2), signals, health())
    sink = Collector()
    async with running(connector, sink):
        await sink.next()
        assert await connector.write(signals[1], 5) == BAD_TIMEOUT
        assert await connector.write(signals[0], 5) == GOOD
        assert by_path(signals, await sink.next())["u1/speed"].status == GOOD
