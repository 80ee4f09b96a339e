"""Render docs/BENCHMARKS.md from the stored results (`<results>/*.json`) and bench/BENCHMARKS.md.j2.

    python -m bench.report [--results docs/bench] [--doc docs/BENCHMARKS.md]

The template holds the prose; the tables and figures come from the results through the helpers
below, each of which shows `failed: <reason>`, `not present` or `not run yet` instead of numbers
when its benchmark did not deliver, and `n/a` for a figure that is missing.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from bench.growth import growth, overall

TEMPLATE = Path(__file__).with_name("BENCHMARKS.md.j2")
ROOT = Path(__file__).resolve().parent.parent

Row = Sequence[object]


# ---- formatting ---------------------------------------------------------------------------------


def num(x: Any, digits: int = 0) -> str:
    """1,234 / 1,234.5; n/a for None or NaN."""
    if x is None or (isinstance(x, float) and x != x):
        return "n/a"
    return f"{x:,.{digits}f}"


def sig(x: Any, figures: int = 3) -> str:
    """About `figures` significant figures: 0.0234, 1.23, 12.3, 1,234."""
    if x is None or (isinstance(x, float) and x != x):
        return "n/a"
    if x == 0:
        return "0"
    magnitude = len(str(int(abs(x)))) if abs(x) >= 1 else 0
    digits = max(0, figures - magnitude)
    if abs(x) < 1:
        lead = f"{abs(x):.10f}".split(".")[1]
        digits = len(lead) - len(lead.lstrip("0")) + figures - 1
    return f"{x:,.{digits}f}"


def times(x: Any, digits: int = 2) -> str:
    """A ratio: 1.16×."""
    return "n/a" if x is None or (isinstance(x, float) and x != x) else f"{x:.{digits}f}×"


def mb(nbytes: Any) -> str:
    return (
        "n/a" if nbytes is None else f"{nbytes / 1e6:,.1f} MB" if nbytes >= 1e6 else f"{nbytes / 1e3:,.0f} kB"
    )


def seconds(x: Any) -> str:
    """0.52 ms / 23.4 ms / 1.23 s."""
    if x is None or (isinstance(x, float) and x != x):
        return "n/a"
    return f"{sig(x * 1000)} ms" if x < 1 else f"{sig(x)} s"


def millions(x: Any) -> str:
    return f"{x / 1e6:.2f} M"


def ratios_list(xs: Sequence[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


def plain_list(xs: Sequence[object]) -> str:
    return ", ".join(str(x) for x in xs)


def size(n: int) -> str:
    return f"{n:,}"


def table(header: Row, rows: Iterable[Row], align: str | None = None) -> str:
    """A markdown table; `align` is one letter per column, l or r (default: first l, rest r)."""
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---- the records --------------------------------------------------------------------------------


class Report:
    """The stored results and what the template calls."""

    def __init__(self, records: Mapping[str, dict[str, Any]], suite: dict[str, Any]) -> None:
        self.records = records
        self.suite = suite

    # -- status and single figures

    def ok(self, name: str) -> bool:
        return self.records.get(name, {}).get("status") == "ok"

    def result(self, name: str) -> Any:
        return self.records[name]["result"]

    def problem(self, name: str) -> str:
        """Why there are no figures for `name`, as the page says it."""
        record = self.records.get(name)
        if record is None:
            return "*not run yet* (`python -m bench --only " + name + "`)"
        if record["status"] == "not present":
            return f"**not present**: {record.get('error', '')}"
        return f"**failed: {record.get('error', 'unknown reason')}**"

    def status(self, name: str) -> str:
        """The line under a section title: the command, when it ran, how long; or the failure."""
        record = self.records.get(name)
        if record is None or record["status"] != "ok":
            return self.problem(name)
        quick = " (a `--quick` smoke run)" if record.get("quick") else ""
        dirty = " with uncommitted changes" if record.get("uncommitted_changes") else ""
        return (
            f"Measured {record['measured']}{quick}, commit `{record.get('commit') or '?'}`{dirty}, "
            f"in {record.get('seconds', 0):.0f} s: `{record['command']}`"
        )

    def value(self, name: str, path: str) -> Any:
        """The raw value at a dotted path of a result, or None (for the template's conditions)."""
        if not self.ok(name):
            return None
        value: Any = self.result(name)
        try:
            for key in path.split("."):
                value = value[int(key)] if isinstance(value, list) else value[key]
        except (KeyError, IndexError, TypeError, ValueError):
            return None
        return value

    def fig(self, name: str, path: str, fmt: Callable[[Any], str] | str = sig) -> str:
        """One figure from a result by a dotted path (`summary.ratios.cpu_per_value_vs_bare_raw`)."""
        value = self.value(name, path)
        if value is None:
            return "n/a"
        if isinstance(fmt, str):
            return fmt.format(value)
        return fmt(value)

    def section(self, name: str, render: Callable[[Any], str]) -> str:
        """`render(result)` when the benchmark delivered, else why not; a rendering bug shows too."""
        if not self.ok(name):
            return self.problem(name)
        try:
            return render(self.result(name))
        except Exception as exc:  # the page must still be written
            return f"**could not render: {exc!r}**"

    # -- tables

    def summary_table(self, names: Sequence[str], titles: Mapping[str, str]) -> str:
        rows = []
        for name in names:
            record = self.records.get(name)
            if record is None:
                rows.append((f"`{name}`", titles[name], "not run yet", "", ""))
                continue
            state = record["status"] + (f": {record.get('error')}" if record["status"] != "ok" else "")
            took = f"{record['seconds']:.0f} s" if "seconds" in record else ""
            load = record.get("load_average_after")
            rows.append((f"`{name}`", titles[name], state, took, f"{load[0]:.1f}" if load else ""))
        header = ("benchmark", "what", "status", "time", "load after (1 min)")
        return table(header, rows, "lllrr")

    def opcua_table(self) -> str:
        contenders = (
            ("bare-raw", "bare asyncua, raw `publish_callback` loop (cheapest path, builds nothing)"),
            ("bare-handler", "bare asyncua, documented callback handler"),
            ("parklink", "**parklink** OPC UA connector → `Snapshot`"),
        )
        rows = []
        for name, nodes in (("opcua_ingest_1k", 1000), ("opcua_ingest_10k", 10000)):
            if not self.ok(name):
                rows.append((size(nodes), "", self.problem(name), "", "", "", ""))
                continue
            summary = self.result(name)["summary"]
            for key, label in contenders:
                s = summary.get(key)
                if s is None:
                    continue
                rows.append(
                    (
                        size(nodes),
                        label,
                        num(s["values_per_second"]),
                        num(s["cpu_ms_per_1000_values"], 1),
                        num(s["subscribe_seconds"], 2),
                        num(s["rss_kb_per_node"], 2),
                        num(s["rss_mb_imports"], 1),
                    )
                )
        header = (
            "nodes",
            "contender",
            "values/s",
            "CPU ms per 1,000 values",
            "subscribe all (s)",
            "RSS KB per node",
            "RSS after imports (MB)",
        )
        return table(header, rows, "llrrrrr")

    def opcua_ratios(self) -> str:
        rows = []
        for name, nodes in (("opcua_ingest_1k", 1000), ("opcua_ingest_10k", 10000)):
            if not self.ok(name):
                rows.append((size(nodes), self.problem(name), "", "", "", ""))
                continue
            result = self.result(name)["summary"]
            ratios, paired = result["ratios"], result["paired_ratios_median"]
            rows.append(
                (
                    size(nodes),
                    f"{times(paired['throughput_vs_bare_raw'])} ({times(ratios['throughput_vs_bare_raw'])})",
                    f"**{times(paired['cpu_per_value_vs_bare_raw'])}** "
                    f"({times(ratios['cpu_per_value_vs_bare_raw'])})",
                    times(ratios["cpu_per_value_vs_bare_handler"]),
                    times(ratios["subscribe_time_vs_bare_raw"]),
                    times(ratios["rss_per_node_vs_bare_raw"]),
                )
            )
        header = (
            "nodes",
            "values/s vs raw",
            "CPU per value vs raw",
            "CPU per value vs handler",
            "subscribe time vs raw",
            "RSS per node vs raw",
        )
        return table(header, rows)

    def decode_table(self, result: Any) -> str:
        runs = result.get("runs", [result])
        rows = [
            (
                size(r["items"]),
                num(r["us_per_value"]["asyncua-decode"], 2),
                num(r["us_per_value"]["per-value"], 2),
                num(r["us_per_value"]["decode_items"], 2),
                num(r["us_per_value"]["snapshot-push"], 3),
                num(r["parklink_ingest_us_per_value"], 2),
                times(r["parklink_ingest_us_per_value"] / r["us_per_value"]["asyncua-decode"]),
            )
            for r in runs
        ]
        header = (
            "values per publish",
            "asyncua decoding the bytes (every client pays it)",
            "parklink per value, before (`decode_data_value` + `Sample`)",
            "`decode_items`",
            "`Snapshot.push`",
            "parklink's ingest (`decode_items` + push)",
            "… vs asyncua's decoding",
        )
        return table(header, rows)

    def plan_table(self, result: Any) -> str:
        rows = [
            (
                r["max_registers"],
                r["max_gap"],
                f"{r['readable_ranges']:,} (holes > 3 registers unreadable)" if r["readable_ranges"] else "—",
                f"**{r['requests']:,}**" if r["requests"] == r["minimum"] else f"{r['requests']:,} (!)",
                f"{r['minimum']:,}",
                f"{r['registers_read']:,}",
                f"{r['plan_ms']} ms",
            )
            for r in result["plan"]
        ]
        header = (
            "max registers",
            "`max_gap`",
            "readable ranges",
            "requests planned",
            "exact minimum",
            "registers read",
            "plan time",
        )
        return table(header, rows, "rrlrrrr")

    def modbus_throughput_table(self, result: Any) -> str:
        med = result["throughput"]["median"]
        rows = [
            (
                label,
                num(med[key]["registers_per_s"]),
                num(med[key]["values_per_s"]),
                num(med[key]["polls_per_s"], 1),
                f"{num(med[key]['cpu_ms_per_1000_values'], 1)} ms",
            )
            for key, label in (
                ("bare", "bare pymodbus, same blocks, no decoding"),
                ("parklink", "**parklink** → `Snapshot`"),
            )
        ]
        header = ("contender", "registers/s", "values/s", "polls/s", "client CPU per 1,000 values")
        return table(header, rows)

    def jitter_table(self, result: Any) -> str:
        rows = []
        for key, label in (("with_10_dead", "40 healthy + 10 dead"), ("healthy_only", "40 healthy only")):
            run = result["jitter"][key]
            start, batch = run["start"], run["batch"]
            rows.append(
                (
                    f"{label} ({start['periods']:,} periods)",
                    *(f"{start[k]} ms" for k in ("p50_ms", "p99_ms", "max_ms")),
                    *(f"{batch[k]} ms" for k in ("p50_ms", "p99_ms", "max_ms")),
                )
            )
        header = ("", "start p50", "start p99", "start max", "batch p50", "batch p99", "batch max")
        return table(header, rows)

    def scrape_table(self, result: Any) -> str:
        rows = []
        for n in result["sizes"]:
            s = result["summary"]["by_size"][str(n)]
            p = result["parklink"][str(n)]["scrape"]
            b = result["bare"][str(n)]["scrape"]
            rows.append(
                (
                    size(n),
                    f"{p['series']:,}",
                    mb(s["scrape_bytes"]),
                    f"**{seconds(s['scrape_seconds'])}**",
                    seconds(s.get("collect_seconds")),
                    seconds(s.get("scrape_seconds_gc_frozen")),
                    f"{num(p['us_per_series'], 1)} µs",
                    seconds(s["same_output_bare_scrape_seconds"]),
                    f"**{times(s['scrape_vs_same_output_bare'])}**",
                    f"{b['series']:,}",
                    mb(s["bare_gauge_scrape_bytes"]),
                    seconds(s["bare_gauge_scrape_seconds"]),
                    f"{num(b['us_per_series'], 1)} µs",
                    f"{times(s['scrape_vs_bare_gauge'])} / {times(s['bytes_vs_bare_gauge'])}",
                    f"{num(s['scrape_peak_mb'], 0)} / {num(s['bare_gauge_scrape_peak_mb'], 0)} MB",
                )
            )
        header = (
            "signals",
            "parklink series",
            "bytes",
            "scrape (CPU)",
            "… of which `collect`",
            "scrape after `gc.freeze()`",
            "per series",
            "bare collector, same output",
            "parklink / same output (same-round median)",
            "bare `Gauge` series",
            "bytes",
            "scrape (CPU)",
            "per series",
            "parklink / bare `Gauge`: time / bytes",
            "scrape peak memory parklink / bare",
        )
        return table(header, rows)

    def memory_table(self, result: Any) -> str:
        rows = []
        for n in result["sizes"]:
            s = result["summary"]["by_size"][str(n)]
            stages = result["parklink"][str(n)]["kb_per_signal"]
            bare = result["bare"][str(n)]["kb_per_signal"]
            rows.append(
                (
                    size(n),
                    num(stages["park"], 2),
                    num(stages["snapshot"], 2),
                    num(stages["connectors"], 2),
                    num(stages["collector"], 2),
                    f"**{num(s['kb_per_signal'], 2)}**",
                    num(bare["gauges"], 2),
                    num(bare["nodes"], 2),
                    f"**{num(s['bare_kb_per_signal'], 2)}**",
                    f"**{num(s['kb_per_signal_above_bare'], 2)}** ({times(s['memory_vs_bare'])})",
                    num(stages["kpi"], 2),
                )
            )
        header = (
            "signals",
            "config + resolved park",
            "snapshot",
            "connectors (no session)",
            "`ParkCollector`",
            "parklink signal path",
            "bare `Gauge` children",
            "bare asyncua `Node`s",
            "bare total",
            "parklink above bare",
            "+ KPI service (separately)",
        )
        return table(header, rows)

    def kpi_replay_row(self, result: Any) -> str:
        r = result
        rows = [
            (
                f"{r['assets']:,} × {r['seconds_replayed'] / 60:.0f} min",
                f"{r['samples'] / 1e6:.2f} M",
                num(r["feed_microseconds_per_sample"], 2),
                f"{r['feed_samples_per_second'] / 1e6:.2f} M",
                seconds(r["results_seconds"]),
                seconds(r["update_seconds"]),
                f"{100 * r['live_core_share_at_10s_interval']:.1f} %",
                f"{r['peak_rss_mb']:,.0f} MB",
            )
        ]
        header = (
            "assets × span",
            "samples",
            "feed µs/sample",
            "samples/s",
            "all-scope KPIs",
            "`update()`",
            "live share of a core (update every 10 s)",
            "peak RSS",
        )
        return table(header, rows)

    def kpi_scale_table(self, result: Any) -> str:
        rows = []
        for n in result["sizes"]:
            r = result["runs"][str(n)]
            rows.append(
                (
                    size(n),
                    f"{r['assets']:,}",
                    f"{r['seconds_replayed']:,} s",
                    num(r["feed_microseconds_per_sample"], 2),
                    seconds(result["totals"]["feed_seconds_per_park_second"][str(n)]),
                    seconds(r["results_seconds"]),
                    seconds(r["update_seconds"]),
                    f"{100 * r['live_core_share_at_10s_interval']:.0f} %",
                    f"{r['peak_rss_mb']:,.0f} MB",
                )
            )
        header = (
            "signals",
            "assets",
            "replayed",
            "feed µs/sample",
            "feed one second of the park",
            "all-scope KPIs",
            "`update()`",
            "share of a core at 10 s",
            "peak RSS",
        )
        return table(header, rows)

    def mqtt_table(self) -> str:
        """The two end-to-end runs side by side."""
        names = [n for n in ("mqtt_e2e_uns", "mqtt_e2e_uns_paced", "mqtt_e2e_sparkplug") if self.ok(n)]
        if not names:
            return ""
        results = [self.result(n) for n in names]

        def row(label: str, get: Callable[[Any], Any], fmt: Callable[[Any], str]) -> tuple[str, ...]:
            return (label, *(fmt(get(r)) for r in results))

        ms = lambda v: f"{v * 1000:,.0f} ms"  # noqa: E731
        count = lambda v: f"{v:,.0f}"  # noqa: E731
        rows = [
            row("payload", lambda r: r["payload"], str),
            row(
                "signals × changes per second",
                lambda r: f"{r['signals']:,} × {r['changes_per_second_per_signal']:g}",
                str,
            ),
            row("values offered per second", lambda r: r["offered_messages_per_second"], count),
            row("values reaching the hub per second", lambda r: r["messages_per_second"], count),
            row("values sent / received", lambda r: f"{r['sent']:,} / {r['received']:,}", str),
            row("latency p50", lambda r: r["latency_seconds"]["p50"], ms),
            row("latency p90", lambda r: r["latency_seconds"]["p90"], ms),
            row("latency p99", lambda r: r["latency_seconds"]["p99"], ms),
            row("latency max", lambda r: r["latency_seconds"]["max"], ms),
            row(
                "CPU s/s: edge, broker, hub",
                lambda r: r["cpu_seconds_per_second"],
                lambda c: f"{c['edge']:.2f}, {c['broker']:.2f}, {c['hub']:.2f}",
            ),
            row(
                "bare aiomqtt QoS 1 publish, msgs/s (same run)",
                lambda r: r["bare_aiomqtt_publish_per_second"],
                count,
            ),
        ]
        return table(("", *names), rows, "l" + "r" * len(names))

    def generic_table(self, result: Any) -> str:
        """Top-level figures of a result the page has no dedicated table for."""
        flat: dict[str, Any] = {}
        for key, value in result.items():
            if isinstance(value, dict):
                flat.update({f"{key}.{k}": v for k, v in value.items()})
            else:
                flat[key] = value
        rows = [(f"`{k}`", sig(v)) for k, v in flat.items() if isinstance(v, int | float)]
        return table(("figure", "value"), rows, "lr")

    # -- growth

    def growth_rows(self) -> list[tuple[str, str, dict[int, float], Callable[[float], str]]]:
        """(cost, benchmark, size → total, format) for every cost the suite measures at several sizes."""
        out: list[tuple[str, str, dict[int, float], Callable[[float], str]]] = []

        def add(label: str, name: str, values: Callable[[Any], Mapping[Any, float]], fmt: Any) -> None:
            if not self.ok(name):
                out.append((label, name, {}, fmt))
                return
            try:
                out.append(
                    (label, name, {int(k): float(v) for k, v in values(self.result(name)).items()}, fmt)
                )
            except (KeyError, TypeError, ValueError):
                out.append((label, name, {}, fmt))

        def totals(key: str) -> Callable[[Any], Mapping[Any, float]]:
            return lambda r: r["summary"]["totals"][key]

        add("`/metrics` scrape time (parklink)", "scale", totals("scrape_seconds"), seconds)
        add("`/metrics` scrape bytes (parklink)", "scale", totals("scrape_bytes"), mb)
        add("`/metrics` scrape time (bare `Gauge`)", "scale", totals("bare_gauge_scrape_seconds"), seconds)
        add("scrape peak memory (parklink)", "scale", totals("scrape_peak_mb"), lambda x: f"{x:,.0f} MB")
        add("memory, signal path (parklink)", "scale", totals("memory_mb"), lambda x: f"{x:,.1f} MB")
        add("memory with the KPI service", "scale", totals("memory_mb_with_kpi"), lambda x: f"{x:,.1f} MB")
        add(
            "memory (bare `Gauge`s + asyncua `Node`s)",
            "scale",
            totals("bare_memory_mb"),
            lambda x: f"{x:,.1f} MB",
        )
        add("`Snapshot.push` of every signal", "scale", totals("push_seconds_per_batch"), seconds)

        def decode(key: str) -> Callable[[Any], Mapping[Any, float]]:
            return lambda r: {
                run["items"]: (
                    run["parklink_ingest_us_per_value"] if key == "ingest" else run["us_per_value"][key]
                )
                * run["items"]
                / 1e6
                for run in r["runs"]
            }

        add("OPC UA publish: asyncua decoding", "opcua_decode", decode("asyncua-decode"), seconds)
        add("OPC UA publish: parklink's ingest (convert + push)", "opcua_decode", decode("ingest"), seconds)

        live: dict[int, float] = {}
        blame = "opcua_ingest_10k"
        for name, nodes in (("opcua_ingest_1k", 1000), ("opcua_ingest_10k", 10000)):
            ours = self.result(name)["summary"].get("parklink", {}) if self.ok(name) else {}
            if "cpu_ms_per_1000_values" in ours:
                live[nodes] = ours["cpu_ms_per_1000_values"] * nodes / 1e6
            else:
                blame = name
        out.append(("OPC UA live: client CPU for one value of every node", blame, live, seconds))

        def kpi(key: str) -> Callable[[Any], Mapping[Any, float]]:
            return lambda r: r["totals"][key]

        add(
            "KPI engine: feed one second of the park",
            "kpi_scale",
            kpi("feed_seconds_per_park_second"),
            seconds,
        )
        add("KPI service: one `update()`", "kpi_scale", kpi("update_seconds"), seconds)
        add("KPI: every scope's KPIs for the replayed span", "kpi_scale", kpi("results_seconds"), seconds)
        return out

    def growth_table(self) -> str:
        sizes = (1000, 10000, 100000)
        rows: list[Row] = []
        for label, name, values, fmt in self.growth_rows():
            if not values:
                rows.append((label, "", "", "", "", "", self.problem(name)))
                continue
            steps = {(s["from"], s["to"]): s for s in growth(values)}
            step_cells = []
            for a, b in ((1000, 10000), (10000, 100000)):
                s = steps.get((a, b))
                step_cells.append(f"{s['ratio']:.1f}× ({s['verdict']})" if s else "not measured")
            rows.append(
                (
                    label,
                    *(fmt(values[n]) if n in values else "not measured" for n in sizes),
                    *step_cells,
                    f"**{overall(growth(values))}**",
                )
            )
        header = ("cost", "1,000", "10,000", "100,000", "× 1k → 10k", "× 10k → 100k", "verdict")
        return table(header, rows, "lrrrrrl")

    # -- profile

    def profile_share(self, what: str, needle: str, kind: str = "top_inclusive") -> str:
        """The share of the first frame containing `needle` in a profile's list, e.g. '22.8 %'."""
        p = self.value("profile", what) or {}
        lists = [p.get(kind, []), p.get("parklink_functions_inclusive", [])]
        for entries in lists if kind == "top_inclusive" else lists[:1]:
            for entry in entries:
                if needle in entry["frame"]:
                    return f"{entry['percent']} %"
        return "not among the top frames" if p else "n/a"

    def profile_tables(self, what: str) -> str:
        if not self.ok("profile"):
            return self.problem("profile")
        p = self.result("profile").get(what)
        if p is None:
            return "*not profiled in this run*"
        own = table(
            ("function (own time)", "share"),
            [(f"`{f['frame']}`", f"{f['percent']} %") for f in p["top_own"][:10]],
        )
        owners = ", ".join(f"{k} {v} %" for k, v in p["own_time_by_owner_percent"].items())
        ours = ", ".join(f"`{f['frame']}` {f['percent']} %" for f in p["parklink_functions_inclusive"][:5])
        return (
            f"`{p['command']}` under py-spy, {p['samples']:,} samples "
            f"(speedscope file: `{p['speedscope']}`).\n\n"
            f"Own time by whose code: {owners}.\n\n"
            f"parklink's functions, callees included: {ours or 'none sampled'}.\n\n{own}"
        )


def load(results: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    records: dict[str, dict[str, Any]] = {}
    for path in sorted(results.glob("*.json")):
        if path.name == "suite.json":
            continue
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "name" in data and "status" in data:
            records[data["name"]] = data
    suite_file = results / "suite.json"
    suite = json.loads(suite_file.read_text()) if suite_file.exists() else {}
    return records, suite


def render(results: Path) -> str:
    from bench.suite import BENCHMARKS

    records, suite = load(results)
    report = Report(records, suite)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE.parent),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    template = env.get_template(TEMPLATE.name)
    names = [b.name for b in BENCHMARKS]
    titles = {b.name: b.title for b in BENCHMARKS}
    return template.render(
        r=report,
        suite=suite,
        environment=suite.get("environment", {}),
        benchmarks=names,
        titles=titles,
        num=num,
        sig=sig,
        times=times,
        seconds=seconds,
        mb=mb,
        millions=millions,
        ratios_list=ratios_list,
        plain_list=plain_list,
    )


def render_file(results: Path, doc: Path) -> None:
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(render(results))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "bench")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    render_file(args.results, args.doc)


if __name__ == "__main__":
    main()
