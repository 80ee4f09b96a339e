"""Helpers for the Modbus tests: signal builders, a sample collector, simulator processes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from connectors.base import BoundSignal, LinkHealth
from connectors.modbus.config import ModbusConnection, validate_binding
from connectors.modbus.connector import ModbusConnector, create
from models.sample import Sample

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
    "connection",
    "create",
    "free_port",
    "health",
    "running",
    "start_simulator_process",
]
