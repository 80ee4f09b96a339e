"""Poll groups, value maps, readable ranges, pause after connect, and the explained schedule."""

from __future__ import annotations

import asyncio
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
    health,
    running,
)
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from connectors.common.simulated_machine import MachineState, SimulatedMachine
from connectors.modbus.faults import quiet_pymodbus
from connectors.modbus.simulator import ModbusSimulator
from models.status import (
    BAD_NOT_FOUND,
    BAD_NOT_SUPPORTED,
    BAD_OUT_OF_RANGE,
    GOOD,
    UNCERTAIN,
)

pytestmark = pytest.mark.timeout(30)

STATE_NAMES = {0: "planned_stop", 1: "down", 2: "idle", 3: "running", 4: "setup"}


async def test_poll_groups_have_their_own_schedules_on_one_connection(simulator: ModbusSimulator) -> None:
    """A fast and a slow group: each batch holds one group's signals, at that group's rate, and both
    go through the same single TCP connection."""
    specs = [
        ("state", "uint16", {"address": 0, "poll_group": "fast"}),
        ("running", "bool", {"table": "coil", "address": 0, "poll_group": "fast"}),
        ("good", "uint32", {"address": 10}),  # default group: poll_interval
        ("energy", "float32", {"address": 20, "poll_group": "slow"}),
    ]
    signals = bind(specs)
    conn = connection(simulator.port, poll_interval=0.2, poll_groups={"fast": 0.05, "slow": 0.5})
    connector = create(conn, signals, health())
    assert [(g.name, g.interval, len(g.requests)) for g in connector.groups] == [
        ("default", 0.2, 1),
        ("fast", 0.05, 2),
        ("slow", 0.5, 1),
    ]
    sink = Collector()
    async with running(connector, sink):
        await asyncio.sleep(1.05)
        assert simulator._server is not None and len(simulator._server.active_connections) == 1
    kinds = {"fast": 0, "default": 0, "slow": 0}
    for batch in sink.batches:
        paths = sorted(signals[s.signal].path for s in batch)
        kind = {"u1/running,u1/state": "fast", "u1/good": "default", "u1/energy": "slow"}[",".join(paths)]
        kinds[kind] += 1
        assert all(s.status == GOOD for s in batch)
    # 1.05 s: fast (0.05 s) ~21 polls, default (0.2 s) ~6, slow (0.5 s) 3; slack for a busy machine
    assert kinds["fast"] >= 12 and 3 <= kinds["default"] <= 7 and 2 <= kinds["slow"] <= 3
    assert kinds["fast"] > 2 * kinds["default"]
    assert connector.polls == sum(kinds.values())
    assert {g.name: g.polls for g in connector.groups} == kinds


async def test_unknown_poll_group_is_reported_not_read(simulator: ModbusSimulator) -> None:
    """A binding naming a group the connection does not have: never read, BadNotSupported, explained."""
    signals = bind([("a", "uint16", {"address": 0}), ("b", "uint16", {"address": 1, "poll_group": "fsat"})])
    connector = create(connection(simulator.port, poll_groups={"fast": 0.1}), signals, health())
    assert (
        "not read: u1/b: poll group 'fsat' is not in the connection's poll_groups (fast)"
        in connector.explain()
    )
    sink = Collector()
    async with running(connector, sink):
        samples = by_path(signals, await sink.next())
    assert (samples["u1/a"].status, samples["u1/b"].status) == (GOOD, BAD_NOT_SUPPORTED)


async def test_overruns_are_counted_per_group(simulator: ModbusSimulator) -> None:
    """A slow device overruns the fast group only; the count is exported per group and in total."""
    simulator.response_delay = 0.06
    signals = bind([("a", "uint16", {"address": 0, "poll_group": "fast"}), ("b", "uint16", {"address": 50})])
    connector = create(
        connection(simulator.port, poll_interval=1.0, poll_groups={"fast": 0.05}, timeout=1.0),
        signals,
        health(),
    )
    async with running(connector, Collector()):
        await asyncio.sleep(0.6)
    groups = {g.name: g for g in connector.groups}
    assert groups["fast"].overruns >= 3 and groups["default"].overruns == 0
    assert connector.overruns == groups["fast"].overruns


async def test_value_map_gives_state_names(
    simulator: ModbusSimulator, machines: list[SimulatedMachine]
) -> None:
    """A mapped state arrives as its name; an unmapped raw value keeps its number, flagged Uncertain."""
    await simulator.write("holding", 1, 150, [9])
    specs = [
        ("state", "uint16", {"address": 0, "value_map": STATE_NAMES}),
        ("odd", "uint16", {"address": 150, "value_map": {0: "off", 1: "on"}}),
        ("running", "bool", {"table": "coil", "address": 0, "value_map": {0: "stopped", 1: "turning"}}),
    ]
    signals = bind(specs)
    connector = create(connection(simulator.port), signals, health())
    sink = Collector()
    async with running(connector, sink):
        samples = by_path(signals, await sink.next())
    m = machines[0]
    assert (samples["u1/state"].status, samples["u1/state"].value) == (GOOD, STATE_NAMES[int(m.state)])
    assert (samples["u1/odd"].status, samples["u1/odd"].value) == (UNCERTAIN, 9)
    expected = "turning" if m.state == MachineState.RUNNING else "stopped"
    assert (samples["u1/running"].status, samples["u1/running"].value) == (GOOD, expected)


async def test_value_map_writes_take_names(simulator: ModbusSimulator) -> None:
    """Writing a state name writes its number; an unknown name is refused; a raw number still works."""
    signals = bind([("mode", "uint16", {"address": 100, "writable": True, "value_map": STATE_NAMES})])
    connector = create(connection(simulator.port), signals, health())
    sink = Collector()
    async with running(connector, sink):
        await sink.next()
        assert await connector.write(signals[0], "setup") == GOOD
        assert await simulator.read("holding", 1, 100) == [4]
        assert await connector.write(signals[0], "warp") == BAD_OUT_OF_RANGE
        assert await connector.write(signals[0], 2) == GOOD
        assert await simulator.read("holding", 1, 100) == [2]
        assert by_path(signals, await sink.next())["u1/mode"].value == "idle"


@pytest.fixture
async def holey_device() -> AsyncIterator[int]:
    """A device whose holding registers 0-9 and 20-29 exist; 10-19 answer 'illegal data address'."""
    quiet_pymodbus()
    blocks = [
        SimData(0, count=10, values=7, datatype=DataType.REGISTERS),
        SimData(20, count=10, values=8, datatype=DataType.REGISTERS),
    ]
    device = SimDevice(id=1, simdata=blocks)  # one block for every table; only holding is read
    server = ModbusTcpServer([device], address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    yield int(server.transport.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
    server.close()


@pytest.mark.parametrize("addressing", [0, 1])
async def test_readable_ranges_keep_requests_off_missing_registers(
    holey_device: int, addressing: int
) -> None:
    """Bridging 8..21 reads the missing 10-19 and spoils both values; with the device's readable
    ranges declared, the planner reads each range on its own and both are Good."""
    signals = bind(
        [("a", "uint16", {"address": 8 + addressing}), ("b", "uint16", {"address": 21 + addressing})]
    )
    bridged = create(connection(holey_device, max_gap=20, addressing=addressing), signals, health())
    assert len(bridged.plan.requests) == 1
    ranges = [
        {"start": 0 + addressing, "end": 9 + addressing},
        {"start": 20 + addressing, "end": 29 + addressing},
    ]
    careful = create(
        connection(holey_device, max_gap=20, addressing=addressing, readable_ranges=ranges), signals, health()
    )
    assert [(r.address, r.count) for r in careful.plan.requests] == [(8, 1), (21, 1)]
    for connector, expected in ((bridged, [BAD_NOT_FOUND] * 2), (careful, [GOOD, GOOD])):
        sink = Collector()
        async with running(connector, sink):
            batch = await sink.next()
        assert [s.status for s in sorted(batch)] == expected
    assert [s.value for s in sorted(batch)] == [7, 8]


def test_bindings_outside_readable_ranges_are_noted() -> None:
    """A binding outside every declared range is still read, on its own, and explained."""
    signals = bind([("a", "uint16", {"address": 5}), ("b", "uint16", {"address": 50})])
    connector = create(connection(1, readable_ranges=[{"start": 0, "end": 9}]), signals, health())
    assert len(connector.plan.requests) == 2
    assert "note: u1/b lies outside the readable ranges of unit 1 holding" in connector.explain()


async def test_pause_after_connect(simulator: ModbusSimulator) -> None:
    """Devices that need a moment after the TCP connect get it before the first request."""
    connector = create(
        connection(simulator.port, pause_after_connect=0.3), bind(MACHINE_SIGNALS[:1]), health()
    )
    sink = Collector()
    started = time.monotonic()
    async with running(connector, sink):
        await sink.wait_for(all_status(GOOD))
    assert time.monotonic() - started >= 0.3


def test_explain_shows_groups_and_link() -> None:
    """The schedule for integrators: each group with its interval and requests, then the link."""
    specs = [("a", "uint16", {"address": 0}), ("b", "uint16", {"address": 5, "poll_group": "fast"})]
    conn = connection(1502, poll_groups={"fast": 0.2}, pause_between_requests=0.01)
    text = create(conn, bind(specs), health()).explain()
    lines = text.splitlines()
    assert lines[0] == "2 request(s) in 2 poll groups for 2 binding(s) on 1 unit(s)"
    assert "poll group default, every 0.1 s: 1 request(s) per poll for 1 binding(s) on 1 unit(s)" in text
    assert "poll group fast, every 0.2 s: 1 request(s) per poll" in text
    assert lines[-1] == "link: tcp 127.0.0.1:1502, timeout 0.5 s, 10 ms between requests"


def test_rtu_rejects_unit_ids_no_serial_device_can_have(tmp_path: Any) -> None:
    """Unit 0 (broadcast) and 248-255 cannot answer on a serial line: not read, with the reason."""
    from connectors.modbus.config import ModbusConnection

    conn = ModbusConnection.model_validate(
        {"kind": "modbus", "transport": "rtu", "serial_port": "/dev/ttyS9"}
    )
    signals = bind([("a", "uint16", {"address": 0})], units=(0, 1, 255))
    connector = create(conn, signals, health())
    assert {r.unit_id for r in connector.plan.requests} == {1}
    assert sorted(k for k, _ in connector.plan.rejected) == [0, 2]
    assert "unit id 0 cannot answer on a serial line" in connector.explain()
