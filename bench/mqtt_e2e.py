"""End to end through MQTT: a device value changes at an edge → it is in the hub's snapshot.

`python -m bench.mqtt_e2e --signals 10000 --seconds 20 [--rate 1] [--payload uns_json|sparkplug] [--json F]`

One edge process (`parklink run --role edge`) plays `signals` values changing `rate` times a second
(the replay connector, times shifted to now: each value's source time is the moment it is handed to
the pipeline, as a device's would be). It publishes them to a private Mosquitto (no persistence,
unlimited queues) as UNS JSON (one message per value, through its on-disk queue, QoS 1) or as
Sparkplug B (one DDATA per asset every 0.1 s with the changed metrics, QoS 0), and a hub in this
process (`HubRuntime`) takes the values into its snapshot. Measured over the steady part of the run:
- latency per value: the hub's wall clock at arrival minus the value's source time (one machine,
  one clock), p50/p90/p99/max;
- messages per second reaching the hub against the offered rate (lower means it cannot keep up);
- CPU seconds per second of the edge process, the broker and this (hub) process.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from models.sample import Sample
from orchestrator.config import load_config
from orchestrator.hub.runtime import HubRuntime
from orchestrator.registry import builtin_kinds

SIGNALS_PER_ASSET = 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (Linux /proc), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_samples(path: Path, signals: int, seconds: int, rate: float) -> int:
    """Every signal changes `rate` times a second for `seconds`; returns the number of rows."""
    assets = max(1, signals // SIGNALS_PER_ASSET)
    steps = int(seconds * rate)
    rows = 0
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "asset", "signal", "value", "quality"])
        for step in range(steps):
            t = f"{1_000_000 + step / rate:.3f}"
            for a in range(assets):
                for s in range(SIGNALS_PER_ASSET):
                    writer.writerow(
                        [t, f"acme/plant/l1/a{a:04d}", f"v{s:03d}", f"{step + s / 1000:.3f}", "good"]
                    )
                    rows += 1
    return rows


def configs(tmp: Path, signals: int, broker_port: int, prefix: str, payload: str) -> tuple[Path, Path]:
    assets = max(1, signals // SIGNALS_PER_ASSET)
    mqtt = {
        "host": "127.0.0.1",
        "port": broker_port,
        "topic_prefix": prefix,
        "flush_interval": 0.05,
        "retain": False,
        "reconnect": {"initial": 0.2, "cap": 1.0},
    }
    base: dict[str, Any] = {
        "park": {"id": "bench"},
        "kpi": {"windows": ["hour"], "update_interval": 10},
        "asset_types": {
            "block": {
                "signals": {f"v{s:03d}": {"type": "float64", "binding": {}} for s in range(SIGNALS_PER_ASSET)}
            }
        },
    }
    edge = {
        **base,
        "database": {"url": f"sqlite:///{tmp}/edge.db"},
        "mqtt": {
            **mqtt,
            "store": {"path": str(tmp / "edge-queue.db")},
            "payloads": [payload],
            "sparkplug": {"group_id": "bench", "edge_node_id": "edge1", "publish_interval": 0.1},
        },
        "companies": [
            {
                "id": "acme",
                "connections": {
                    "rec": {"kind": "replay", "file": str(tmp / "samples.csv"), "speed": 1.0, "align": "now"}
                },
                "share": [{"kpis": "all", "level": "asset", "windows": ["hour"]}],
                "sites": [
                    {
                        "id": "plant",
                        "timezone": "UTC",
                        "lines": [
                            {
                                "id": "l1",
                                "assets": [
                                    {"id": f"a{a:04d}", "type": "block", "connection": "rec"}
                                    for a in range(assets)
                                ],
                            }
                        ],
                    }
                ],
            }
        ],
    }
    hub = {
        **base,
        "database": {"url": f"sqlite:///{tmp}/hub.db"},
        "mqtt": {**mqtt, "store": {"path": str(tmp / "hub-queue.db")}},
    }
    edge_path, hub_path = tmp / "edge.yaml", tmp / "hub.yaml"
    edge_path.write_text(yaml.safe_dump(edge, sort_keys=False))
    hub_path.write_text(yaml.safe_dump(hub, sort_keys=False))
    return edge_path, hub_path


def start_broker(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    if shutil.which("mosquitto") is None:
        raise SystemExit("mosquitto is not installed")
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"max_queued_messages 0\nmax_inflight_messages 0\nuser {getpass.getuser()}\n"
    )
    broker = subprocess.Popen(
        ["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return broker, port
        except OSError:
            time.sleep(0.02)
    broker.kill()
    raise SystemExit("mosquitto did not start")


async def bare_publish_rate(port: int, messages: int = 20_000, window: int = 500) -> float:
    """The ceiling of one QoS 1 session in Python: bare aiomqtt, pipelined, acknowledged messages/s."""
    import aiomqtt

    payload = json.dumps(
        {"value": 1.5, "quality": "good", "status": 0, "source_time": "2026-01-01T00:00:00Z"}
    )
    async with aiomqtt.Client("127.0.0.1", port, max_inflight_messages=window) as client:
        client.pending_calls_threshold = window + 16
        started = time.perf_counter()
        for first in range(0, messages, window):
            count = min(window, messages - first)
            await asyncio.gather(*(client.publish(f"bare/{first + i}", payload, 1) for i in range(count)))
        return messages / (time.perf_counter() - started)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(signals: int, seconds: int, rate: float, payload: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="parklink-e2e-") as name:
        tmp = Path(name)
        rows = write_samples(tmp / "samples.csv", signals, seconds, rate)
        broker, port = start_broker(tmp)
        edge_path, hub_path = configs(tmp, signals, port, f"bench-{secrets.token_hex(3)}", payload)
        bare = await bare_publish_rate(port)
        hub = HubRuntime(load_config(hub_path, builtin_kinds()), metrics_port=0, http_port=0)
        delays: list[float] = []
        arrivals: list[float] = []
        edge: subprocess.Popen[bytes] | None = None
        try:
            await hub.start()
            log = (tmp / "edge.log").open("wb")
            edge = subprocess.Popen(  # noqa: ASYNC220  # a start, not a wait
                [
                    sys.executable,
                    "-m",
                    "orchestrator.cli",
                    "run",
                    str(edge_path),
                    "--role",
                    "edge",
                    "--metrics-port",
                    "0",
                    "--http-port",
                    str(free_port()),
                ],
                stdout=log,
                stderr=log,
            )
            deadline = time.monotonic() + 60
            while len(hub.park.signals) < signals:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the edge's model did not arrive; see {tmp / 'edge.log'}")
                await asyncio.sleep(0.05)

            def listen(batch: Sequence[Sample]) -> None:
                now = time.time()
                for sample in batch:
                    delays.append(now - sample.source_time)
                    arrivals.append(now)

            hub.snapshot.listeners.append(listen)
            cpu_start = {
                "edge": cpu_seconds(edge.pid),
                "broker": cpu_seconds(broker.pid),
                "hub": time.process_time(),
            }
            wall_start = time.monotonic()
            deadline = time.monotonic() + seconds + 60
            while hub.health.samples_total < rows and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            wall = time.monotonic() - wall_start
            cpu = {
                "edge": cpu_seconds(edge.pid) - cpu_start["edge"],
                "broker": cpu_seconds(broker.pid) - cpu_start["broker"],
                "hub": time.process_time() - cpu_start["hub"],
            }
        finally:
            if edge is not None:
                edge.terminate()
                edge.wait(timeout=15)
            await hub.stop()
            broker.terminate()
            broker.wait(timeout=5)
    # The steady part: skip the first 2 s (start-up) of arrivals.
    start = arrivals[0] + 2.0 if arrivals else 0.0
    steady = [d for d, t in zip(delays, arrivals, strict=True) if t >= start]
    span = (arrivals[-1] - start) if arrivals else 0.0
    received_steady = len(steady)
    return {
        "signals": signals,
        "payload": payload,
        "seconds": seconds,
        "changes_per_second_per_signal": rate,
        "offered_messages_per_second": signals * rate,
        "sent": rows,
        "received": len(delays),
        "not_received_in_time": rows - len(delays),
        "messages_per_second": received_steady / span if span > 0 else 0.0,
        "bare_aiomqtt_publish_per_second": bare,
        "latency_seconds": {
            "p50": percentile(steady, 0.50),
            "p90": percentile(steady, 0.90),
            "p99": percentile(steady, 0.99),
            "max": max(steady),
            "mean": statistics.fmean(steady),
        }
        if steady
        else {},
        "cpu_seconds_per_second": {k: v / wall for k, v in cpu.items()},
        "wall_seconds": wall,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--signals", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rate", type=float, default=1.0, help="changes per second of every signal")
    parser.add_argument(
        "--payload",
        choices=["uns_json", "sparkplug"],
        default="uns_json",
        help="how values travel to the hub",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the result here too")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.signals, args.seconds, args.rate, args.payload))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
