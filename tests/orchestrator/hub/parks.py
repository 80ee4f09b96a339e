"""A recorded park for the edge/hub tests: three companies' configs, their samples, their processes.

The samples are a deterministic, stochastic-looking record (seeded) of machines changing state and
counting parts, played by the replay connector under the data clock, so every process computes
the same KPIs from the same samples however fast or late it plays them.
"""

from __future__ import annotations

import csv
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

START = 1772431200.0  # 2026-03-02T06:00:00Z
COMPANIES = ("acme", "bolt", "corex")
ASSETS = ("m1", "m2")
SHARE: dict[str, list[dict[str, Any]]] = {
    # acme shares everything down to its assets; bolt two KPIs per company; corex OEE per line, hourly.
    "acme": [{"kpis": "all", "level": "asset", "windows": ["hour", "shift", "day"]}],
    "bolt": [{"kpis": ["oee", "availability"], "level": "company", "windows": ["hour", "shift", "day"]}],
    "corex": [
        {"kpis": ["oee"], "level": "asset", "windows": ["hour"]},
        {"kpis": ["quality"], "level": "company", "windows": ["shift"]},
    ],
}


def write_samples(path: Path, hours: float = 2.5, seed: int = 7) -> dict[str, int]:
    """The record of every company's machines; returns the number of samples per company."""
    rng = random.Random(seed)
    counts = dict.fromkeys(COMPANIES, 0)
    rows: list[tuple[float, str, str, str]] = []
    end = START + hours * 3600
    for company in COMPANIES:
        for asset in ASSETS:
            path_ = f"{company}/north/line-1/{asset}"
            t, good, scrap = START, rng.randrange(60000), 0
            while t < end:
                state = rng.choices([3, 4, 1, 2, 0], weights=[70, 8, 10, 7, 5])[0]
                rows.append((t, path_, "state", str(state)))
                duration = rng.uniform(60, 900)
                if state == 3:
                    good = (good + int(duration / 20)) % 65536  # 16-bit counter: wraps
                    scrap += rng.randrange(3)
                t = min(end, t + duration)
                rows.append((t, path_, "good_count", str(good)))
                rows.append((t, path_, "scrap_count", str(scrap)))
            counts[company] += sum(1 for r in rows if r[1] == path_)
    rows.sort(key=lambda r: r[0])
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "asset", "signal", "value", "quality"])
        for t, asset, name, value in rows:
            writer.writerow([f"{t:.3f}", asset, name, value, "good"])
    return counts


def park_config(
    companies: tuple[str, ...],
    samples: Path,
    database: str,
    *,
    mqtt: dict[str, Any] | None = None,
    speed: float = 0.0,
    clock: str = "data",
    state_interval: float = 30.0,
) -> dict[str, Any]:
    """A park config (as YAML data) holding `companies` (none: a hub's)."""
    config: dict[str, Any] = {
        "park": {"id": "harbour", "name": "Harbour Park"},
        "database": {"url": database},
        "kpi": {
            "clock": clock,
            "windows": ["hour", "shift", "day"],
            "update_interval": 0.5,
            "benchmark_min_companies": 2,
            "state_interval": state_interval,
        },
        "asset_types": {
            "machine": {
                "state_map": "demo_machine_state",
                "signals": {
                    "state": {"role": "state", "type": "uint16", "binding": {}},
                    "good_count": {"role": "good_count", "type": "uint16", "binding": {}},
                    "scrap_count": {"role": "scrap_count", "type": "uint32", "binding": {}},
                },
            }
        },
        "companies": [
            {
                "id": company,
                "name": company.title(),
                "connections": {"rec": {"kind": "replay", "file": str(samples), "speed": speed}},
                "share": SHARE[company],
                "sites": [
                    {
                        "id": "north",
                        "timezone": "UTC",
                        "shifts": [{"name": "early", "start": "06:00", "end": "14:00"}],
                        "lines": [
                            {
                                "id": "line-1",
                                "assets": [
                                    {"id": a, "type": "machine", "connection": "rec", "ideal_cycle_time": 20}
                                    for a in ASSETS
                                ],
                            }
                        ],
                    }
                ],
            }
            for company in companies
        ],
    }
    if mqtt is not None:
        config["mqtt"] = mqtt
        if not companies:  # a hub: a session of its own, never taken over by another test's hub
            config["mqtt"] = {"client_id": f"hub-{secrets.token_hex(4)}", "clean_start": False, **mqtt}
    return config


def mqtt_section(port: int, store: Path, prefix: str, **extra: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "topic_prefix": prefix,
        "flush_interval": 0.05,
        "store": {"path": str(store)},
        "reconnect": {"initial": 0.2, "cap": 1.0},
        **extra,
    }


def unique_prefix() -> str:
    return f"parklink-test-{secrets.token_hex(4)}"


@dataclass
class Process:
    """A `parklink run` child with its log; `stop()` SIGTERMs it, `kill()` SIGKILLs it."""

    name: str
    args: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    metrics_port: int = 0
    http_port: int = 0
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        handle = self.log.open("ab")
        env = {**os.environ, **self.env}
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", *self.args], stdout=handle, stderr=handle, env=env
        )

    def stop(self, timeout: float = 10.0) -> int:
        if self.popen is None:
            return 0
        self.popen.send_signal(signal.SIGTERM)
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            code = self.popen.wait()
        self.popen = None
        return code

    def kill(self) -> None:
        if self.popen is not None:
            self.popen.kill()
            self.popen.wait()
            self.popen = None

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_args(config: Path, role: str, metrics_port: int, http_port: int) -> list[str]:
    return [
        "run",
        str(config),
        "--role",
        role,
        "--metrics-port",
        str(metrics_port),
        "--http-port",
        str(http_port),
    ]


def metric_value(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in Prometheus text, or None."""
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head == name and not labels:
            return float(value)
        if head.startswith(name + "{") and all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return None


def wait_for(condition: Any, within: float, what: str, step: float = 0.2) -> Any:
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except (httpx.HTTPError, OSError):
            last = None
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"timed out after {within:g} s waiting for {what} (last: {last!r})")
