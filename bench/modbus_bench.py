"""Modbus benchmarks: request planning, throughput against bare pymodbus, poll jitter with dead devices.

    python -m bench.modbus_bench plan
    python -m bench.modbus_bench throughput --seconds 5 --rounds 3
    python -m bench.modbus_bench jitter --jitter-seconds 30
    python -m bench.modbus_bench all            # the three, as in docs/BENCHMARKS.md

`plan`: a seeded map of 2,000 scattered registers (uint16/int16/uint32/float32/float64 in clusters
with small holes, the way device manuals list them) is planned under several limits; the number of
requests is compared with the exact minimum from an independent dynamic programme over the sorted
addresses with the same limits (span ≤ max registers, every hole ≤ max_gap and readable).

`throughput`: one pymodbus server (`bench.modbus_server`, its own process, so its CPU does not mix
with ours) holds the registers; in this process parklink's connector (poll interval ~0, pushing
every batch into `orchestrator.snapshot.Snapshot`) and a bare `AsyncModbusTcpClient` reading the
same blocks take turns (alternating who goes first); registers/s and CPU per 1,000 values, medians
of the rounds, and the median of the per-round ratios.

`jitter`: 50 connections in one event loop, one device each, polled every 1 s: 40 healthy devices
(pymodbus servers in one server process), 4 that accept TCP but never answer, 6 ports where nothing
listens. Reports |actual period - 1 s| of the healthy ones (p50, p99, max) next to a run with only
the 40 healthy ones.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import json
import random
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pymodbus.client import AsyncModbusTcpClient

from connectors.base import BoundSignal, LinkHealth
from connectors.modbus.config import ModbusConnection, validate_binding
from connectors.modbus.connector import ModbusConnector, create
from connectors.modbus.planner import Item, Limits, Readable, plan_requests
from models.sample import Sample
from models.status import GOOD
from orchestrator.snapshot import Snapshot

TYPES = [("uint16", 1)] * 6 + [("int16", 1)] * 2 + [("float32", 2)] * 3 + [("uint32", 2), ("float64", 4)]
Spec = tuple[str, int, int]  # data type, address, registers


# ---- the register map ---------------------------------------------------------------------------


def scattered_map(n: int = 2000, seed: int = 1) -> tuple[list[Spec], list[tuple[int, int]]]:
    """`n` non-overlapping bindings in clusters, and the device's readable ranges (end exclusive):
    each cluster is readable except holes wider than 3 registers, which the device lacks."""
    rng = random.Random(seed)
    specs: list[Spec] = []
    readable: list[tuple[int, int]] = []
    address = 0
    while len(specs) < n:
        address += rng.randint(50, 600)  # to the next block of the device's map
        range_start = address
        for _ in range(min(rng.randint(5, 40), n - len(specs))):
            data_type, width = rng.choice(TYPES)
            specs.append((data_type, address, width))
            gap = rng.choice([0, 0, 0, 0, 0, 1, 2, 3, 5, 8, 12, 20])
            if gap > 3:  # a hole the device does not implement
                readable.append((range_start, address + width))
                range_start = address + width + gap
            address += width + gap
        readable.append((range_start, address))
    if address > 65536:
        raise ValueError("map does not fit 65,536 registers; use fewer bindings")
    return specs, readable


def minimum_requests(
    specs: Sequence[Spec], max_registers: int, max_gap: int, readable: Sequence[tuple[int, int]] | None
) -> int:
    """Exact minimum number of requests, by dynamic programming over the sorted bindings.

    Independent of the planner: dp[i] = fewest requests for the first i bindings; the last request
    carries bindings j..i-1 if their span fits and no hole between them is too wide or unreadable.
    """
    items = sorted((a, a + w) for _, a, w in specs)
    allowed = None if readable is None else {a for s, e in readable for a in range(s, e)}
    n = len(items)
    gap_ok = []
    for (_, end), (start, _) in itertools.pairwise(items):
        hole = range(end, start)
        gap_ok.append(len(hole) <= max_gap and (allowed is None or all(a in allowed for a in hole)))
    dp = [0] + [n + 1] * n
    for i in range(1, n + 1):
        for j in range(i - 1, -1, -1):  # last request = items[j..i-1]
            if items[i - 1][1] - items[j][0] > max_registers:
                break
            dp[i] = min(dp[i], dp[j] + 1)
            if j and not gap_ok[j - 1]:
                break
    return dp[n]


def bind(specs: Sequence[Spec]) -> list[BoundSignal]:
    """BoundSignals for a map (unit 1, holding registers)."""
    return [
        BoundSignal(i, f"bench/{data_type}{i}", data_type, validate_binding({"address": a}, data_type))  # type: ignore[arg-type]
        for i, (data_type, a, _) in enumerate(specs)
    ]


def bench_plan(n: int) -> list[dict[str, Any]]:
    specs, ranges = scattered_map(n)
    items = [Item(i, 1, "holding", a, w) for i, (_, a, w) in enumerate(specs)]
    rows = []
    limits = [
        (125, 10, False),
        (125, 0, False),
        (125, 30, False),
        (16, 10, False),
        (125, 10, True),
        (125, 30, True),
    ]
    for max_registers, max_gap, use_ranges in limits:
        readable = Readable((None, "holding", s, e) for s, e in ranges) if use_ranges else None
        started = time.perf_counter()
        plan = plan_requests(items, Limits(max_registers, 2000, max_gap), readable)
        ms = (time.perf_counter() - started) * 1000
        minimum = minimum_requests(specs, max_registers, max_gap, ranges if use_ranges else None)
        rows.append(
            {
                "bindings": n,
                "max_registers": max_registers,
                "max_gap": max_gap,
                "readable_ranges": len(ranges) if use_ranges else 0,
                "requests": len(plan.requests),
                "minimum": minimum,
                "registers_read": sum(r.count for r in plan.requests),
                "registers_bound": sum(w for *_, w in specs),
                "plan_ms": round(ms, 1),
            }
        )
    return rows


# ---- throughput ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def server_process(devices: int, mute: int = 0) -> AsyncIterator[dict[str, list[int]]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.modbus_server", "--devices", str(devices), "--mute", str(mute),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ports: dict[str, list[int]] = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        yield ports
    finally:
        proc.terminate()
        await proc.wait()


def expected_value(data_type: str, address: int) -> Any:
    """What the bench server's registers (register a holds a) decode to, for a sanity check."""
    if data_type in ("uint16", "int16"):
        v = address & 0xFFFF
        return v - 0x10000 if data_type == "int16" and v >= 0x8000 else v
    if data_type == "uint32":
        return ((address & 0xFFFF) << 16) | ((address + 1) & 0xFFFF)
    return None  # floats: not checked


async def parklink_turn(port: int, signals: list[BoundSignal], seconds: float) -> dict[str, float]:
    """Whole polls between the first batch after warm-up and the last batch before `seconds` end."""
    snapshot = Snapshot(len(signals))
    conn = ModbusConnection.model_validate(
        {"kind": "modbus", "host": "127.0.0.1", "port": port, "poll_interval": 0.0001, "timeout": 2}
    )
    connector: ModbusConnector = create(conn, signals, LinkHealth("bench", "modbus", "bench"))
    per_poll = sum(r.count for r in connector.plan.requests)
    marks: list[tuple[float, float, int]] = []  # (monotonic, process time, samples) at each batch

    def sink(batch: Sequence[Sample]) -> None:
        snapshot.push(batch)
        marks.append((time.monotonic(), time.process_time(), len(batch)))

    task = asyncio.create_task(connector.run(sink))
    try:
        await asyncio.sleep(1.0)  # warm-up
        start = len(marks)
        await asyncio.sleep(seconds)
        end = len(marks) - 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    latest: list[Sample | None] = snapshot.latest
    good = sum(1 for s in latest if s is not None and s.status == GOOD)
    wrong = [
        s.path for s, sample in zip(signals, latest, strict=True)
        if sample is not None and expected_value(s.data_type, s.binding.address) not in (None, sample.value)
    ]  # fmt: skip
    if good != len(signals) or wrong or end - start < 3:
        raise AssertionError(f"parklink: {good}/{len(signals)} Good, wrong values: {wrong[:5]}")
    (t0, cpu0, _), (t1, cpu1, _) = marks[start], marks[end]
    polls, values = end - start, sum(n for *_, n in marks[start + 1 : end + 1])
    return {
        "registers_per_s": polls * per_poll / (t1 - t0),
        "values_per_s": values / (t1 - t0),
        "polls_per_s": polls / (t1 - t0),
        "cpu_ms_per_1000_values": 1e6 * (cpu1 - cpu0) / values,
    }


async def bare_turn(
    port: int, blocks: list[tuple[int, int]], values_per_poll: int, seconds: float
) -> dict[str, float]:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0, reconnect_delay=0)
    await client.connect()
    per_poll = sum(c for _, c in blocks)
    try:
        warm_until = time.monotonic() + 1.0  # the same warm-up as parklink's
        while time.monotonic() < warm_until:
            for address, count in blocks:
                await client.read_holding_registers(address, count=count, device_id=1)
        polls, cpu0, t0 = 0, time.process_time(), time.monotonic()
        deadline = t0 + seconds
        while time.monotonic() < deadline:
            for address, count in blocks:
                rr = await client.read_holding_registers(address, count=count, device_id=1)
                if rr.isError() or len(rr.registers) != count:
                    raise AssertionError(f"bare: bad answer for {address}+{count}")
            polls += 1
        cpu, elapsed = time.process_time() - cpu0, time.monotonic() - t0
    finally:
        client.close()
    return {
        "registers_per_s": polls * per_poll / elapsed,
        "values_per_s": polls * values_per_poll / elapsed,
        "polls_per_s": polls / elapsed,
        "cpu_ms_per_1000_values": 1e6 * cpu / max(polls * values_per_poll, 1),
    }


async def bench_throughput(n: int, seconds: float, rounds: int) -> dict[str, Any]:
    specs, _ = scattered_map(n)
    signals = bind(specs)
    plan = create(
        ModbusConnection.model_validate({"kind": "modbus", "host": "x"}), signals, LinkHealth("", "", "")
    ).plan
    blocks = [(r.address, r.count) for r in plan.requests]
    turns: dict[str, list[dict[str, float]]] = {"parklink": [], "bare": []}
    async with server_process(1) as ports:
        port = ports["devices"][0]
        for n in range(rounds):  # alternate who goes first, so that drift cancels out
            if n % 2:
                turns["bare"].append(await bare_turn(port, blocks, len(signals), seconds))
            turns["parklink"].append(await parklink_turn(port, signals, seconds))
            if not n % 2:
                turns["bare"].append(await bare_turn(port, blocks, len(signals), seconds))
    med = {k: {m: statistics.median(t[m] for t in v) for m in v[0]} for k, v in turns.items()}
    paired = [
        p["registers_per_s"] / b["registers_per_s"]
        for p, b in zip(turns["parklink"], turns["bare"], strict=True)
    ]
    return {
        "bindings": n,
        "requests_per_poll": len(blocks),
        "registers_per_poll": sum(c for _, c in blocks),
        "seconds": seconds,
        "rounds": rounds,
        "median": med,
        "ratio_of_medians": med["parklink"]["registers_per_s"] / med["bare"]["registers_per_s"],
        "ratio_per_round": paired,
        "ratio_median_of_rounds": statistics.median(paired),
        "turns": turns,
    }


# ---- jitter -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _stamp(times: list[float], _batch: Sequence[Sample]) -> None:
    times.append(time.monotonic())


def _deviations_ms(series: Sequence[list[float]], interval: float) -> list[float]:
    out: list[float] = []
    for times in series:
        times = times[2:]  # the first polls of all connections start together
        out += [abs(b - a - interval) * 1000 for a, b in itertools.pairwise(times)]
    return out


async def jitter_run(
    healthy: list[int], mute: list[int], refused: list[int], seconds: float
) -> dict[str, Any]:
    """Poll-start and batch-arrival period deviations of the healthy connections."""
    specs, _ = scattered_map(30, seed=7)  # one machine: 30 registers, a few requests
    starts: list[list[float]] = []
    arrivals: list[list[float]] = []
    connectors: list[ModbusConnector] = []
    tasks = []
    cpu0 = time.process_time()
    for n, port in enumerate(healthy + mute + refused):
        conn = ModbusConnection.model_validate(
            {"kind": "modbus", "host": "127.0.0.1", "port": port, "poll_interval": 1.0}
        )
        connector = create(conn, bind(specs), LinkHealth(f"dev{n}", "modbus", "bench"))
        starts.append([])
        arrivals.append([])
        real_poll = connector._poll

        async def timed_poll(group: Any, real_poll: Any = real_poll, mine: list[float] = starts[-1]) -> Any:
            mine.append(time.monotonic())
            return await real_poll(group)

        connector._poll = timed_poll  # type: ignore[method-assign]
        tasks.append(asyncio.create_task(connector.run(functools.partial(_stamp, arrivals[-1]))))
        connectors.append(connector)
    await asyncio.sleep(seconds)
    cpu = time.process_time() - cpu0
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    k = len(healthy)
    result: dict[str, Any] = {"connections": len(connectors), "healthy": k}
    for name, series in (("start", starts[:k]), ("batch", arrivals[:k])):
        dev = _deviations_ms(series, 1.0)
        result[name] = {
            "periods": len(dev),
            "p50_ms": round(percentile(dev, 0.5), 2),
            "p99_ms": round(percentile(dev, 0.99), 2),
            "max_ms": round(max(dev), 2),
        }
    result["overruns_healthy"] = sum(c.overruns for c in connectors[:k])
    result["healthy_rtt_ms_median"] = round(
        1000 * statistics.median(c.health.last_rtt for c in connectors[:k]), 2
    )
    result["bad_connections_up"] = sum(c.health.up for c in connectors[k:])
    result["bad_batches_per_bad_connection"] = sorted({len(a) for a in arrivals[k:]})
    result["cpu_percent"] = round(100 * cpu / seconds, 1)
    return result


async def bench_jitter(seconds: float) -> dict[str, Any]:
    async with server_process(40, 4) as ports:
        refused = [free_port() for _ in range(6)]
        with_dead = await jitter_run(ports["devices"], ports["mute"], refused, seconds)
        healthy_only = await jitter_run(ports["devices"], [], [], seconds)
    return {"with_10_dead": with_dead, "healthy_only": healthy_only}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.modbus_bench", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["plan", "throughput", "jitter", "all"])
    parser.add_argument("--bindings", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0, help="throughput: seconds per turn")
    parser.add_argument("--jitter-seconds", type=float, default=30.0, help="jitter: seconds per run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    logging_quiet()
    out: dict[str, Any] = {}
    if args.what in ("plan", "all"):
        out["plan"] = bench_plan(args.bindings)
    if args.what in ("throughput", "all"):
        out["throughput"] = asyncio.run(bench_throughput(args.bindings, args.seconds, args.rounds))
    if args.what in ("jitter", "all"):
        out["jitter"] = asyncio.run(bench_jitter(args.jitter_seconds))
    print(json.dumps(out, indent=2))


def logging_quiet() -> None:
    import logging

    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    logging.getLogger("parklink").setLevel(logging.CRITICAL)


if __name__ == "__main__":
    main()
