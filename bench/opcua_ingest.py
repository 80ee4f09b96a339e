"""OPC UA ingest: samples/s from N changing variables into parklink's snapshot vs a bare asyncua client.

`python -m bench.opcua_ingest --nodes 10000 --seconds 10 --rounds 2`

One asyncua server process changes every variable as fast as it can (at most every 100 ms). Each
contender runs in a fresh process of its own (so that memory compares), one after the other,
subscribing to all nodes (publishing interval 100 ms, queue size 1):
- `bare-raw`: asyncua's Subscription with `publish_callback` replaced by a loop over the raw
  MonitoredItems that reads each value (the cheapest path asyncua offers, no Sample built);
- `bare-handler`: asyncua's documented callback handler (`datachange_notification`);
- `parklink`: the OPC UA connector (`connectors/opcua`) pushing batches into a `Snapshot`.
Each turn measures the time from connecting until every node's first value arrived ("subscribe"),
the RSS growth per node from after its imports to after the warm-up (2 s), then counts values and the
process's CPU time for `--seconds`. The server's CPU is in its own process and does not count.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.common.subscription import Subscription

WARMUP = 2.0
CONTENDERS = ("bare-raw", "bare-handler", "parklink")


@dataclass
class Turn:
    contender: str
    values_per_second: float
    cpu_seconds_per_1000: float
    subscribe_seconds: float
    rss_mb_start: float  # after the contender's imports, before it builds anything per node
    rss_mb_before: float  # before connecting (parklink: its config objects for N signals are built)
    rss_mb_after: float  # after every initial value and the warm-up


class Counter:
    def __init__(self) -> None:
        self.values = 0


def rss_mb() -> float:
    """Resident set size of this process now (not the peak), MB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


async def measure(
    contender: str,
    nodes: int,
    seconds: float,
    counter: Counter,
    start: Callable[[], Awaitable[None]],
    stop: Callable[[], Awaitable[None]],
    rss_start: float,
) -> Turn:
    gc.collect()
    before = rss_mb()
    t0 = time.monotonic()
    await start()
    while counter.values < nodes:  # the initial value of every node: the subscription is complete
        await asyncio.sleep(0.01)
        if time.monotonic() - t0 > 300:
            raise TimeoutError(f"{contender} did not receive {nodes} initial values within 300 s")
    subscribe_seconds = time.monotonic() - t0
    await asyncio.sleep(WARMUP)
    gc.collect()
    after = rss_mb()
    print("MEASURING", file=sys.stderr, flush=True)  # bench.profile_hot_path attaches py-spy now
    counter.values = 0
    cpu0, t1 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    values, cpu, elapsed = counter.values, time.process_time() - cpu0, time.monotonic() - t1
    await stop()
    per_1000 = 1000 * cpu / max(values, 1)
    return Turn(contender, values / elapsed, per_1000, subscribe_seconds, rss_start, before, after)


def node_ids(nodes: int) -> list[str]:
    return [f"ns=2;s=Bench.T{i:05d}" for i in range(nodes)]


class RawSubscription(Subscription):
    """asyncua's Subscription with the per-notification delivery replaced by a counting loop."""

    def __init__(self, client: Client, counter: Counter) -> None:
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=100,
            RequestedLifetimeCount=10000,
            RequestedMaxKeepAliveCount=50,
            MaxNotificationsPerPublish=0,
            PublishingEnabled=True,
            Priority=0,
        )
        super().__init__(client.uaclient.session, params, handler=None, queue_maxsize=1)
        self.counter = counter

    async def publish_callback(self, publish_result: ua.PublishResult) -> None:
        for notification in publish_result.NotificationMessage.NotificationData or ():
            for item in getattr(notification, "MonitoredItems", ()):
                _ = item.Value.Value.Value  # touch the value, as any consumer must
                self.counter.values += 1


async def bare_turn(endpoint: str, nodes: int, seconds: float, raw: bool) -> Turn:
    gc.collect()
    rss_start = rss_mb()
    client = Client(endpoint, timeout=30, watchdog_intervall=10.0)
    counter = Counter()

    class Handler:
        def datachange_notification(self, node: Any, value: Any, data: Any) -> None:
            counter.values += 1

    async def start() -> None:
        await client.connect()
        if raw:
            sub: Subscription = RawSubscription(client, counter)
            await sub.init()
        else:
            sub = await client.create_subscription(100, Handler(), queue_maxsize=0)
        targets: list[Node] = [client.get_node(n) for n in node_ids(nodes)]
        await sub.subscribe_data_change(targets, queuesize=1, sampling_interval=ua.Double(100))

    async def stop() -> None:
        await client.disconnect()

    return await measure(
        "bare-raw" if raw else "bare-handler", nodes, seconds, counter, start, stop, rss_start
    )


async def parklink_turn(endpoint: str, nodes: int, seconds: float) -> Turn:
    from connectors.base import BoundSignal, LinkHealth
    from connectors.opcua.kind import KIND as OPCUA
    from models.sample import Sample
    from orchestrator.snapshot import Snapshot

    gc.collect()
    rss_start = rss_mb()
    conn = OPCUA.connection_model.model_validate(
        {
            "kind": "opcua",
            "endpoint": endpoint,
            "publishing_interval": 100,
            "sampling_interval": 100,
            "timeout": 30,
            "watchdog_interval": 10,
        }
    )
    signals = [
        BoundSignal(i, f"bench/{i}", "float64", OPCUA.validate_binding({"address": n}, "float64"))
        for i, n in enumerate(node_ids(nodes))
    ]
    health = LinkHealth("bench", "opcua", "bench")
    snapshot = Snapshot(nodes)
    counter = Counter()

    def sink(batch: Sequence[Sample]) -> None:
        snapshot.push(batch)
        counter.values += len(batch)

    connector = OPCUA.create(conn, signals, health)
    task: asyncio.Task[None] | None = None

    async def start() -> None:
        nonlocal task
        task = asyncio.create_task(connector.run(sink))

    async def stop() -> None:
        assert task is not None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return await measure("parklink", nodes, seconds, counter, start, stop, rss_start)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def one_turn(contender: str, endpoint: str, nodes: int, seconds: float) -> Turn:
    if contender == "parklink":
        return await parklink_turn(endpoint, nodes, seconds)
    return await bare_turn(endpoint, nodes, seconds, raw=contender == "bare-raw")


async def run(nodes: int, seconds: float, rounds: int, contenders: Sequence[str] = CONTENDERS) -> list[Turn]:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.opcua_server",
        "--port",
        str(port),
        "--nodes",
        str(nodes),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        line = await asyncio.wait_for(server.stdout.readline(), timeout=300)
        assert line.strip() == b"READY", line
        endpoint = f"opc.tcp://127.0.0.1:{port}/bench/"
        turns: list[Turn] = []
        for _ in range(rounds):
            for contender in contenders:
                child = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bench.opcua_ingest",
                    "--turn",
                    contender,
                    "--endpoint",
                    endpoint,
                    "--nodes",
                    str(nodes),
                    "--seconds",
                    str(seconds),
                    stdout=asyncio.subprocess.PIPE,
                )
                out, _ = await child.communicate()
                if child.returncode != 0:
                    raise RuntimeError(f"{contender} turn failed ({child.returncode})")
                turns.append(Turn(**json.loads(out)))
        return turns
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=10)


def summarise(turns: list[Turn], nodes: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in CONTENDERS:
        mine = [t for t in turns if t.contender == name]
        if not mine:
            continue
        out[name] = {
            "values_per_second": statistics.median(t.values_per_second for t in mine),
            "cpu_ms_per_1000_values": statistics.median(t.cpu_seconds_per_1000 for t in mine) * 1000,
            "subscribe_seconds": statistics.median(t.subscribe_seconds for t in mine),
            "rss_mb_imports": statistics.median(t.rss_mb_start for t in mine),
            "rss_mb_after_subscribe": statistics.median(t.rss_mb_after for t in mine),
            # everything the N nodes cost: config objects, session, items, latest values
            "rss_kb_per_node": statistics.median(
                (t.rss_mb_after - t.rss_mb_start) * 1000 / nodes for t in mine
            ),
            "rss_kb_per_node_connecting": statistics.median(
                (t.rss_mb_after - t.rss_mb_before) * 1000 / nodes for t in mine
            ),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help="comma-separated subset")
    parser.add_argument("--turn", choices=CONTENDERS, help=argparse.SUPPRESS)  # child process: one turn
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.turn:
        turn = asyncio.run(one_turn(args.turn, args.endpoint, args.nodes, args.seconds))
        print(json.dumps(asdict(turn)))
        return
    contenders = [c for c in args.contenders.split(",") if c]
    turns = asyncio.run(run(args.nodes, args.seconds, args.rounds, contenders))
    summary = summarise(turns, args.nodes)
    if {"bare-raw", "bare-handler", "parklink"} <= set(summary):
        raw, handler, ours = summary["bare-raw"], summary["bare-handler"], summary["parklink"]
        cpu = "cpu_ms_per_1000_values"
        summary["ratios"] = {
            "throughput_vs_bare_raw": ours["values_per_second"] / raw["values_per_second"],
            "throughput_vs_bare_handler": ours["values_per_second"] / handler["values_per_second"],
            "cpu_per_value_vs_bare_raw": ours[cpu] / raw[cpu],
            "cpu_per_value_vs_bare_handler": ours[cpu] / handler[cpu],
            "subscribe_time_vs_bare_raw": ours["subscribe_seconds"] / raw["subscribe_seconds"],
            "rss_per_node_vs_bare_raw": ours["rss_kb_per_node"] / raw["rss_kb_per_node"],
        }
        # The server's pace drifts with the machine's load: ratios of turns run back to back
        # (same round) are steadier than ratios of medians.
        rounds = list(zip(*(iter(turns),) * len(contenders), strict=True))
        pairs = [
            ({t.contender: t for t in group}["parklink"], {t.contender: t for t in group}["bare-raw"])
            for group in rounds
        ]
        summary["paired_ratios_median"] = {
            "throughput_vs_bare_raw": statistics.median(
                p.values_per_second / r.values_per_second for p, r in pairs
            ),
            "cpu_per_value_vs_bare_raw": statistics.median(
                p.cpu_seconds_per_1000 / r.cpu_seconds_per_1000 for p, r in pairs
            ),
        }
    print(
        json.dumps({"nodes": args.nodes, "turns": [asdict(t) for t in turns], "summary": summary}, indent=2)
    )


if __name__ == "__main__":
    main()
