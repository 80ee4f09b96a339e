"""Fixtures for the Modbus tests: two simulated machines served by an in-process simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.common.simulated_machine import SimulatedMachine
from connectors.modbus.simulator import ModbusSimulator


@pytest.fixture
def machines() -> list[SimulatedMachine]:
    """Two machines with fixed seeds."""
    return [SimulatedMachine("press1", seed=1), SimulatedMachine("press2", seed=2)]


@pytest.fixture
async def simulator(machines: list[SimulatedMachine]) -> AsyncIterator[ModbusSimulator]:
    """An in-process simulator on a free port; the machines only move when a test calls update()."""
    sim = ModbusSimulator("127.0.0.1", 0, machines, update_interval=3600)
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture(params=["tcp", "rtu_over_tcp", "rtu"])
async def any_simulator(
    request: pytest.FixtureRequest, machines: list[SimulatedMachine]
) -> AsyncIterator[ModbusSimulator]:
    """The simulator over each transport in turn: Modbus TCP, RTU over TCP, RTU on a virtual serial line."""
    sim = ModbusSimulator("127.0.0.1", 0, machines, update_interval=3600, transport=request.param)
    await sim.start()
    yield sim
    await sim.stop()
