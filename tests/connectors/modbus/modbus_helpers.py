"""Helpers for the Modbus tests: signal builders, a sample collector, simulator processes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from connectors.base import BoundSignal, LinkHealth
from connectors.common.simulated_machine import MachineState, SimulatedMachine
from connectors.modbus.config import ModbusConnection, validate_binding
from connectors.modbus.connector import ModbusConnector, create
from connectors.modbus.simulator import ModbusSimulator
from models.sample import Sample
from models.status import GOOD

# The simulator's register map (see connectors/modbus/README.md), as (name, data type, binding).
MACHINE_SIGNALS: list[tuple[str, str, dict[str, Any]]] = [
    ("state", "uint16", {"address": 0}),
    ("item_state", "uint16", {"address": 1}),
    ("mode", "uint16", {"address": 2}),
    ("good", "uint32", {"address": 10}),
    ("scrap", "uint32", {"address": 12}),
    ("energy", "float32", {"address": 20}),
    ("temperature", "int16", {"address": 30, "scale": 0.1}),
    ("spindle", "float32", {"table": "input", "address": 0, "byte_order": "CDAB"}),
    ("running", "bool", {"table": "coil", "address": 0}),
    ("target_speed", "uint16", {"address": 100, "writable": True}),
]


def bind(specs: Sequence[tuple[str, str, dict[str, Any]]], units: Sequence[int] = (1,)) -> list[BoundSignal]:
    """BoundSignals for every spec on every unit; paths are 'u<unit>/<name>'."""
    signals: list[BoundSignal] = []
    for unit in units:
        for name, data_type, raw in specs:
            binding = validate_binding({"unit_id": unit, **raw}, data_type)  # type: ignore[arg-type]
            signals.append(BoundSignal(len(signals), f"u{unit}/{name}", data_type, binding, binding.writable))  # type: ignore[arg-type]
    return signals


def connection(port: int, **overrides: Any) -> ModbusConnection:
    """A loopback connection with fast polling and reconnects."""
    fields: dict[str, Any] = {
        "kind": "modbus",
        "host": "127.0.0.1",
        "port": port,
        "poll_interval": 0.1,
        "timeout": 0.5,
        "reconnect_initial": 0.1,
        "reconnect_max": 0.5,
    }
    return ModbusConnection.model_validate({**fields, **overrides})


def link_for(sim: ModbusSimulator, **overrides: Any) -> ModbusConnection:
    """A connection to a running simulator, over its transport, with fast polling and reconnects."""
    if sim.transport != "rtu":
        return connection(sim.port, transport=sim.transport, **overrides)
    fields: dict[str, Any] = {
        "kind": "modbus",
        "transport": "rtu",
        "serial_port": sim.serial_port,
        "baudrate": 115200,
        "parity": "N",
        "poll_interval": 0.1,
        "timeout": 0.3,
        "reconnect_initial": 0.1,
        "reconnect_max": 0.5,
    }
    return ModbusConnection.model_validate({**fields, **overrides})


def f32(x: float) -> float:
    """x as a float32 holds it."""
    return float(struct.unpack(">f", struct.pack(">f", x))[0])


def by_path(signals: Sequence[BoundSignal], batch: Sequence[Sample]) -> dict[str, Sample]:
    """Samples of a batch keyed by signal path."""
    return {signals[s.signal].path: s for s in batch}


def check_machine_values(
    signals: Sequence[BoundSignal], batch: Sequence[Sample], machines: Sequence[SimulatedMachine]
) -> None:
    """Every MACHINE_SIGNALS sample of every unit is Good and equals its machine's value."""
    samples = by_path(signals, batch)
    assert all(s.status == GOOD for s in batch)
    for unit, m in enumerate(machines, 1):
        if f"u{unit}/state" not in samples:
            continue
        v = {name: samples[f"u{unit}/{name}"].value for name, _, _ in MACHINE_SIGNALS}
        assert (v["state"], v["item_state"], v["mode"]) == (
            int(m.state),
            int(m.item_state),
            int(m.operation_mode),
        )
        assert (v["good"], v["scrap"]) == (m.good_count, m.scrap_count)
        assert v["energy"] == f32(m.energy_kwh)
        assert abs(v["temperature"] - round(m.temperature_c * 10) * 0.1) < 1e-9  # type: ignore[operator]
        assert v["spindle"] == f32(m.spindle_speed_rpm)
        assert v["running"] is (m.state == MachineState.RUNNING)


def health() -> LinkHealth:
    """A fresh health record."""
    return LinkHealth("plc1", "modbus", "acme")


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Collector:
    """A sink that keeps every batch and lets a test wait for one that matches."""

    def __init__(self) -> None:
        self.batches: list[list[Sample]] = []
        self._changed = asyncio.Event()

    def __call__(self, batch: Sequence[Sample]) -> None:
        self.batches.append(list(batch))
        self._changed.set()

    async def wait_for(self, predicate: Callable[[list[Sample]], bool], within: float = 5.0) -> list[Sample]:
        """The first batch from now on (or already received, after `start`) that matches."""
        seen = len(self.batches)
        async with asyncio.timeout(within):
            while True:
                for batch in self.batches[seen:]:
                    if predicate(batch):
                        return batch
                seen = len(self.batches)
                self._changed.clear()
                await self._changed.wait()

    async def next(self, within: float = 5.0) -> list[Sample]:
        """The next batch."""
        return await self.wait_for(lambda _: True, within)


def all_status(status: int) -> Callable[[list[Sample]], bool]:
    """Predicate: every sample of the batch has this status."""
    return lambda batch: bool(batch) and all(s.status == status for s in batch)


@contextlib.asynccontextmanager
async def running(
    connector: ModbusConnector, sink: Callable[[Sequence[Sample]], None]
) -> AsyncIterator[asyncio.Task[None]]:
    """Run the connector for the duration of the block, then cancel it (and require it to end)."""
    task = asyncio.create_task(connector.run(sink))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 2.0)


async def start_simulator_process(port: int) -> asyncio.subprocess.Process:
    """`python -m connectors.modbus.simulator` on `port`, once it says it listens."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "connectors.modbus.simulator",
        "--port",
        str(port),
        "--machines",
        "press1,press2",
        "--seed",
        "3",
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 10)
    assert b"listening" in line, line
    return proc


__all__ = [
    "MACHINE_SIGNALS",
    "Collector",
    "all_status",
    "bind",
    "by_path",
    "check_machine_values",
    "connection",
    "create",
    "f32",
    "free_port",
    "health",
    "link_for",
    "running",
    "start_simulator_process",
]
