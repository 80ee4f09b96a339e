"""The benchmark suite: every benchmark in its own process with a time limit, then docs/BENCHMARKS.md.

    python -m bench                 # everything (9–11 minutes on 2 cores), writes the docs
    python -m bench --quick         # smoke run (≈ 2 minutes), written to a temporary directory
    python -m bench --only scale    # one benchmark; the page is regenerated with the others' last results
    python -m bench --list          # the benchmarks, their commands and whether they are present

Each benchmark is a module of `bench/` that prints one JSON document on stdout. The runner starts
it with the arguments of the table below, in a session of its own (so that a timeout stops the
servers it started too), and stores `<results>/<name>.json`: the command, when and where it ran,
how long it took, and its result, or `failed: <reason>` (exit status, exception, timeout). A
failed benchmark never stops the suite. Then `bench/BENCHMARKS.md.j2` is rendered with every
stored result into the page (`bench.report`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "bench"
DOC = ROOT / "docs" / "BENCHMARKS.md"
RESULTS_ARG = "{results}"  # replaced by the results directory in a benchmark's arguments


@dataclass(frozen=True)
class Bench:
    """One benchmark of the suite: `python -m <module> <args>`."""

    name: str  # for --only, and the results file <name>.json
    module: str
    title: str
    args: tuple[str, ...]  # the full run
    quick: tuple[str, ...] | None  # the --quick run; None: left out of it
    timeout: float  # seconds, full run (a quick run gets the same limit)
    optional: bool = False  # a module that may be absent: reported 'not present', not failed
    needs: tuple[str, ...] = field(default=())  # executables it needs (e.g. py-spy)


# The table of benchmarks, in the order they run. With these sizes the whole suite took 10.7 min
# on 2 cores shared with test runs (8.9 min without mqtt_e2e); see docs/BENCHMARKS.md for what
# each measures.
BENCHMARKS: tuple[Bench, ...] = (
    Bench(
        "opcua_ingest_1k",
        "bench.opcua_ingest",
        "OPC UA ingest, 1,000 nodes, vs bare asyncua",
        ("--nodes", "1000", "--seconds", "5", "--rounds", "2"),
        ("--nodes", "1000", "--seconds", "2", "--rounds", "1"),
        timeout=180,
    ),
    Bench(
        "opcua_ingest_10k",
        "bench.opcua_ingest",
        "OPC UA ingest, 10,000 nodes, vs bare asyncua",
        ("--nodes", "10000", "--seconds", "5", "--rounds", "2"),
        None,
        timeout=300,
    ),
    Bench(
        "opcua_decode",
        "bench.opcua_decode",
        "OPC UA hot path without a server, 1,000 to 100,000 values per publish",
        ("--items", "1000,10000,100000", "--repeat", "5"),
        ("--items", "1000,10000", "--repeat", "3"),
        timeout=180,
    ),
    Bench(
        "modbus",
        "bench.modbus_bench",
        "Modbus: request planning, throughput vs bare pymodbus, poll jitter",
        ("all", "--rounds", "4", "--seconds", "3", "--jitter-seconds", "10"),
        ("all", "--rounds", "1", "--seconds", "1", "--jitter-seconds", "5"),
        timeout=240,
    ),
    Bench(
        "scale",
        "bench.scale",
        "/metrics scrape, memory per signal, snapshot push: 1,000 to 100,000 signals",
        ("--signals", "1000,10000,100000", "--repeat", "3"),
        ("--signals", "1000,10000", "--repeat", "3"),
        timeout=420,
    ),
    Bench(
        "kpi_replay",
        "bench.kpi_bench",
        "KPI engine: replay throughput, 1,000 assets",
        ("--assets", "1000", "--seconds", "300", "--update-runs", "3"),
        ("--assets", "100", "--seconds", "300", "--update-runs", "1"),
        timeout=240,
    ),
    Bench(
        "kpi_scale",
        "bench.kpi_bench",
        "KPI engine: 1,000 to 100,000 signals",
        ("--signals", "1000,10000,100000", "--samples", "300000", "--update-runs", "1"),
        ("--signals", "1000,10000", "--samples", "100000", "--update-runs", "1"),
        timeout=420,
    ),
    Bench(
        "profile",
        "bench.profile_hot_path",
        "py-spy profiles of the OPC UA ingest and the /metrics scrape",
        ("--what", "opcua,scrape", "--seconds", "10", "--nodes", "10000", "--signals", "100000"),
        ("--what", "scrape", "--seconds", "3", "--signals", "10000"),
        timeout=300,
        needs=("py-spy",),
    ),
    # ---- MQTT: end-to-end latency edge → broker → hub -------------------------------------------
    # 10,000 signals per edge: UNS JSON (one QoS 1 message per value) changing every second (more
    # than one session carries: throughput) and every 5 s (latency below the ceiling), and
    # Sparkplug B changing every second.
    Bench(
        "mqtt_e2e_uns",
        "bench.mqtt_e2e",
        "MQTT end to end, UNS JSON, 10,000 signals every second",
        ("--signals", "10000", "--seconds", "20", "--rate", "1"),
        ("--signals", "1000", "--seconds", "5", "--rate", "1"),
        timeout=240,
    ),
    Bench(
        "mqtt_e2e_uns_paced",
        "bench.mqtt_e2e",
        "MQTT end to end, UNS JSON, 10,000 signals every 5 s",
        ("--signals", "10000", "--seconds", "20", "--rate", "0.2"),
        None,
        timeout=240,
    ),
    Bench(
        "mqtt_e2e_sparkplug",
        "bench.mqtt_e2e",
        "MQTT end to end, Sparkplug B, 10,000 signals every second",
        ("--signals", "10000", "--seconds", "20", "--payload", "sparkplug"),
        ("--signals", "1000", "--seconds", "5", "--payload", "sparkplug"),
        timeout=240,
    ),
)

BY_NAME = {b.name: b for b in BENCHMARKS}


def present(bench: Bench) -> bool:
    try:
        return importlib.util.find_spec(bench.module) is not None
    except ModuleNotFoundError:
        return False


def have(executable: str) -> bool:
    """On PATH or next to this Python (a venv's bin/)."""
    return bool(shutil.which(executable)) or Path(sys.executable).with_name(executable).exists()


def arguments(bench: Bench, quick: bool, results: Path) -> list[str]:
    args = bench.quick if quick else bench.args
    assert args is not None
    out = [str(results) if a == RESULTS_ARG else a for a in args]
    if bench.module == "bench.profile_hot_path":
        out += ["--out", str(results / "profiles")]
    return out


def display(cmd: Sequence[str]) -> str:
    """The command as the docs show it: `python -m …`, paths relative to the repository."""
    parts = ["python" if c == sys.executable else c for c in cmd]
    return shlex.join(p.replace(str(ROOT) + os.sep, "") for p in parts)


def git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def environment() -> dict[str, Any]:
    """The machine, Python, library versions, commit and load, as the page reports them."""
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gib = float("nan")
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = int(line.split()[1]) / 1024**2
    versions = {}
    for dist in ("asyncua", "pymodbus", "prometheus-client", "pydantic", "py-spy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory_gib, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "libraries": versions,
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(status),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def stop_group(proc: subprocess.Popen[str]) -> None:
    """Stop a benchmark and everything it started (its own session): TERM, then KILL."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def reason_of(stderr: str, returncode: int) -> str:
    """The last line that looks like an exception (else the last line), or the exit status."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception", "Exit", "Interrupt", "Timeout")) and " " not in head:
            return line[:300]
    return (lines[-1][:300] if lines else "no output") + f" (exit status {returncode})"


def run_one(bench: Bench, quick: bool, results: Path, timeout_factor: float = 1.0) -> dict[str, Any]:
    """Run one benchmark; its record (also written to `<results>/<name>.json`)."""
    record: dict[str, Any] = {
        "name": bench.name,
        "title": bench.title,
        "module": bench.module,
        "quick": quick,
        "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
    }
    if not present(bench):
        record.update(status="not present", error=f"module {bench.module} does not exist yet")
        return record
    cmd = [sys.executable, "-m", bench.module, *arguments(bench, quick, results)]
    record["command"] = display(cmd)
    missing = [exe for exe in bench.needs if not have(exe)]
    if missing:
        record.update(
            status="failed", error=f"{', '.join(missing)} not installed (pip install -e '.[bench]')"
        )
        return record
    limit = bench.timeout * timeout_factor
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        out, err = proc.communicate()
        record.update(
            status="failed", error=f"timed out after {limit:.0f} s", seconds=time.monotonic() - started
        )
        record["stderr_tail"] = err.splitlines()[-20:]
        return record
    except BaseException:  # Ctrl-C: leave no server behind
        stop_group(proc)
        raise
    record["seconds"] = time.monotonic() - started
    record["load_average_after"] = [round(x, 2) for x in os.getloadavg()]  # others on the machine?
    if proc.returncode != 0:
        record.update(status="failed", error=reason_of(err, proc.returncode))
        record["stderr_tail"] = err.splitlines()[-20:]
        return record
    try:
        record["result"] = json.loads(out)
        record["status"] = "ok"
    except json.JSONDecodeError as exc:
        record.update(status="failed", error=f"output is not JSON ({exc})")
    return record


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, allow_nan=True) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, about 2 minutes")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only NAME (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--results", type=Path, help="where the JSON results go (default docs/bench)")
    parser.add_argument("--doc", type=Path, help="the page to write (default docs/BENCHMARKS.md)")
    parser.add_argument("--no-doc", action="store_true", help="do not write the page")
    parser.add_argument("--timeout-factor", type=float, default=1.0, help="scale every time limit")
    args = parser.parse_args(argv)

    if args.list:
        for b in BENCHMARKS:
            state = "present" if present(b) else "not present"
            quick = "(not in --quick)" if b.quick is None else "python -m " + shlex.join([b.module, *b.quick])
            print(f"{b.name:18} {state:12} limit {b.timeout:.0f} s  {b.title}")
            print(f"{'':18} full:  python -m {shlex.join([b.module, *b.args])}")
            print(f"{'':18} quick: {quick}")
        return 0

    unknown = [n for n in args.only or () if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; --list shows them")
    if args.quick:
        default_results = Path(tempfile.gettempdir()) / "parklink-bench-quick"
        results: Path = args.results or default_results
        doc: Path = args.doc or results / "BENCHMARKS.md"
    else:
        results = args.results or RESULTS
        doc = args.doc or DOC
    selected = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    if args.quick:
        selected = [b for b in selected if b.quick is not None]

    env = environment()
    suite_started = time.monotonic()
    print(f"parklink benchmarks -> {results}", flush=True)
    for bench in selected:
        print(f"  {bench.name:18} ...", end=" ", flush=True)
        record = run_one(bench, args.quick, results, args.timeout_factor)
        write_json(results / f"{bench.name}.json", record)
        took = f"{record['seconds']:.0f} s" if "seconds" in record else ""
        detail = "" if record["status"] == "ok" else f": {record.get('error')}"
        print(f"{record['status']}{detail} {took}", flush=True)
    total = time.monotonic() - suite_started

    suite_file = results / "suite.json"
    suite: dict[str, Any] = {}
    if suite_file.exists():
        with contextlib.suppress(json.JSONDecodeError):
            suite = json.loads(suite_file.read_text())
    if args.only:  # a partial run: keep the last full run's environment and time, note this one
        suite.setdefault("environment", env)
        suite.setdefault("partial_runs", []).append(
            {"date": env["date"], "commit": env["commit"], "benchmarks": [b.name for b in selected]}
        )
    else:
        suite = {"environment": env, "quick": args.quick, "seconds": total, "command": _suite_command(args)}
    write_json(suite_file, suite)
    print(f"done in {total / 60:.1f} min", flush=True)

    if not args.no_doc:
        from bench.report import render_file

        render_file(results, doc)
        print(f"wrote {doc}", flush=True)
    failed = [
        b.name for b in selected if json.loads((results / f"{b.name}.json").read_text())["status"] == "failed"
    ]
    return 1 if failed else 0


def _suite_command(args: argparse.Namespace) -> str:
    return "python -m bench" + (" --quick" if args.quick else "")
