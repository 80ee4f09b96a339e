"""The OPC UA connector against real asyncua servers on loopback.

One in-process simulator serves the module; the reconnect test runs the simulator as a separate
process (`python -m connectors.opcua.simulator`) so that it can be killed and started again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from asyncua.client.client import Client
from opcua_helpers import (
    MACHINES,
    Collector,
    bind,
    connection,
    free_port,
    machine_addresses,
    running,
    start_sim_process,
)

from connectors.base import LinkHealth
from connectors.common.simulated_machine import SimulatedMachine
from connectors.opcua import KIND
from connectors.opcua.codec import BAD_CONFIGURATION_ERROR, BAD_NO_MATCH
from connectors.opcua.connector import OpcUaConnector
from connectors.opcua.simulator import OpcUaSimulator
from models.status import (
    BAD_NO_COMMUNICATION,
    BAD_NODE_ID_UNKNOWN,
    BAD_NOT_WRITABLE,
    BAD_TYPE_MISMATCH,
    GOOD,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sim() -> AsyncIterator[OpcUaSimulator]:
    """One in-process simulator with three machines for the module."""
    machines = [SimulatedMachine(name, seed=i) for i, name in enumerate(MACHINES)]
    simulator = OpcUaSimulator(f"opc.tcp://127.0.0.1:{free_port()}/", machines, update_interval=0.2)
    await simulator.start()
    yield simulator
    await simulator.stop()


async def test_subscribe_batches_per_publish(sim: OpcUaSimulator) -> None:
    """Initial values arrive Good in one batch, then one multi-sample batch per publish."""
    signals = bind([*machine_addresses(), "nsu=urn:parklink:demo;s=mill2.Temperature"])
    async with running(connection(sim.endpoint), signals) as (_, sink, health):
        await sink.until(lambda: len(sink.batches) >= 5, 10, "five batches")
        await sink.until(lambda: health.up, 5, "health up")
    first = sink.batches[0]
    assert sorted(s.signal for s in first) == list(range(len(signals)))
    now = time.time()
    for batch in sink.batches:
        for sample in batch:
            assert sample.status == GOOD, sample
            assert now - 30 < sample.source_time <= sample.server_time + 1 < now + 2
    # Each simulator step changes energy and temperature of all three machines at once: a callback
    # per notification would give batches of one.
    assert all(len(batch) >= 3 for batch in sink.batches[1:]), [len(b) for b in sink.batches]
    assert health.samples == sum(len(b) for b in sink.batches)
    assert math.isfinite(health.last_rtt) and 0 < health.last_rtt < 1
    assert health.read_errors == 0 and health.reconnects == 0


async def test_item_failures_are_per_signal(sim: OpcUaSimulator, caplog: pytest.LogCaptureFixture) -> None:
    """Unknown nodes, namespaces, browse paths and groups give one Bad sample each; the rest stream."""
    signals = bind(
        [
            "ns=2;s=mill1.Temperature",
            "ns=2;s=mill1.Nope",
            "nsu=urn:unknown;s=x",
            "i=2256",  # Server/ServerStatus, a structure: a dict
            "ns=2;s=mill2.EnergyKwh",
            "/2:Machines/2:mill2/2:Temperature",
            "/2:Machines/2:mill2/2:Nope",
            "nsu=urn:unknown;/Machines",
            {"address": "ns=2;s=mill3.Temperature", "group": "nope"},
            "nsu=urn:parklink:demo;/Machines/mill3/Identification/SerialNumber",
        ]
    )
    caplog.set_level(logging.WARNING, logger="parklink.opcua")
    async with running(connection(sim.endpoint), signals) as (_, sink, health):
        await sink.until(lambda: len(sink.batches) >= 4, 10, "four batches")
    statuses: dict[int, set[int]] = {}
    for batch in sink.batches:
        for sample in batch:
            statuses.setdefault(sample.signal, set()).add(sample.status)
    assert statuses == {
        0: {GOOD},
        1: {BAD_NODE_ID_UNKNOWN},
        2: {BAD_NODE_ID_UNKNOWN},
        3: {GOOD},
        4: {GOOD},
        5: {GOOD},
        6: {BAD_NO_MATCH},
        7: {BAD_NODE_ID_UNKNOWN},
        8: {BAD_CONFIGURATION_ERROR},
        9: {GOOD},
    }
    latest = sink.latest()
    assert latest[3].value["State"] == 0 and isinstance(latest[3].value["CurrentTime"], float)  # type: ignore[index]
    assert latest[9].value == "SN-00003"
    failures = [s for b in sink.batches for s in b if s.signal in (1, 2, 6, 7, 8)]
    assert len(failures) == 5 and all(s.value is None for s in failures)
    assert health.up
    warnings = [r.getMessage() for r in caplog.records if r.name == "parklink.opcua"]
    assert len(warnings) == 5, warnings  # one line per failing node
    assert any("/2:Machines/2:mill2/2:Nope" in w and "BadNoMatch" in w for w in warnings)
    assert any("group 'nope' is not declared" in w for w in warnings)


async def test_poll_mode(sim: OpcUaSimulator, caplog: pytest.LogCaptureFixture) -> None:
    """Poll mode reads every signal each poll_interval, in chunks, one batch per poll."""
    signals = bind([*machine_addresses(), "ns=2;s=mill1.Nope", "i=2256", "ns=2;s=mill1.Identification.Model"])
    conn = connection(sim.endpoint, mode="poll", poll_interval=0.2, subscribe_batch_size=4)
    caplog.set_level(logging.WARNING, logger="parklink.opcua")
    async with running(conn, signals) as (_, sink, health):
        await sink.until(lambda: len(sink.batches) >= 4, 10, "four polls")
    assert health.up and health.read_errors == 0
    for batch in sink.batches[:4]:
        assert [s.signal for s in batch] == list(range(len(signals)))
        assert all(s.status == GOOD for s in batch[:-3])
        assert [s.status for s in batch[-3:]] == [BAD_NODE_ID_UNKNOWN, GOOD, GOOD]
        assert isinstance(batch[-2].value, dict) and batch[-1].value == "PL-CNC 3X"
    assert health.samples >= 4 * len(signals)
    assert len([r for r in caplog.records if r.name == "parklink.opcua"]) == 1  # not one per poll


async def test_write(sim: OpcUaSimulator) -> None:
    """Writable signals write with the node's type; others are refused without asking the server."""
    signals = bind([("ns=2;s=mill1.TargetSpeed", True), "ns=2;s=mill1.State", ("ns=2;s=mill1.State", True)])
    async with running(connection(sim.endpoint), signals) as (connector, sink, health):
        assert await connector.write(signals[0], 1500) in (GOOD, BAD_NO_COMMUNICATION)  # maybe not up yet
        await sink.until(lambda: health.up, 5, "health up")
        assert await connector.write(signals[0], 1234) == GOOD  # int -> the node's Double
        assert await connector.write(signals[1], 1) == BAD_NOT_WRITABLE
        assert await connector.write(signals[0], "fast") == BAD_TYPE_MISMATCH
        status = await connector.write(signals[2], 1)  # writable here, but not on the server
        assert status != GOOD
        await sink.until(lambda: sink.latest()[0].value == 1234.0, 5, "the new value streamed back")
    async with Client(sim.endpoint) as client:
        assert await client.get_node("ns=2;s=mill1.TargetSpeed").read_value() == 1234.0


async def test_username_password(sim: OpcUaSimulator) -> None:
    """UserName authentication is passed to the server (which accepts anyone)."""
    conn = connection(sim.endpoint, username="operator", password="secret")
    async with running(conn, bind(["ns=2;s=mill1.Temperature"])) as (_, sink, health):
        await sink.until(lambda: health.up and len(sink.batches) >= 1, 5, "data")


async def test_cancel_closes_session(sim: OpcUaSimulator) -> None:
    """Cancelling run() closes the session on the server (not just the socket) within 3 s."""
    sessions = sim.server.iserver._external_sessions  # asyncua internals: the server's live sessions
    before = len(sessions)
    health = LinkHealth("plc", "opcua", "acme")
    sink = Collector()
    task = asyncio.create_task(
        KIND.create(connection(sim.endpoint), bind(machine_addresses()), health).run(sink)
    )
    await sink.until(lambda: len(sink.batches) >= 2, 10, "data")
    assert len(sessions) == before + 1
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 3)
    assert time.monotonic() - started < 3
    # A session with subscriptions outlives a dropped socket; only CloseSession removes it at once.
    await sink.until(lambda: len(sessions) == before, 2, "session closed on the server")


async def test_reconnect_after_server_restart(processes: list[subprocess.Popen[str]]) -> None:
    """Server SIGKILLed: link down, one Bad batch; back on the same port: up within the backoff
    bound, browse paths resolved again, data resumes; no crash."""
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/"
    processes.append(await asyncio.to_thread(start_sim_process, endpoint))
    signals = bind([*machine_addresses(["mill1", "mill2"]), "/2:Machines/2:mill2/2:Temperature"])
    async with running(connection(endpoint), signals) as (_, sink, health):
        await sink.until(lambda: health.up and len(sink.batches) >= 2, 10, "data before the kill")

        killed_at = len(sink.batches)
        processes[0].kill()
        await asyncio.to_thread(processes[0].wait, 5)
        await sink.until(lambda: not health.up, 5, "health down")
        await sink.until(lambda: any(b[0].status != GOOD for b in sink.batches[killed_at:]), 2, "Bad batch")
        down = next(b for b in sink.batches[killed_at:] if b[0].status != GOOD)
        assert sorted(s.signal for s in down) == list(range(len(signals)))
        assert {s.status for s in down} == {BAD_NO_COMMUNICATION}
        assert health.last_error and health.reconnects == 0

        await asyncio.sleep(1.5)  # a few refused connects, backing off
        assert health.read_errors >= 1
        assert sum(1 for b in sink.batches if b[0].status == BAD_NO_COMMUNICATION) == 1  # not per attempt
        restarted_at = len(sink.batches)
        processes.append(await asyncio.to_thread(start_sim_process, endpoint))
        listening = time.monotonic()

        # reconnect_max 1 s (with jitter) + one connect: up within 1 s + a few round trips
        await sink.until(lambda: health.up, 4, "health up again")
        assert time.monotonic() - listening < 4
        await sink.until(lambda: len(sink.batches) > restarted_at + 1, 5, "data again")
        assert health.reconnects == 1
        assert all(s.status == GOOD for b in sink.batches[restarted_at:] for s in b)
        await sink.until(lambda: sink.latest()[len(signals) - 1].status == GOOD, 2, "browse path again")

    # The simulator process itself shuts down cleanly on SIGTERM.
    processes[1].terminate()
    assert await asyncio.to_thread(processes[1].wait, 10) == 0


async def test_hung_server_is_detected(processes: list[subprocess.Popen[str]]) -> None:
    """A SIGSTOPped server (socket open, no answers) is noticed by the watchdog within
    watchdog_interval + timeout; after SIGCONT the link comes back by itself."""
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/"
    proc = await asyncio.to_thread(start_sim_process, endpoint)
    processes.append(proc)
    signals = bind(machine_addresses(["mill1"]))
    conn = connection(endpoint)  # watchdog_interval 1 s, timeout 2 s
    async with running(conn, signals) as (_, sink, health):
        await sink.until(lambda: health.up and len(sink.batches) >= 2, 10, "data before the stop")
        proc.send_signal(signal.SIGSTOP)
        stopped_at, count = time.monotonic(), len(sink.batches)
        await sink.until(lambda: not health.up, 6, "hung server detected")
        assert time.monotonic() - stopped_at < 1.0 + 2.0 + 1.0
        await sink.until(
            lambda: any(b[0].status == BAD_NO_COMMUNICATION for b in sink.batches[count:]), 1, "Bad"
        )
        await asyncio.sleep(1.0)
        proc.send_signal(signal.SIGCONT)
        resumed_at = len(sink.batches)
        await sink.until(lambda: health.up, 10, "up again after SIGCONT")
        await sink.until(lambda: len(sink.batches) > resumed_at + 1, 5, "data again")
        assert sink.batches[-1][0].status == GOOD
        assert health.reconnects == 1


async def test_connect_failures_count_and_retry(tmp_path: Path) -> None:
    """Nobody listening: read_errors grows with each attempt, one Bad batch, run() keeps going."""
    secured = {
        "security_policy": "Basic256Sha256",
        "security_mode": "SignAndEncrypt",
        "certificate": str(tmp_path / "missing.der"),
        "private_key": str(tmp_path / "missing.pem"),
        "pki_dir": str(tmp_path / "pki"),
    }
    conn = connection(
        f"opc.tcp://127.0.0.1:{free_port()}/", reconnect_initial=0.1, reconnect_max=0.2, **secured
    )
    async with running(conn, bind(["ns=2;s=a", "ns=2;s=b"])) as (_, sink, health):
        await sink.until(lambda: health.read_errors >= 3, 5, "three failed connects")
    assert not health.up and health.last_error.startswith("connect failed")
    assert len(sink.batches) == 1 and {s.status for s in sink.batches[0]} == {BAD_NO_COMMUNICATION}


async def test_write_while_down_is_no_communication() -> None:
    """Before any session exists, writes answer BadNoCommunication instead of hanging."""
    signals = bind([("ns=2;s=mill1.TargetSpeed", True)])
    connector = KIND.create(
        connection(f"opc.tcp://127.0.0.1:{free_port()}/"), signals, LinkHealth("p", "opcua", "c")
    )
    assert isinstance(connector, OpcUaConnector)
    assert await connector.write(signals[0], 1.0) == BAD_NO_COMMUNICATION
