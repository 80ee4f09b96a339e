"""Scale: memory per signal, `/metrics` scrape time and size, snapshot push, at 1,000 to 100,000 signals.

    python -m bench.scale --signals 1000,10000,100000 --repeat 5

The park: 10 signals per asset (state, counters, energy in kWh, temperature, speed, power, pressure,
cycle time, vibration; OPC UA bindings), 10 assets per line, 5 lines per site, 4 sites per company,
one OPC UA connection per site (2,000 signals each). For every size, two fresh processes, so that
their RSS compares:

- `parklink`: what the runtime builds for the signal path, stage by stage, RSS after each:
  `load_config` (the resolved park; the runtime keeps the loaded config), a `Snapshot` holding one
  Good float sample per signal, the connectors (`bound_signals` + the OPC UA kind's `create`, no
  session), the `ParkCollector`; then, as a separate stage, the KPI service and its collector.
  Then the scrape: `generate_latest` over a registry holding the `ParkCollector` (`--repeat`
  times, median), next to a bare prometheus_client custom collector that produces exactly the same
  exposition (same families, series and values; checked byte for byte) with the documented
  `GaugeMetricFamily.add_metric`, taking turns. Also `Snapshot.push` of one batch of every signal.
- `bare`: what the bare libraries hold for the same signals: one prometheus_client `Gauge` per
  signal name with the labels company, site, line, asset and one child per signal, set to a value;
  then asyncua `Node` objects for the same node ids (a client that is never connected). Then the
  scrape of that registry (values only: one series per signal, where parklink also exports a
  quality series per signal and an info series per asset).

parklink's scrape is also timed after `gc.freeze()` (everything built so far left out of the
garbage collector's full collections, as a server may do after start-up). The scrape's peak memory
is the process's high-water mark (VmHWM, reset before the first scrape)
above its RSS before. Growth from size to size is reported with `bench.growth` (linear when a 10×
larger park costs 8–12× more).
"""

from __future__ import annotations

import argparse
import collections
import functools
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.growth import growth, overall

# name, type, unit, KPI role
SIGNALS: list[tuple[str, str, str, str]] = [
    ("state", "int32", "", "state"),
    ("good_count", "uint32", "", "good_count"),
    ("scrap_count", "uint32", "", "scrap_count"),
    ("energy", "float64", "kWh", "energy"),
    ("temperature", "float64", "°C", ""),
    ("spindle_speed", "float64", "rpm", ""),
    ("power", "float64", "kW", ""),
    ("pressure", "float64", "bar", ""),
    ("cycle_time", "float64", "ms", ""),
    ("vibration", "float64", "mm", ""),
]
PER_ASSET = len(SIGNALS)
QUALITY = (2.0, 1.0, 0.0, 0.0)  # by the two severity bits of a StatusCode
ASSETS_PER_SITE = 50  # 10 per line, 5 lines
SITES_PER_COMPANY = 4


def park_yaml(signals: int) -> str:
    """A park config of `signals` signals (a multiple of 10), laid out as the module docstring says."""
    if signals % PER_ASSET:
        raise ValueError(f"signals must be a multiple of {PER_ASSET}")
    out = ["park: {id: bench}", "asset_types:", "  m:", "    ideal_cycle_time: 2.0", "    signals:"]
    for name, data_type, unit, role in SIGNALS:
        extra = (f"role: {role}, " if role else "") + (f"unit: '{unit}', " if unit else "")
        out.append(
            f"      {name}: {{{extra}type: {data_type}, binding: {{address: 'ns=2;s={{machine}}.{name}'}}}}"
        )
    out.append("companies:")
    per_company = ASSETS_PER_SITE * SITES_PER_COMPANY
    for a in range(signals // PER_ASSET):
        if a % per_company == 0:
            out += [f"  - id: c{a // per_company}", "    connections:"]
            out += [
                f"      opc{s}: {{kind: opcua, endpoint: 'opc.tcp://127.0.0.1:4840/s{s}/'}}"
                for s in range(SITES_PER_COMPANY)
            ]
            out.append("    sites:")
        site = a // ASSETS_PER_SITE % SITES_PER_COMPANY
        if a % ASSETS_PER_SITE == 0:
            out += [f"      - id: s{site}", "        lines:"]
        if a % 10 == 0:
            out += [f"          - id: l{a // 10 % 5}", "            assets:"]
        out.append(f"              - {{id: a{a}, type: m, connection: opc{site}, params: {{machine: M{a}}}}}")
    return "\n".join(out) + "\n"


def node_ids(signals: int) -> list[str]:
    return [f"ns=2;s=M{i // PER_ASSET}.{SIGNALS[i % PER_ASSET][0]}" for i in range(signals)]


# ---- measuring in this process ------------------------------------------------------------------


def rss_mb() -> float:
    """Resident set size of this process now, MB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def hwm_mb() -> float:
    """The process's RSS high-water mark (VmHWM), MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def settled_rss() -> float:
    gc.collect()
    return rss_mb()


class Timings:
    """CPU and wall seconds of repeated calls. CPU time is the figure: the machine may be shared,
    and a scrape is one thread's work; on an idle machine the two agree."""

    def __init__(self) -> None:
        self.cpu: list[float] = []
        self.wall: list[float] = []

    def time(self, fn: Callable[[], object]) -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        fn()
        self.cpu.append(time.process_time() - cpu)
        self.wall.append(time.perf_counter() - wall)

    def median(self) -> float:
        return statistics.median(self.cpu)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cpu_seconds_median": statistics.median(self.cpu),
            "wall_seconds_median": statistics.median(self.wall),
            "cpu_seconds": self.cpu,
        }


def repeated(fn: Callable[[], object], repeat: int) -> Timings:
    timings = Timings()
    for _ in range(repeat):
        timings.time(fn)
    return timings


def scrape_peak_mb(fn: Callable[[], object]) -> float:
    """Memory a scrape needs above the RSS before it (NaN where VmHWM cannot be reset)."""
    gc.collect()
    before = rss_mb()
    if not reset_hwm():
        return float("nan")
    fn()
    return hwm_mb() - before


class SameOutputCollector:
    """The documented bare prometheus_client way to export what ParkCollector exports.

    Label values precomputed as lists, `GaugeMetricFamily.add_metric` per series, values read from
    the same snapshot; Bad samples left out of the value families, as parklink does.
    """

    def __init__(self, park: Any, latest: list[Any]) -> None:
        from models.units import to_base_unit

        self.latest = latest
        self.families: dict[str, tuple[str, list[tuple[int, list[str], float]]]] = {}
        self.quality: list[tuple[int, list[str]]] = []
        for s in park.signals:
            suffix, factor = to_base_unit(s.unit)
            name = f"parklink_{s.name}" + (f"_{suffix}" if suffix and not s.name.endswith(suffix) else "")
            a = s.asset
            labels = [a.company, a.site, a.line, a.asset]
            note = f" (device unit {s.unit!r})" if s.unit else ""
            family = self.families.setdefault(
                name, (f"Signal {s.name}{note}, latest Good or Uncertain value", [])
            )
            family[1].append((s.index, labels, factor))
            self.quality.append((s.index, [*labels, s.name]))
        self.info = [
            [a.company, a.site, a.line, a.asset, a.area, a.name, a.type, a.connection]
            for a in park.assets
            if not a.retired
        ]

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        latest = self.latest
        labels = ["company", "site", "line", "asset"]
        for name, (help_text, series) in self.families.items():
            family = GaugeMetricFamily(name, help_text, labels=labels)
            for index, values, factor in series:
                sample = latest[index]
                if sample is not None and sample.status < 0x80000000:
                    family.add_metric(values, float(sample.value) * factor)
            yield family
        quality = GaugeMetricFamily(
            "parklink_signal_quality",
            "Quality of the latest sample: 2 good, 1 uncertain, 0 bad or none yet",
            labels=[*labels, "signal"],
        )
        for index, values in self.quality:
            sample = latest[index]
            quality.add_metric(values, 0.0 if sample is None else QUALITY[(sample.status >> 30) & 3])
        yield quality
        info = GaugeMetricFamily(
            "parklink_asset_info",
            "Asset metadata (value 1)",
            labels=[*labels, "area", "name", "type", "connection"],
        )
        for values in self.info:
            info.add_metric(values, 1.0)
        yield info
        # parklink's connection-health families; no connections in this bench, so no series
        yield GaugeMetricFamily("parklink_connection_up", "1 when the connection works")
        for name, help_text in (
            ("samples", "Samples received from the connection"),
            ("read_errors", "Failed reads, connects and requests"),
            ("reconnects", "Times the connection recovered after a loss"),
        ):
            yield CounterMetricFamily(f"parklink_connection_{name}", help_text)
        yield GaugeMetricFamily("parklink_connection_round_trip_seconds", "Last request round-trip time")


def run_parklink(signals: int, config: Path, repeat: int) -> dict[str, Any]:
    from prometheus_client import CollectorRegistry, generate_latest

    from connectors.base import LinkHealth
    from connectors.opcua.kind import KIND as OPCUA
    from exporters.prometheus.collector import ParkCollector
    from exporters.prometheus.kpi_collector import KpiCollector
    from models.sample import Sample
    from models.status import GOOD
    from orchestrator.config import load_config
    from orchestrator.kpi.service import KpiService
    from orchestrator.runtime import bound_signals
    from orchestrator.snapshot import Snapshot

    rss: dict[str, float] = {"imports": settled_rss()}
    started = time.process_time()
    loaded = load_config(config, {"opcua": OPCUA})
    park = loaded.park
    load_seconds = time.process_time() - started
    assert len(park.signals) == signals
    rss["park"] = settled_rss()

    snapshot = Snapshot(signals)
    now = time.time()
    snapshot.push([Sample(i, float(i % 1000) + 0.5, GOOD, now, now) for i in range(signals)])
    rss["snapshot"] = settled_rss()

    healths, connectors = [], []
    for ref in park.connections:
        health = LinkHealth(ref.id, ref.kind, ref.company)
        healths.append(health)
        connectors.append(OPCUA.create(ref.settings, bound_signals(park, ref), health))
    rss["connectors"] = settled_rss()

    collector = ParkCollector(park, snapshot, [])  # no health series: compare the signal families
    registry = CollectorRegistry()
    registry.register(collector)
    rss["collector"] = settled_rss()

    kpi = KpiService(park, None)
    snapshot.listeners.append(kpi.engine.feed)
    kpi_registry = CollectorRegistry()
    kpi_registry.register(KpiCollector(kpi, "full"))
    rss["kpi"] = settled_rss()
    snapshot.listeners.clear()  # the push figure below is the snapshot's alone

    # the scrape, next to a bare collector with the same output, taking turns
    scrape_peak = scrape_peak_mb(lambda: generate_latest(registry))  # the first scrape
    bare_registry = CollectorRegistry()
    bare_registry.register(SameOutputCollector(park, snapshot.latest))
    ours, bare = generate_latest(registry), generate_latest(bare_registry)
    if ours != bare:
        raise AssertionError("the same-output bare collector does not produce parklink's exposition")
    ours_t, bare_t, collect_t = Timings(), Timings(), Timings()
    for k in range(repeat):
        order = [(registry, ours_t), (bare_registry, bare_t)]
        for reg, timings in order if k % 2 == 0 else order[::-1]:
            timings.time(functools.partial(generate_latest, reg))
        # collect alone, one family at a time and each dropped at once, as generate_latest does
        collect_t.time(lambda: collections.deque(collector.collect(), maxlen=0))
    series = sum(1 for line in ours.splitlines() if not line.startswith(b"#"))
    # The same scrapes once everything built so far is frozen out of the garbage collector's
    # reach (`gc.freeze()`, as a long-running server may do after start-up): how much of a
    # scrape is full collections walking the park's objects.
    gc.collect()
    gc.freeze()
    frozen_t = repeated(functools.partial(generate_latest, registry), repeat)
    gc.unfreeze()

    # the snapshot's side of ingest: one batch of every signal
    batch = [Sample(i, float(i % 997), GOOD, now + 1, now + 1) for i in range(signals)]
    push_seconds = repeated(lambda: snapshot.push(batch), max(repeat, 5)).median()

    base = rss["imports"]
    return {
        "signals": signals,
        "assets": len(park.assets),
        "connections": len(park.connections),
        "load_config_seconds": load_seconds,
        "rss_mb": rss,
        "kb_per_signal": {
            stage: (rss[stage] - previous) * 1000 / signals
            for stage, previous in (
                ("park", base),
                ("snapshot", rss["park"]),
                ("connectors", rss["snapshot"]),
                ("collector", rss["connectors"]),
                ("kpi", rss["collector"]),
            )
        },
        "kb_per_signal_signal_path": (rss["collector"] - base) * 1000 / signals,
        "kb_per_signal_with_kpi": (rss["kpi"] - base) * 1000 / signals,
        "scrape": {
            "series": series,
            "bytes": len(ours),
            **ours_t.as_dict(),
            "collect_cpu_seconds_median": collect_t.median(),
            "us_per_series": ours_t.median() * 1e6 / series,
            "cpu_seconds_median_gc_frozen": frozen_t.median(),
            "peak_mb_above_rss": scrape_peak,
        },
        "scrape_same_output_bare_collector": {
            **bare_t.as_dict(),
            "collect_cpu_seconds_median": float("nan"),
        },
        "scrape_ratio_vs_same_output_bare": ours_t.median() / bare_t.median(),
        "scrape_ratio_paired_median": statistics.median(
            o / b for o, b in zip(ours_t.cpu, bare_t.cpu, strict=True)
        ),
        "push_us_per_sample": push_seconds * 1e6 / signals,
        "peak_rss_mb": hwm_mb(),
    }


def run_bare(signals: int, repeat: int) -> dict[str, Any]:
    from asyncua import ua
    from asyncua.client.client import Client
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    from models.units import to_base_unit

    rss: dict[str, float] = {"imports": settled_rss()}
    registry = CollectorRegistry()
    gauges: dict[str, Gauge] = {}
    ids = node_ids(signals)
    for i in range(signals):
        name, _, unit, _ = SIGNALS[i % PER_ASSET]
        gauge = gauges.get(name)
        if gauge is None:  # the names parklink gives the same signals
            suffix = to_base_unit(unit)[0]
            metric = f"parklink_{name}" + (f"_{suffix}" if suffix and not name.endswith(suffix) else "")
            gauge = gauges[name] = Gauge(
                metric, f"Signal {name}", ["company", "site", "line", "asset"], registry=registry
            )
        a = i // PER_ASSET
        site = a // ASSETS_PER_SITE % SITES_PER_COMPANY
        company = a // (ASSETS_PER_SITE * SITES_PER_COMPANY)
        gauge.labels(f"c{company}", f"s{site}", f"l{a // 10 % 5}", f"a{a}").set(float(i % 1000) + 0.5)
    rss["gauges"] = settled_rss()
    client = Client("opc.tcp://127.0.0.1:4840/bench/")
    nodes = [client.get_node(ua.NodeId.from_string(n)) for n in ids]
    rss["nodes"] = settled_rss()
    peak = scrape_peak_mb(lambda: generate_latest(registry))  # the first scrape
    out = generate_latest(registry)
    timings = repeated(lambda: generate_latest(registry), repeat)
    series = sum(1 for line in out.splitlines() if not line.startswith(b"#"))
    assert series == signals and len(nodes) == signals
    return {
        "signals": signals,
        "rss_mb": rss,
        "kb_per_signal": {
            "gauges": (rss["gauges"] - rss["imports"]) * 1000 / signals,
            "nodes": (rss["nodes"] - rss["gauges"]) * 1000 / signals,
        },
        "kb_per_signal_total": (rss["nodes"] - rss["imports"]) * 1000 / signals,
        "scrape": {
            "series": series,
            "bytes": len(out),
            **timings.as_dict(),
            "us_per_series": timings.median() * 1e6 / series,
            "peak_mb_above_rss": peak,
        },
        "peak_rss_mb": hwm_mb(),
    }


# ---- the parent: one process per size and contender ---------------------------------------------


def child(role: str, signals: int, repeat: int, config: Path | None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.scale", "--role", role, "--signals", str(signals)]
    cmd += ["--repeat", str(repeat)] + (["--config", str(config)] if config else [])
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{role} at {signals} signals failed: {tail}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def summarise(sizes: Sequence[int], ours: dict[int, Any], bare: dict[int, Any]) -> dict[str, Any]:
    table: dict[int, dict[str, float]] = {}
    for n in sizes:
        p, b = ours[n], bare[n]
        table[n] = {
            "scrape_seconds": p["scrape"]["cpu_seconds_median"],
            "collect_seconds": p["scrape"]["collect_cpu_seconds_median"],
            "scrape_seconds_gc_frozen": p["scrape"]["cpu_seconds_median_gc_frozen"],
            "scrape_bytes": p["scrape"]["bytes"],
            "scrape_series": p["scrape"]["series"],
            "bare_gauge_scrape_seconds": b["scrape"]["cpu_seconds_median"],
            "bare_gauge_scrape_bytes": b["scrape"]["bytes"],
            "same_output_bare_scrape_seconds": p["scrape_same_output_bare_collector"]["cpu_seconds_median"],
            "scrape_vs_bare_gauge": p["scrape"]["cpu_seconds_median"] / b["scrape"]["cpu_seconds_median"],
            "bytes_vs_bare_gauge": p["scrape"]["bytes"] / b["scrape"]["bytes"],
            "scrape_vs_same_output_bare": p["scrape_ratio_paired_median"],
            "scrape_peak_mb": p["scrape"]["peak_mb_above_rss"],
            "bare_gauge_scrape_peak_mb": b["scrape"]["peak_mb_above_rss"],
            "kb_per_signal": p["kb_per_signal_signal_path"],
            "kb_per_signal_with_kpi": p["kb_per_signal_with_kpi"],
            "bare_kb_per_signal": b["kb_per_signal_total"],
            "kb_per_signal_above_bare": p["kb_per_signal_signal_path"] - b["kb_per_signal_total"],
            "memory_vs_bare": p["kb_per_signal_signal_path"] / b["kb_per_signal_total"],
            "push_us_per_sample": p["push_us_per_sample"],
        }
    totals = {
        "scrape_seconds": {n: table[n]["scrape_seconds"] for n in sizes},
        "scrape_bytes": {n: table[n]["scrape_bytes"] for n in sizes},
        "bare_gauge_scrape_seconds": {n: table[n]["bare_gauge_scrape_seconds"] for n in sizes},
        "memory_mb": {n: ours[n]["rss_mb"]["collector"] - ours[n]["rss_mb"]["imports"] for n in sizes},
        "memory_mb_with_kpi": {n: ours[n]["rss_mb"]["kpi"] - ours[n]["rss_mb"]["imports"] for n in sizes},
        "bare_memory_mb": {n: bare[n]["rss_mb"]["nodes"] - bare[n]["rss_mb"]["imports"] for n in sizes},
        "push_seconds_per_batch": {n: table[n]["push_us_per_sample"] * n / 1e6 for n in sizes},
        "scrape_peak_mb": {n: table[n]["scrape_peak_mb"] for n in sizes},
    }
    grow = {name: growth(values) for name, values in totals.items()}
    return {
        "by_size": table,
        "totals": totals,
        "growth": grow,
        "verdicts": {name: overall(steps) for name, steps in grow.items()},
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--signals", default="1000,10000,100000", help="comma-separated sizes")
    parser.add_argument("--repeat", type=int, default=5, help="scrapes per contender (median)")
    parser.add_argument("--role", choices=["parklink", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.signals.split(",") if s]
    if args.role == "parklink":
        print(json.dumps(run_parklink(sizes[0], args.config, args.repeat)))
        return
    if args.role == "bare":
        print(json.dumps(run_bare(sizes[0], args.repeat)))
        return
    ours: dict[int, Any] = {}
    bare: dict[int, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            config = Path(tmp) / f"park-{n}.yaml"
            config.write_text(park_yaml(n))
            ours[n] = child("parklink", n, args.repeat, config)
            bare[n] = child("bare", n, args.repeat, None)
    out = {
        "sizes": sizes,
        "repeat": args.repeat,
        "summary": summarise(sizes, ours, bare),
        "parklink": {str(n): v for n, v in ours.items()},
        "bare": {str(n): v for n, v in bare.items()},
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
