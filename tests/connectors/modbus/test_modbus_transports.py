"""The connector over every transport against real pymodbus servers: Modbus TCP, RTU over TCP (a
serial gateway), and RTU on a serial line (a pair of bridged pseudo-terminals)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
from modbus_helpers import (
    MACHINE_SIGNALS,
    Collector,
    all_status,
    bind,
    by_path,
    check_machine_values,
    create,
    health,
    link_for,
    running,
)

from connectors.common.simulated_machine import SimulatedMachine
from connectors.modbus import connector as connector_module
from connectors.modbus.config import ModbusConnection
from connectors.modbus.kind import simulate
from connectors.modbus.serialline import VirtualSerialLine
from connectors.modbus.simulator import ModbusSimulator
from connectors.modbus.transport import request_gap
from models.status import BAD_NO_COMMUNICATION, GOOD

pytestmark = pytest.mark.timeout(30)


async def test_values_match_the_machines(
    any_simulator: ModbusSimulator, machines: list[SimulatedMachine]
) -> None:
    """Every table, type and byte order of two units decodes to the machines' values on every transport."""
    await any_simulator.update(time.time() + 600)
    signals = bind(MACHINE_SIGNALS, units=(1, 2))
    h = health()
    connector = create(link_for(any_simulator), signals, h)
    sink = Collector()
    async with running(connector, sink):
        batch = await sink.next()
    assert sorted(s.signal for s in batch) == list(range(len(signals)))
    check_machine_values(signals, batch, machines)
    assert machines[0].good_count > 0
    assert h.up and h.read_errors == 0 and 0 < h.last_rtt < 0.1


async def test_writes(any_simulator: ModbusSimulator) -> None:
    """FC5, FC6 and FC16 reach the device on every transport."""
    specs = [
        ("target_speed", "uint16", {"address": 100, "writable": True}),
        ("limit", "float32", {"address": 110, "byte_order": "CDAB", "writable": True}),
        ("lamp", "bool", {"table": "coil", "address": 1, "writable": True}),
    ]
    signals = bind(specs, units=(2,))
    sig = {s.path: s for s in signals}
    connector = create(link_for(any_simulator), signals, health())
    sink = Collector()
    async with running(connector, sink):
        await sink.next()
        assert await connector.write(sig["u2/target_speed"], 777) == GOOD
        assert await connector.write(sig["u2/limit"], 1.5) == GOOD
        assert await connector.write(sig["u2/lamp"], True) == GOOD
        assert await any_simulator.read("holding", 2, 100) == [777]
        assert await any_simulator.read("holding", 2, 110, 2) == [0x0000, 0x3FC0]
        assert await any_simulator.read("coil", 2, 1) == [1]
        batch = await sink.next()
    assert by_path(signals, batch)["u2/target_speed"].value == 777


async def test_silent_unit_spoils_only_its_signals_and_rests(
    any_simulator: ModbusSimulator, caplog: Any
) -> None:
    """A unit that never answers (dead RTU slave): its signals Bad, the other unit Good at full rate;
    the dead one is asked again only after a rest, and is back once it answers."""
    any_simulator.silent_units = {2}
    signals = bind(MACHINE_SIGNALS[:3], units=(1, 2))
    h = health()
    conn = link_for(any_simulator, poll_interval=0.05, timeout=0.2, reconnect_initial=0.4, reconnect_max=0.4)
    connector = create(conn, signals, h)
    sink = Collector()
    with caplog.at_level(logging.WARNING, logger="parklink.modbus"):
        async with running(connector, sink):
            await asyncio.sleep(1.5)
            assert connector.silent_units == [2]
            any_simulator.silent_units = set()
            await sink.wait_for(all_status(GOOD), within=3)
    assert h.up and h.reconnects == 0
    assert connector.silent_units == []
    mixed = [b for b in sink.batches if not all_status(GOOD)(b)]
    for batch in mixed[1:]:  # u1 is read in every poll while u2 is Bad
        for s in batch:
            unit = signals[s.signal].path[:2]
            assert s.status == (GOOD if unit == "u1" else BAD_NO_COMMUNICATION), signals[s.signal].path
    # 1.5 s at 0.05 s: with a 0.2 s timeout per try and 0.4 s rests, u2 costs at most ~4 tries
    assert len(mixed) >= 10
    assert h.read_errors <= 5
    messages = [r.getMessage() for r in caplog.records if r.name == "parklink.modbus"]
    assert sum("unit 2 does not answer" in m for m in messages) == 1
    assert sum("unit 2 answers again" in m for m in messages) == 1


async def test_all_units_silent_is_a_link_failure(any_simulator: ModbusSimulator) -> None:
    """If no unit answers (cable cut, gateway dead), the whole connection is Bad once and reconnects."""
    signals = bind(MACHINE_SIGNALS[:3], units=(1, 2))
    h = health()
    connector = create(link_for(any_simulator, timeout=0.2), signals, h)
    sink = Collector()
    async with running(connector, sink):
        await sink.wait_for(all_status(GOOD))
        any_simulator.silent_units = {1, 2}
        batch = await sink.wait_for(all_status(BAD_NO_COMMUNICATION))
        assert len(batch) == len(signals) and not h.up
        await asyncio.sleep(0.6)
        any_simulator.silent_units = set()
        await sink.wait_for(all_status(GOOD), within=5)
    assert h.up and h.reconnects == 1
    assert sum(all_status(BAD_NO_COMMUNICATION)(b) for b in sink.batches) == 1


async def test_unplugged_serial_cable(machines: list[SimulatedMachine]) -> None:
    """RTU: pulling the cable marks everything Bad; plugging it back recovers on the same port."""
    sim = ModbusSimulator("", 0, machines, 3600, transport="rtu")
    await sim.start()
    try:
        assert sim.line is not None
        signals = bind(MACHINE_SIGNALS, units=(1, 2))
        h = health()
        connector = create(link_for(sim, timeout=0.2), signals, h)
        sink = Collector()
        async with running(connector, sink):
            await sink.wait_for(all_status(GOOD))
            sim.line.connected = False
            await sink.wait_for(all_status(BAD_NO_COMMUNICATION))
            assert not h.up
            sim.line.connected = True
            await sink.wait_for(all_status(GOOD), within=5)
        assert h.reconnects == 1
    finally:
        await sim.stop()


async def test_missing_serial_port_is_a_link_failure(tmp_path: Path) -> None:
    """A serial port that does not exist: one Bad batch, link down with the port named, no crash."""
    conn = ModbusConnection.model_validate(
        {
            "kind": "modbus",
            "transport": "rtu",
            "serial_port": str(tmp_path / "ttyUSB9"),
            "reconnect_initial": 0.1,
        }
    )
    h = health()
    connector = create(conn, bind(MACHINE_SIGNALS[:2]), h)
    sink = Collector()
    async with running(connector, sink) as task:
        await sink.wait_for(all_status(BAD_NO_COMMUNICATION))
        await asyncio.sleep(0.3)
        assert not task.done()
    assert not h.up and "ttyUSB9" in h.last_error
    assert len(sink.batches) == 1


async def test_rtu_leaves_three_and_a_half_characters_between_frames(
    machines: list[SimulatedMachine], monkeypatch: Any
) -> None:
    """pymodbus' async serial client does not keep the inter-frame silence; the connector does.

    (Parity N with 2 stop bits: ptys on recent Linux reject some parity settings with EINVAL.)
    """
    sim = ModbusSimulator("", 0, machines, 3600, transport="rtu", baudrate=9600, stopbits=2)
    await sim.start()
    conn = link_for(sim, baudrate=9600, stopbits=2, poll_interval=0.2)
    gap = request_gap(conn)
    assert gap == pytest.approx(3.5 * 11 / 9600)  # 8N2: start + 8 data + 2 stop = 11 bits
    assert request_gap(link_for(sim, baudrate=9600, parity="E")) == pytest.approx(3.5 * 11 / 9600)
    assert request_gap(link_for(sim, baudrate=115200)) == pytest.approx(0.00175)  # fixed above 19200
    assert request_gap(link_for(sim, pause_between_requests=0.01)) == 0.01
    loop = asyncio.get_running_loop()
    spans: list[tuple[float, float]] = []
    real_read = connector_module.read

    async def timed_read(client: Any, req: Any) -> Any:
        started = loop.time()
        try:
            return await real_read(client, req)
        finally:
            spans.append((started, loop.time()))

    monkeypatch.setattr(connector_module, "read", timed_read)
    try:
        connector = create(conn, bind(MACHINE_SIGNALS, units=(1, 2)), health())
        sink = Collector()
        async with running(connector, sink):
            await sink.wait_for(all_status(GOOD))
    finally:
        await sim.stop()
    assert len(spans) >= 8
    silences = [start - end for (_, end), (start, _) in itertools.pairwise(spans)]
    assert min(silences) >= gap * 0.95


async def test_demo_simulates_an_rtu_connection_at_its_serial_port(
    machines: list[SimulatedMachine], tmp_path: Path
) -> None:
    """kind.simulate lays a virtual line whose client end is the configured serial_port (a symlink)."""
    port = tmp_path / "ttyPLC"
    conn = ModbusConnection.model_validate(
        {"kind": "modbus", "transport": "rtu", "serial_port": str(port), "poll_interval": 0.1, "parity": "N"}
    )
    sim = simulate(conn, machines)
    await sim.start()
    try:
        assert port.is_symlink() and os.readlink(port).startswith("/dev/pts/")
        signals = bind(MACHINE_SIGNALS, units=(1, 2))
        connector = create(conn, signals, health())
        sink = Collector()
        async with running(connector, sink):
            batch = await sink.next()
        check_machine_values(signals, batch, machines)
    finally:
        await sim.stop()
    assert not port.exists() and not port.is_symlink()


async def test_virtual_line_refuses_to_replace_a_file(tmp_path: Path) -> None:
    """The symlink never replaces a real file (e.g. a real device node)."""
    path = tmp_path / "ttyS0"
    path.write_text("")
    line = VirtualSerialLine(str(path))
    with pytest.raises(FileExistsError):
        await line.open()
    assert path.read_text() == ""
