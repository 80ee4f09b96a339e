"""The connector against real pymodbus servers on loopback: values, batches, faults, writes, cancel."""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from typing import Any

import pytest
from modbus_helpers import (
    MACHINE_SIGNALS,
    Collector,
    all_status,
    bind,
    connection,
    create,
    free_port,
    health,
    running,
    start_simulator_process,
)

from connectors.common.simulated_machine import MachineState, SimulatedMachine
from connectors.modbus.simulator import ModbusSimulator
from models.sample import Sample
from models.status import (
    BAD_DECODING_ERROR,
    BAD_DEVICE_FAILURE,
    BAD_NO_COMMUNICATION,
    BAD_NOT_FOUND,
    BAD_NOT_WRITABLE,
    BAD_OUT_OF_RANGE,
    BAD_TYPE_MISMATCH,
    GOOD,
)

pytestmark = pytest.mark.timeout(30)


def f32(x: float) -> float:
    """x as a float32 holds it."""
    return float(struct.unpack(">f", struct.pack(">f", x))[0])


def by_path(signals: list[Any], batch: list[Sample]) -> dict[str, Sample]:
    """Samples of a batch keyed by signal path."""
    return {signals[s.signal].path: s for s in batch}


async def test_values_match_the_machines(
    simulator: ModbusSimulator, machines: list[SimulatedMachine]
) -> None:
    """Every register type and byte order of the simulator decodes to the machine's value."""
    await simulator.update(time.time() + 600)  # ten simulated minutes: counters, energy, heat
    signals = bind(MACHINE_SIGNALS, units=(1, 2))
    connector = create(connection(simulator.port), signals, health())
    sink = Collector()
    async with running(connector, sink):
        batch = await sink.next()
    samples = by_path(signals, batch)
    assert all(s.status == GOOD for s in batch)
    for unit, m in enumerate(machines, 1):
        v = {name: samples[f"u{unit}/{name}"].value for name, _, _ in MACHINE_SIGNALS}
        assert (v["state"], v["item_state"], v["mode"]) == (
            int(m.state),
            int(m.item_state),
            int(m.operation_mode),
        )
        assert (v["good"], v["scrap"]) == (m.good_count, m.scrap_count)
        assert m.good_count > 0
        assert v["energy"] == f32(m.energy_kwh)
        assert v["temperature"] == pytest.approx(round(m.temperature_c * 10) * 0.1)
        assert v["spindle"] == f32(m.spindle_speed_rpm)
        assert v["running"] is (m.state == MachineState.RUNNING)
        assert v["target_speed"] == 0


async def test_one_batch_per_poll_and_plan_length_requests(simulator: ModbusSimulator) -> None:
    """Each poll sends exactly the plan's requests and pushes one batch with every signal once."""
    signals = bind(MACHINE_SIGNALS, units=(1, 2))
    h = health()
    connector = create(connection(simulator.port, poll_interval=0.1), signals, h)
    # coils, holding 0..30, holding 100, input 0..1 on each of two units
    assert len(connector.plan.requests) == 8
    counters: list[tuple[int, int]] = []
    sink = Collector()

    def recording_sink(batch: Any) -> None:
        counters.append((connector.polls, connector.requests_sent))
        sink(batch)

    started = time.monotonic()
    async with running(connector, recording_sink):
        await asyncio.sleep(0.55)
    elapsed = time.monotonic() - started
    assert 4 <= len(sink.batches) <= elapsed / 0.1 + 1
    for n, (polls, sent) in enumerate(counters, 1):
        assert (polls, sent) == (n, n * 8)
    for batch in sink.batches:
        assert sorted(s.signal for s in batch) == list(range(len(signals)))
    assert h.up and h.samples == sum(len(b) for b in sink.batches) and h.read_errors == 0
    assert 0 < h.last_rtt < 0.1
    assert connector.overruns == 0


async def test_illegal_address_spoils_only_its_request(simulator: ModbusSimulator, caplog: Any) -> None:
    """A register the device lacks: that signal BadNotFound, the others Good, one log line."""
    specs = [*MACHINE_SIGNALS[:3], ("missing", "uint16", {"address": 5000})]
    signals = bind(specs)
    h = health()
    connector = create(connection(simulator.port, poll_interval=0.05), signals, h)
    sink = Collector()
    with caplog.at_level(logging.WARNING, logger="parklink.modbus"):
        async with running(connector, sink):
            for _ in range(4):
                batch = await sink.next()
    samples = by_path(signals, batch)
    assert samples["u1/missing"].status == BAD_NOT_FOUND
    assert samples["u1/missing"].value is None
    assert all(samples[f"u1/{n}"].status == GOOD for n, _, _ in MACHINE_SIGNALS[:3])
    assert h.up and h.read_errors >= 4
    assert len([r for r in caplog.records if r.name == "parklink.modbus"]) == 1  # not once per poll


async def test_failing_unit_spoils_only_its_signals(simulator: ModbusSimulator) -> None:
    """A unit answering 'device failure' (or an absent unit behind a gateway) leaves others Good."""
    signals = bind(MACHINE_SIGNALS[:6], units=(1, 2, 9))  # no machine is unit 9: exception 11
    simulator.fail_units = {2}
    h = health()
    connector = create(connection(simulator.port), signals, h)
    sink = Collector()
    async with running(connector, sink):
        batch = await sink.next()
    for s in batch:
        unit = signals[s.signal].path.split("/")[0]
        expected = {"u1": GOOD, "u2": BAD_DEVICE_FAILURE, "u9": BAD_NO_COMMUNICATION}[unit]
        assert s.status == expected, signals[s.signal].path
    assert h.up


async def test_undecodable_value_spoils_only_its_signal(simulator: ModbusSimulator) -> None:
    """Invalid UTF-8 in a string register: that string Bad, its neighbours in the request Good."""
    await simulator.write("holding", 1, 150, [0xFFFE, 0xFFFF, 42])
    specs = [("name", "string", {"address": 150, "count": 2}), ("next", "uint16", {"address": 152})]
    signals = bind(specs)
    connector = create(connection(simulator.port), signals, health())
    assert len(connector.plan.requests) == 1
    sink = Collector()
    async with running(connector, sink):
        samples = by_path(signals, await sink.next())
    assert samples["u1/name"].status == BAD_DECODING_ERROR
    assert (samples["u1/next"].status, samples["u1/next"].value) == (GOOD, 42)


class _FakeResponse:
    """A response PDU as pymodbus returns it, for malformed-frame cases a server cannot produce."""

    def __init__(
        self,
        registers: list[int] = (),  # type: ignore[assignment]
        bits: list[bool] = (),  # type: ignore[assignment]
        exception_code: int = 0,
        function_code: int = 3,
    ) -> None:
        self.registers, self.bits, self.exception_code = list(registers), list(bits), exception_code
        self.function_code = function_code | (0x80 if exception_code else 0)

    def isError(self) -> bool:  # pymodbus spells it so
        return self.exception_code != 0


@pytest.mark.parametrize(
    ("response", "status"),
    [
        (_FakeResponse(registers=[0x42F6]), BAD_DECODING_ERROR),  # short: 1 of 3 registers
        (_FakeResponse(registers=[1, 2, 3, 4]), BAD_DECODING_ERROR),  # too long is as suspicious
        (_FakeResponse(exception_code=2), BAD_NOT_FOUND),
        (_FakeResponse(exception_code=99), BAD_DEVICE_FAILURE),
        (_FakeResponse(registers=[1, 2, 3], function_code=4), BAD_DECODING_ERROR),  # FC4 answer to FC3
        (_FakeResponse(exception_code=2, function_code=4), BAD_DECODING_ERROR),  # exception of another FC
    ],
)
def test_malformed_response_is_never_decoded(response: _FakeResponse, status: int) -> None:
    """A response with the wrong register count marks the request's signals Bad, no value."""
    signals = bind([("a", "float32", {"address": 0}), ("b", "uint16", {"address": 2})])
    h = health()
    connector = create(connection(1), signals, h)
    (request,) = connector.plan.requests
    batch: list[Sample] = []
    connector._decode(0, request, response, batch)  # type: ignore[arg-type]
    assert [(s.status, s.value) for s in batch] == [(status, None), (status, None)]
    assert h.read_errors == 1


async def test_timeout_marks_everything_bad_then_recovers(simulator: ModbusSimulator) -> None:
    """A device that stops answering: all signals BadNoCommunication, link down; then back up."""
    signals = bind(MACHINE_SIGNALS[:3], units=(1, 2))
    h = health()
    connector = create(connection(simulator.port, timeout=0.2), signals, h)
    sink = Collector()
    async with running(connector, sink):
        await sink.wait_for(all_status(GOOD))
        simulator.response_delay = 1.0
        batch = await sink.wait_for(all_status(BAD_NO_COMMUNICATION))
        assert len(batch) == len(signals)
        assert not h.up and h.last_error
        await asyncio.sleep(0.5)  # reconnects that get no answer must not count as recoveries
        assert h.reconnects == 0
        simulator.response_delay = 0.0
        await sink.wait_for(all_status(GOOD), within=5)
    assert h.up and h.reconnects == 1
    assert sum(all_status(BAD_NO_COMMUNICATION)(b) for b in sink.batches) == 1  # one Bad batch per outage


async def test_server_killed_and_restarted_recovers() -> None:
    """Kill the simulator process: Bad + link down; restart it on the same port: Good, one reconnect."""
    port = free_port()
    proc = await start_simulator_process(port)
    signals = bind(MACHINE_SIGNALS, units=(1, 2))
    h = health()
    connector = create(connection(port), signals, h)
    sink = Collector()
    try:
        async with running(connector, sink):
            await sink.wait_for(all_status(GOOD))
            assert h.up
            proc.kill()
            await proc.wait()
            await sink.wait_for(all_status(BAD_NO_COMMUNICATION))
            assert not h.up
            proc = await start_simulator_process(port)
            started = time.monotonic()
            await sink.wait_for(all_status(GOOD), within=10)
            assert time.monotonic() - started < 10
            assert h.up and h.reconnects == 1
        proc.terminate()  # SIGTERM: the entry point shuts down cleanly
        assert await asyncio.wait_for(proc.wait(), 5) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_unreachable_at_start_then_server_appears(machines: list[SimulatedMachine]) -> None:
    """No server yet: one Bad batch, link down; once it listens: Good, no reconnect counted."""
    port = free_port()
    signals = bind(MACHINE_SIGNALS[:3])
    h = health()
    connector = create(connection(port), signals, h)
    sink = Collector()
    sim = ModbusSimulator("127.0.0.1", port, machines, update_interval=3600)
    async with running(connector, sink):
        await sink.wait_for(all_status(BAD_NO_COMMUNICATION))
        await asyncio.sleep(0.5)
        assert not h.up and h.down_since is not None
        assert len(sink.batches) == 1
        await sim.start()
        try:
            await sink.wait_for(all_status(GOOD))
        finally:
            await sim.stop()
    assert h.reconnects == 0


async def test_writes(simulator: ModbusSimulator) -> None:
    """Writable registers and coils change on the device; everything else is refused with a reason."""
    specs = [
        *MACHINE_SIGNALS,
        ("setpoint", "int16", {"address": 120, "scale": 0.1, "writable": True}),
        ("limit", "float32", {"address": 110, "byte_order": "CDAB", "writable": True}),
        ("label", "string", {"address": 130, "count": 3, "writable": True}),
        ("lamp", "bool", {"table": "coil", "address": 1, "writable": True}),
    ]
    signals = bind(specs) + bind([("ghost", "uint16", {"address": 100, "writable": True})], units=(9,))
    sig = {s.path: s for s in signals}
    connector = create(connection(simulator.port), signals, health())
    assert await connector.write(sig["u1/target_speed"], 5) == BAD_NO_COMMUNICATION  # not connected yet
    sink = Collector()
    async with running(connector, sink):
        await sink.next()
        assert await connector.write(sig["u1/target_speed"], 1234) == GOOD
        assert await simulator.read("holding", 1, 100) == [1234]
        assert await connector.write(sig["u1/setpoint"], -21.5) == GOOD
        assert await simulator.read("holding", 1, 120) == [0xFF29]  # -215
        assert await connector.write(sig["u1/limit"], 1.5) == GOOD  # FC16, word-swapped
        assert await simulator.read("holding", 1, 110, 2) == [0x0000, 0x3FC0]
        assert await connector.write(sig["u1/label"], "OK") == GOOD
        assert await simulator.read("holding", 1, 130, 3) == [0x4F4B, 0, 0]
        assert await connector.write(sig["u1/lamp"], True) == GOOD  # FC5
        assert await simulator.read("coil", 1, 1) == [1]
        assert await connector.write(sig["u1/state"], 1) == BAD_NOT_WRITABLE
        assert await connector.write(sig["u1/target_speed"], "fast") == BAD_TYPE_MISMATCH
        assert await connector.write(sig["u1/target_speed"], 70000) == BAD_OUT_OF_RANGE
        assert await connector.write(sig["u9/ghost"], 1) == BAD_NO_COMMUNICATION  # gateway: no such unit
        assert await simulator.read("holding", 1, 100) == [1234]
        batch = await sink.next()
    assert by_path(signals, batch)["u1/target_speed"].value == 1234


async def test_cancel_during_slow_request_returns_quickly(simulator: ModbusSimulator) -> None:
    """Cancelling while a request is outstanding ends run() at once and closes the client."""
    signals = bind(MACHINE_SIGNALS[:1])
    connector = create(connection(simulator.port, timeout=1.0), signals, health())
    sink = Collector()
    task = asyncio.create_task(connector.run(sink))
    await sink.next()
    simulator.response_delay = 1.5
    await asyncio.sleep(0.3)  # now inside a request that will take 1.5 s
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert time.monotonic() - started < 2
    assert connector._client is None


async def test_cancel_during_backoff_returns_quickly() -> None:
    """Cancelling while waiting to reconnect ends run() at once."""
    connector = create(connection(free_port(), reconnect_initial=10, reconnect_max=10), bind([]), health())
    task = asyncio.create_task(connector.run(Collector()))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert time.monotonic() - started < 2


async def test_overrun_skips_instead_of_stacking(simulator: ModbusSimulator) -> None:
    """Polls slower than the interval are counted and the schedule skips ahead."""
    signals = bind(MACHINE_SIGNALS[:1])
    connector = create(connection(simulator.port, poll_interval=0.05, timeout=1.0), signals, health())
    sink = Collector()
    async with running(connector, sink):
        await sink.next()
        simulator.response_delay = 0.12
        polls_before, started = connector.polls, time.monotonic()
        await asyncio.sleep(0.8)
        polls = connector.polls - polls_before
        elapsed = time.monotonic() - started
    assert connector.overruns >= 3
    assert polls <= elapsed / 0.12 + 1  # back-to-back at most, never a burst of catch-up polls


async def test_failing_sink_does_not_stop_polling(simulator: ModbusSimulator) -> None:
    """An exception in the sink is logged; polling goes on."""
    calls: list[int] = []

    def broken_sink(batch: Any) -> None:
        calls.append(len(batch))
        raise RuntimeError("downstream bug")

    connector = create(connection(simulator.port, poll_interval=0.05), bind(MACHINE_SIGNALS[:2]), health())
    async with running(connector, broken_sink):
        await asyncio.sleep(0.4)
    assert len(calls) >= 3


def test_explain_lists_requests_and_signals() -> None:
    """The integrator's view of the plan names each request and the signals it carries."""
    connector = create(
        connection(1, addressing=1),
        bind([("a", "uint16", {"address": 1}), ("b", "int32", {"address": 3})]),
        health(),
    )
    text = connector.explain()
    assert "1 request(s) per poll" in text
    assert "unit 1 FC3 holding 1..4 (4 registers, 1 unused)" in text
    assert "u1/b" in text


def test_address_zero_with_one_based_addressing_is_reported() -> None:
    """1-based address 0 cannot be read: the signal is listed as not read, others are planned."""
    connector = create(
        connection(1, addressing=1),
        bind([("a", "uint16", {"address": 0}), ("b", "uint16", {"address": 1})]),
        health(),
    )
    assert [r.address for r in connector.plan.requests] == [0]
    assert connector.plan.rejected[0][0] == 0
    assert "not read: u1/a" in connector.explain()


async def test_internal_error_does_not_end_run(simulator: ModbusSimulator, monkeypatch: Any) -> None:
    """An unexpected exception inside a poll is logged; run() reconnects and goes on."""
    signals = bind(MACHINE_SIGNALS[:2])
    h = health()
    connector = create(connection(simulator.port), signals, h)
    real_poll = connector._poll
    calls = 0

    async def flaky_poll(group: Any) -> list[Sample]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("bug")
        return await real_poll(group)

    monkeypatch.setattr(connector, "_poll", flaky_poll)
    sink = Collector()
    async with running(connector, sink) as task:
        await sink.next()
        await sink.wait_for(all_status(GOOD))  # after the failed poll
        assert not task.done()
    assert calls >= 3 and h.up


def test_pymodbus_logging_is_quiet() -> None:
    """Creating a connector silences pymodbus' frame dumps; health and our log report instead."""
    create(connection(1), bind(MACHINE_SIGNALS[:1]), health())
    assert logging.getLogger("pymodbus").level == logging.CRITICAL
