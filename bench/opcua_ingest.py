"""OPC UA ingest: samples/s from N changing variables into parklink's snapshot vs a bare asyncua client.

`python -m bench.opcua_ingest --nodes 10000 --seconds 10 --rounds 2`

One asyncua server process changes every variable as fast as it can (at most every 100 ms); in this
process, contenders take turns subscribing to all nodes (publishing interval 100 ms, queue size 1):
- `bare-raw`: asyncua's Subscription with `publish_callback` replaced by a loop over the raw
  MonitoredItems that reads each value (the cheapest path asyncua offers, no Sample built);
- `bare-handler`: asyncua's documented callback handler (`datachange_notification`);
- `parklink`: the OPC UA connector (`connectors/opcua`) pushing batches into a `Snapshot`.
Each turn warms up for 2 s, then counts values and this process's CPU time for `--seconds`.
The server's CPU is in the other process and does not count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from asyncua import Client, ua
from asyncua.common.subscription import Subscription

from connectors.base import BoundSignal, LinkHealth
from connectors.opcua.kind import KIND as OPCUA
from models.sample import Sample
from orchestrator.snapshot import Snapshot

WARMUP = 2.0


@dataclass
class Turn:
    contender: str
    values_per_second: float
    cpu_seconds_per_1000: float
    subscribe_seconds: float


class Counter:
    def __init__(self) -> None:
        self.values = 0


async def measure(
    contender: str,
    seconds: float,
    counter: Counter,
    start: Callable[[], Awaitable[float]],
    stop: Callable[[], Awaitable[None]],
) -> Turn:
    subscribe_seconds = await start()
    await asyncio.sleep(WARMUP)
    counter.values = 0
    cpu0, t0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    values, cpu, elapsed = counter.values, time.process_time() - cpu0, time.monotonic() - t0
    await stop()
    return Turn(contender, values / elapsed, 1000 * cpu / max(values, 1), subscribe_seconds)


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
    client = Client(endpoint, timeout=30, watchdog_intervall=10.0)
    counter = Counter()

    class Handler:
        def datachange_notification(self, node: Any, value: Any, data: Any) -> None:
            counter.values += 1

    async def start() -> float:
        await client.connect()
        if raw:
            sub: Subscription = RawSubscription(client, counter)
            await sub.init()
        else:
            sub = await client.create_subscription(100, Handler(), queue_maxsize=0)
        t0 = time.monotonic()
        await sub.subscribe_data_change(
            [client.get_node(n) for n in node_ids(nodes)], queuesize=1, sampling_interval=100
        )
        return time.monotonic() - t0

    async def stop() -> None:
        await client.disconnect()

    return await measure("bare-raw" if raw else "bare-handler", seconds, counter, start, stop)


async def parklink_turn(endpoint: str, nodes: int, seconds: float) -> Turn:
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

    async def start() -> float:
        nonlocal task
        t0 = time.monotonic()
        task = asyncio.create_task(connector.run(sink))
        while health.samples < nodes:  # the initial values of every node mark a complete subscribe
            await asyncio.sleep(0.01)
            if time.monotonic() - t0 > 120:
                raise TimeoutError("parklink did not subscribe within 120 s")
        return time.monotonic() - t0

    async def stop() -> None:
        assert task is not None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return await measure("parklink", seconds, counter, start, stop)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run(nodes: int, seconds: float, rounds: int) -> list[Turn]:
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
            turns.append(await bare_turn(endpoint, nodes, seconds, raw=True))
            turns.append(await bare_turn(endpoint, nodes, seconds, raw=False))
            turns.append(await parklink_turn(endpoint, nodes, seconds))
        return turns
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=10)


def summarise(turns: list[Turn]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in ("bare-raw", "bare-handler", "parklink"):
        mine = [t for t in turns if t.contender == name]
        out[name] = {
            "values_per_second": statistics.median(t.values_per_second for t in mine),
            "cpu_ms_per_1000_values": statistics.median(t.cpu_seconds_per_1000 for t in mine) * 1000,
            "subscribe_seconds": statistics.median(t.subscribe_seconds for t in mine),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    turns = asyncio.run(run(args.nodes, args.seconds, args.rounds))
    summary = summarise(turns)
    raw, handler, ours = summary["bare-raw"], summary["bare-handler"], summary["parklink"]
    summary["ratios"] = {
        "throughput_vs_bare_raw": ours["values_per_second"] / raw["values_per_second"],
        "throughput_vs_bare_handler": ours["values_per_second"] / handler["values_per_second"],
        "cpu_per_value_vs_bare_raw": ours["cpu_ms_per_1000_values"] / raw["cpu_ms_per_1000_values"],
        "cpu_per_value_vs_bare_handler": ours["cpu_ms_per_1000_values"] / handler["cpu_ms_per_1000_values"],
    }
    print(
        json.dumps({"nodes": args.nodes, "turns": [asdict(t) for t in turns], "summary": summary}, indent=2)
    )


if __name__ == "__main__":
    main()
