"""KPI engine: replay throughput and memory, and the live cost of the KPI jobs.

`python -m bench.kpi_bench --assets 1000 --hours 1` (and `--assets 100 --hours 24`, …)
`python -m bench.kpi_bench --signals 1000,10000,100000 --samples 600000 --update-runs 1` (growth)

A park of N assets (10 per line, 5 lines per site, 4 sites per company), each reporting its state
and its good and scrap counters every second, as a 1 s Modbus poll does. Measured:
- replay: samples/s through `KpiEngine.feed` (batches of one second of the whole park), then the
  time to compute every scope's KPIs for the replayed span; peak RSS of the process;
- live: one `KpiService.update()` (four current windows: rolling hour, hour, day, shift, rolled up
  to every level, plus the park view) after the replay, and its share of one core per minute at
  the default update interval of 10 s;
- scale mode (`--signals`): the same at several park sizes, each in its own process with about
  `--samples` samples, and how feeding one second of the park, `update()` and the all-scope
  results grow with the size.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from bench.growth import growth, overall
from models.sample import Sample
from models.status import GOOD
from orchestrator.config import load_config
from orchestrator.kpi.service import KpiService
from orchestrator.kpi.windows import Window
from tests.fakes import FAKE_KIND

START = 1_772_431_200.0  # 2026-03-02T06:00:00Z


def park_yaml(assets: int) -> str:
    """10 assets per line, 5 lines per site, 4 sites per company."""
    out = [
        "park: {id: bench}",
        "asset_types:",
        "  m:",
        "    ideal_cycle_time: 2.0",
        "    signals:",
        "      state: {role: state, binding: {address: s}}",
        "      good_count: {role: good_count, type: uint32, binding: {address: g}}",
        "      scrap_count: {role: scrap_count, type: uint32, binding: {address: x}}",
        "companies:",
    ]
    share = "[{kpis: all, level: asset, windows: [shift, day, hour, rolling_hour]}]"
    shifts = "[{name: a, start: '06:00', end: '18:00'}, {name: b, start: '18:00', end: '06:00'}]"
    for n in range(assets):
        if n % 200 == 0:
            out += [
                f"  - id: c{n // 200}",
                "    connections: {dev: {kind: fake}}",
                f"    share: {share}",
                "    sites:",
            ]
        if n % 50 == 0:
            out += [f"      - id: s{n // 50 % 4}", f"        shifts: {shifts}", "        lines:"]
        if n % 10 == 0:
            out += [f"          - id: l{n // 10 % 5}", "            assets:"]
        out.append(f"              - {{id: a{n}, type: m, connection: dev}}")
    return "\n".join(out) + "\n"


def replay(assets: int, seconds: int, update_runs: int = 5) -> dict[str, Any]:
    """Replay `seconds` of a park of `assets` assets through the engine; the figures as a dict."""
    setup_started = time.perf_counter()
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "park.yaml"
        path.write_text(park_yaml(assets))
        park = load_config(path, {"fake": FAKE_KIND}).park
    end = START + seconds
    service = KpiService(park, None, clock=lambda: end)
    engine = service.engine
    setup_seconds = time.perf_counter() - setup_started
    rng = random.Random(1)
    n = len(park.assets)
    states = [3] * n
    good = [0] * n
    scrap = [0] * n
    fed = 0
    feed_seconds = 0.0
    for second in range(seconds):
        t = START + second
        batch: list[Sample] = []
        for i in range(n):
            if rng.random() < 0.002:  # a state change every ~8 minutes per asset
                states[i] = rng.choice((1, 2, 3, 3, 3, 4))
            if states[i] == 3 and rng.random() < 0.5:
                if rng.random() < 0.03:
                    scrap[i] += 1
                else:
                    good[i] += 1
            base = 3 * i
            batch.append(Sample(base, states[i], GOOD, t, t))
            batch.append(Sample(base + 1, good[i], GOOD, t, t))
            batch.append(Sample(base + 2, scrap[i], GOOD, t, t))
        started = time.perf_counter()
        engine.feed(batch)
        feed_seconds += time.perf_counter() - started
        fed += len(batch)
    started = time.perf_counter()
    window = Window("replayed", START, end)
    results = service.results_for([(list(engine.assets), window)], "custom", end)
    result_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for k in range(update_runs):
        service.update(end + k)
    update_seconds = (time.perf_counter() - started) / max(update_runs, 1)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "assets": n,
        "signals": 3 * n,
        "hours": seconds / 3600,
        "seconds_replayed": seconds,
        "setup_seconds": setup_seconds,
        "samples": fed,
        "feed_samples_per_second": fed / feed_seconds,
        "feed_microseconds_per_sample": 1e6 * feed_seconds / fed,
        "results": len(results),
        "results_seconds": result_seconds,
        "update_runs": update_runs,
        "update_seconds": update_seconds if update_runs else float("nan"),
        "live_core_share_at_10s_interval": update_seconds * 6 / 60 if update_runs else float("nan"),
        "peak_rss_mb": peak_mb,
    }


def scale(sizes: list[int], samples: int, update_runs: int) -> dict[str, Any]:
    """The engine at several park sizes (signals, 3 per asset), each in a fresh process.

    Every size replays about `samples` samples (at least 10 seconds of the park), so the time
    stays bounded whatever the size.
    """
    runs: dict[str, Any] = {}
    for signals in sizes:
        assets = max(1, signals // 3)
        seconds = max(10, samples // (3 * assets))
        cmd = [sys.executable, "-m", "bench.kpi_bench", "--assets", str(assets), "--seconds", str(seconds)]
        cmd += ["--update-runs", str(update_runs)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"{assets} assets failed: {tail}")
        runs[str(signals)] = json.loads(done.stdout)
    totals = {
        # feeding one second of the whole park (every signal once)
        "feed_seconds_per_park_second": {
            int(k): r["feed_microseconds_per_sample"] * r["samples"] / r["seconds_replayed"] / 1e6
            for k, r in runs.items()
        },
        "update_seconds": {int(k): r["update_seconds"] for k, r in runs.items()},
        "results_seconds": {int(k): r["results_seconds"] for k, r in runs.items()},
    }
    grow = {name: growth(values) for name, values in totals.items()}
    return {
        "sizes": sizes,
        "runs": runs,
        "totals": {name: {str(k): v for k, v in values.items()} for name, values in totals.items()},
        "growth": grow,
        "verdicts": {name: overall(steps) for name, steps in grow.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--seconds", type=int, help="span to replay in seconds (instead of --hours)")
    parser.add_argument("--update-runs", type=int, default=5, help="KpiService.update() calls to average")
    parser.add_argument(
        "--signals",
        help="scale mode: comma-separated park sizes in signals (3 per asset), each in its own process",
    )
    parser.add_argument("--samples", type=int, default=600_000, help="scale mode: samples per size")
    args = parser.parse_args()
    if args.signals:
        sizes = [int(s) for s in args.signals.split(",") if s]
        print(json.dumps(scale(sizes, args.samples, args.update_runs), indent=2))
        return
    seconds = args.seconds if args.seconds is not None else int(args.hours * 3600)
    print(json.dumps(replay(args.assets, seconds, args.update_runs), indent=2))


if __name__ == "__main__":
    main()
