"""Modbus devices that restart, hang or answer slowly, again and again: campaign rows.

tests/connectors/modbus already has each fault once (a killed and restarted simulator process,
dropped connections, a silent gateway, a device slower than the timeout); here each is repeated and
counted, and the slow device is tried on both sides of the timeout. Garbage answers are the
property test in test_modbus_malformed.py.

What "lost" counts: a Modbus counter is read as a total, so an outage delays data but loses none.
After each recovery the test waits for the device's current count; lost is what the device counted
that parklink's last Good value lacks at the end (0), or, where no outage is expected, the polls that
did not come back all Good.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest

from connectors.base import BoundSignal, LinkHealth
from connectors.common.simulated_machine import SimulatedMachine
from connectors.modbus.connector import ModbusConnector
from connectors.modbus.simulator import ModbusSimulator
from models.sample import Sample
from models.status import BAD_NO_COMMUNICATION, GOOD
from tests.conftest import Recorder
from tests.connectors.modbus.modbus_helpers import (
    MACHINE_SIGNALS,
    Collector,
    all_status,
    bind,
    by_path,
    connection,
    create,
    free_port,
    health,
    running,
)

pytestmark = pytest.mark.timeout(60)

HOLDING = MACHINE_SIGNALS[:7]  # state .. temperature: one FC3 request of holding registers 0-30
TIMEOUT = 0.8  # s; half of it leaves a slow answer 0.4 s to spare on a loaded machine


@dataclass
class Device:
    """One simulated machine served on a fixed port, and a connector polling it."""

    machine: SimulatedMachine
    port: int
    sim: ModbusSimulator
    signals: list[BoundSignal]
    health: LinkHealth
    connector: ModbusConnector
    sink: Collector
    held: set[tuple[int, int]] = field(default_factory=set)  # (state, good count) the device has shown
    start: tuple[int, int] = (0, 0)  # (reconnects, all-Bad batches) when the test began

    def since_start(self) -> tuple[int, int]:
        """(reconnects, all-Bad batches) since the test began (the setup may have had an outage)."""
        return self.health.reconnects - self.start[0], self.bad_batches() - self.start[1]

    def wrote(self) -> None:
        """Note the machine's (state, good count) as the device's registers now hold it."""
        self.held.add((int(self.machine.state), self.machine.good_count))

    def never_wrong(self) -> int:
        """Good batches whose (state, good count) the device never held (0: no late or stray answer
        was taken for a value)."""
        wrong = 0
        for batch in self.sink.batches:
            s = by_path(self.signals, batch)
            if all_status(GOOD)(batch):
                pair = (s["u1/state"].value, s["u1/good"].value)
                wrong += pair not in self.held
        return wrong

    def current(self, batch: Sequence[Sample]) -> bool:
        """The batch is all Good and shows the machine as it is now."""
        s = by_path(self.signals, batch)
        return all_status(GOOD)(list(batch)) and (s["u1/state"].value, s["u1/good"].value) == (
            int(self.machine.state),
            self.machine.good_count,
        )

    async def caught_up(self, within: float = 5.0) -> list[Sample]:
        """The first batch from now on that shows the machine as it is."""
        return await self.sink.wait_for(self.current, within)

    async def restart(self, ran_for: float) -> None:
        """Stop the device, let the machine run on for `ran_for` seconds unseen, start it again."""
        await self.sim.stop()
        await self.sink.wait_for(all_status(BAD_NO_COMMUNICATION), within=3)
        assert not self.health.up
        self.machine.step(time.time() + ran_for)
        self.sim = ModbusSimulator("127.0.0.1", self.port, [self.machine], update_interval=3600)
        self.held.add((0, 0))  # a restarted device serves zeros until its program writes the registers
        await self.sim.start()
        self.wrote()

    def bad_batches(self) -> int:
        return sum(all_status(BAD_NO_COMMUNICATION)(b) for b in self.sink.batches)

    def counted_but_not_seen(self, batch: Sequence[Sample]) -> int:
        value = by_path(self.signals, batch)["u1/good"].value
        assert isinstance(value, int)
        return self.machine.good_count - value


@pytest.fixture
async def device() -> AsyncIterator[Device]:
    """A running machine (it only moves when a test steps it) and a running connector; poll 50 ms."""
    machine = SimulatedMachine("press1", seed=11)
    machine.step(time.time())
    machine.step(time.time() + 300)  # some parts made already
    port = free_port()
    sim = ModbusSimulator("127.0.0.1", port, [machine], update_interval=3600)
    await sim.start()
    signals = bind(HOLDING)
    h = health()
    conn = connection(port, poll_interval=0.05, timeout=TIMEOUT, reconnect_initial=0.05, reconnect_max=0.2)
    d = Device(machine, port, sim, signals, h, create(conn, signals, h), Collector())
    d.wrote()
    try:
        async with running(d.connector, d.sink):
            await d.caught_up()
            d.start = (h.reconnects, d.bad_batches())
            yield d
    finally:
        await d.sim.stop()


async def test_device_restarts(device: Device, record: Recorder) -> None:
    """The device goes away and comes back 5 times (the machine working on meanwhile): one Bad batch
    per outage, one reconnect per recovery, and the count parklink shows is the device's again."""
    restarts, recovered, lost = 5, 0, 0
    try:
        for n in range(restarts):
            await device.restart(ran_for=600 * (n + 1))
            batch = await device.caught_up()
            recovered += 1
        lost = device.counted_but_not_seen(batch)
    finally:
        record("modbus device restarts", restarts, recovered, lost, "lost = counted by the device, not shown")
    assert device.since_start() == (restarts, restarts) and device.health.up
    assert lost == 0 and device.never_wrong() == 0


async def test_device_hangs(device: Device, record: Recorder) -> None:
    """The device keeps accepting TCP connections and reading requests but never answers, 3 times
    for about a second: Bad and down once per hang (reconnects that get no answer are not recoveries),
    then values again, without a restart of anything."""
    hangs, recovered, lost = 3, 0, 0
    try:
        for n in range(hangs):
            device.sim.silent_units = {1}
            await device.sink.wait_for(all_status(BAD_NO_COMMUNICATION), within=3)
            requests = device.sim.requests
            await asyncio.sleep(1.0)
            assert not device.health.up and device.since_start()[0] == n
            assert device.sim.requests > requests  # it was asked again (and again said nothing)
            device.sim.silent_units = set()
            device.machine.step(time.time() + 600 * (n + 1))
            await device.sim.update(0)  # writes the stepped machine's registers
            device.wrote()
            batch = await device.caught_up()
            recovered += 1
        lost = device.counted_but_not_seen(batch)
    finally:
        record("modbus device hangs (TCP open, no answer)", hangs, recovered, lost, "about 1 s each")
    assert device.since_start() == (hangs, hangs)
    assert lost == 0 and device.never_wrong() == 0


async def test_slow_device_below_the_timeout(device: Device, record: Recorder) -> None:
    """Every answer takes half the timeout: each poll is slow but Good, the link never drops."""
    device.sim.response_delay = 0.5 * TIMEOUT
    errors, start = device.health.read_errors, len(device.sink.batches)
    await asyncio.sleep(3.0)
    polls = device.sink.batches[start + 1 :]  # the first may have been sent before the delay
    good = sum(device.current(b) for b in polls)
    record(
        "modbus device slow, 0.5× timeout", len(polls), good, len(polls) - good, "lost = polls not all Good"
    )
    assert len(polls) >= 4  # about 7: one per 0.4 s answer
    assert good == len(polls)
    assert device.health.up and device.health.read_errors == errors and device.since_start() == (0, 0)
    assert device.never_wrong() == 0


async def test_slow_device_beyond_the_timeout(device: Device, record: Recorder) -> None:
    """Answers take twice the timeout, twice for a second: Bad and down within the timeout and a poll,
    late answers never taken for values; when the device is fast again, values come back."""
    episodes, recovered, lost = 2, 0, 0
    try:
        for n in range(episodes):
            device.sim.response_delay = 2 * TIMEOUT
            started = time.monotonic()
            await device.sink.wait_for(all_status(BAD_NO_COMMUNICATION), within=3)
            assert time.monotonic() - started < TIMEOUT + 1.0  # a timeout, a poll interval, slack
            assert not device.health.up
            await asyncio.sleep(1.0)
            device.sim.response_delay = 0.0
            device.machine.step(time.time() + 600 * (n + 1))
            await device.sim.update(0)
            device.wrote()
            batch = await device.caught_up()
            recovered += 1
        lost = device.counted_but_not_seen(batch)
    finally:
        record("modbus device slow, 2× timeout", episodes, recovered, lost, "about 1 s each")
    assert device.since_start() == (episodes, episodes)
    assert lost == 0 and device.never_wrong() == 0


async def test_no_value_the_device_never_held(device: Device) -> None:
    """The check the tests above end with can fail: a value the device never held is caught."""
    assert device.never_wrong() == 0
    device.held.clear()
    assert device.never_wrong() > 0
