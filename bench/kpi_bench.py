"""KPI engine: replay throughput and memory, and the live cost of the KPI jobs.

`python -m bench.kpi_bench --assets 1000 --hours 1` (and `--assets 100 --hours 24`, …)

A park of N assets (10 per line, 5 lines per site, 4 sites per company), each reporting its state
and its good and scrap counters every second, as a 1 s Modbus poll does. Measured:
- replay: samples/s through `KpiEngine.feed` (batches of one second of the whole park), then the
  time to compute every scope's KPIs for the replayed span; peak RSS of the process;
- live: one `KpiService.update()` (four current windows: rolling hour, hour, day, shift, rolled up
  to every level, plus the park view) after the replay, and its share of one core per minute at
  the default update interval of 10 s.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
from pathlib import Path
from tempfile import TemporaryDirectory

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=1.0)
    args = parser.parse_args()
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "park.yaml"
        path.write_text(park_yaml(args.assets))
        park = load_config(path, {"fake": FAKE_KIND}).park
    seconds = int(args.hours * 3600)
    end = START + seconds
    service = KpiService(park, None, clock=lambda: end)
    engine = service.engine
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
    runs = 5
    for k in range(runs):
        service.update(end + k)
    update_seconds = (time.perf_counter() - started) / runs
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "assets": n,
                "hours": args.hours,
                "samples": fed,
                "feed_samples_per_second": fed / feed_seconds,
                "feed_microseconds_per_sample": 1e6 * feed_seconds / fed,
                "results": len(results),
                "results_seconds": result_seconds,
                "update_seconds": update_seconds,
                "live_core_share_at_10s_interval": update_seconds * 6 / 60,
                "peak_rss_mb": peak_mb,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
