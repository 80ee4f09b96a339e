"""Shared helpers of the OPC UA tests: signals, connections, a collecting sink, simulator processes."""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from connectors.base import BoundSignal, LinkHealth
from connectors.opcua import KIND, OpcUaConnection
from connectors.opcua.connector import OpcUaConnector
from models.assets import DataType
from models.sample import Sample

MACHINES = ("mill1", "mill2", "mill3")
VARIABLES = ("State", "ItemState", "OperationMode", "GoodCount", "ScrapCount", "EnergyKwh", "Temperature")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


Binding = str | tuple[str, bool] | dict[str, Any]


def bind(items: Sequence[Binding], data_type: DataType = "float64") -> list[BoundSignal]:
    """BoundSignals numbered from 0: an address, (address, writable) or a whole binding dict."""
    signals = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            raw: dict[str, Any] = {"address": item}
        elif isinstance(item, tuple):
            raw = {"address": item[0], "writable": item[1]}
        else:
            raw = item
        binding = KIND.validate_binding(raw, data_type)
        path = f"acme/s1/l1/a{index}/{raw['address']}"
        signals.append(BoundSignal(index, path, data_type, binding, bool(raw.get("writable"))))
    return signals


def machine_addresses(machines: Sequence[str] = MACHINES) -> list[Binding]:
    return [f"ns=2;s={m}.{v}" for m in machines for v in VARIABLES]


def connection(endpoint: str, **changes: Any) -> OpcUaConnection:
    raw = {
        "kind": "opcua",
        "endpoint": endpoint,
        "publishing_interval": 100,
        "sampling_interval": 50,
        "timeout": 2,
        "reconnect_initial": 0.2,
        "reconnect_max": 1.0,
        "watchdog_interval": 1.0,
    }
    return OpcUaConnection.model_validate(raw | changes)


class Collector:
    """A sink that keeps every batch, with a way to wait for a condition."""

    def __init__(self) -> None:
        self.batches: list[list[Sample]] = []

    def __call__(self, batch: Sequence[Sample]) -> None:
        self.batches.append(list(batch))

    def latest(self) -> dict[int, Sample]:
        return {s.signal: s for batch in self.batches for s in batch}

    def of(self, signal: int) -> list[Sample]:
        return [s for batch in self.batches for s in batch if s.signal == signal]

    async def until(self, condition: Callable[[], bool], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"not within {within} s: {what}")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(
    conn: OpcUaConnection, signals: list[BoundSignal], health: LinkHealth | None = None
) -> AsyncIterator[tuple[OpcUaConnector, Collector, LinkHealth]]:
    """Run a connector for the duration of the block, then cancel it."""
    health = health or LinkHealth("plc", "opcua", "acme")
    connector = KIND.create(conn, signals, health)
    assert isinstance(connector, OpcUaConnector)
    sink = Collector()
    task = asyncio.create_task(connector.run(sink))
    try:
        yield connector, sink, health
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)


def start_sim_process(endpoint: str, machines: str = "mill1,mill2") -> subprocess.Popen[str]:
    """The simulator as an OS process; returns once it is listening."""
    args = ["--endpoint", endpoint, "--machines", machines, "--update-interval", "0.2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "connectors.opcua.simulator", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    line = proc.stdout.readline() if ready else ""
    if "listening" not in line:
        proc.kill()
        pytest.fail(f"simulator did not start: {line!r}")
    return proc
