"""Profile the hot path with py-spy: OPC UA ingest (device → snapshot) and the `/metrics` scrape.

    python -m bench.profile_hot_path --what opcua,scrape --seconds 10 --nodes 10000 --signals 100000

- `opcua`: a `bench.opcua_server` process with `--nodes` changing variables and parklink's OPC UA
  connector pushing into a `Snapshot` (`bench.opcua_ingest --turn parklink`); py-spy attaches once
  every initial value arrived and the warm-up is over, and samples the steady state for `--seconds`.
- `scrape`: a process holding the park of `bench.scale` with `--signals` signals, its snapshot and
  `ParkCollector`, calling `generate_latest` back to back; py-spy samples `--seconds` of it.

py-spy (`pip install -e '.[bench]'`) samples the process from outside (`--nonblocking`, 100 Hz).
Each profile is written as a speedscope file (open it at https://www.speedscope.app/) next to the
JSON results, and summarised here: the top functions by own time and by inclusive time, and the
share of samples whose innermost frame is parklink's code, asyncua's, prometheus_client's, the
standard library's or something else (the interpreter's own, e.g. garbage collection).
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from bench.opcua_ingest import free_port

ROOT = Path(__file__).resolve().parent.parent
PARKLINK_DIRS = ("connectors/", "orchestrator/", "exporters/", "models/")
RATE = 100


def owner(file: str) -> str:
    """Whose code a frame (by its absolute file) is: parklink, a library, the stdlib, the bench."""
    path = file.replace("\\", "/")
    if "site-packages/" in path:
        lib = path.split("site-packages/", 1)[1].split("/", 1)[0]
        return lib if lib in ("asyncua", "prometheus_client", "pymodbus", "pydantic") else "other libraries"
    if path == "<string>":
        return "generated code (namedtuple constructors)"
    if not path or path.startswith("<"):
        return "interpreter"
    try:
        relative = str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return "python stdlib"
    if relative.startswith(PARKLINK_DIRS):
        return "parklink"
    return "bench driver" if relative.startswith("bench/") else "other"


def short(file: str) -> str:
    """A frame's file relative to the repository, site-packages or the stdlib, for reading."""
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1]
    try:
        return str(Path(file).resolve().relative_to(ROOT))
    except ValueError:
        pass
    if "/lib/python3." in file:
        return file.split("/lib/python3.", 1)[1].split("/", 1)[-1]
    return file


def summarise(speedscope: Path, top: int = 15) -> dict[str, Any]:
    """Top functions by own and inclusive samples, and the share of each owner, from a speedscope file."""
    data = json.loads(speedscope.read_text())
    frames = data["shared"]["frames"]
    keys = [f"{f['name']} ({short(f.get('file') or '')})" for f in frames]
    owners = [owner(f.get("file") or "") for f in frames]
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()  # parklink's functions, callees included
    by_owner: collections.Counter[str] = collections.Counter()
    total = 0.0  # py-spy weighs each sample by the seconds it stands for
    samples = 0
    for profile in data["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            if not stack:
                continue
            total += weight
            samples += 1
            own[keys[stack[-1]]] += weight
            by_owner[owners[stack[-1]]] += weight
            for i in set(stack):
                inclusive[keys[i]] += weight
                if owners[i] == "parklink":
                    ours[keys[i]] += weight

    def pct(counter: collections.Counter[str], n: int) -> list[dict[str, Any]]:
        return [{"frame": k, "percent": round(100 * v / total, 1)} for k, v in counter.most_common(n)]

    return {
        "samples": samples,
        "sampled_seconds": round(total, 2),
        "top_own": pct(own, top),
        "top_inclusive": pct(inclusive, top),
        "parklink_functions_inclusive": pct(ours, 10),
        "own_time_by_owner_percent": {k: round(100 * v / total, 1) for k, v in by_owner.most_common()},
    }


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed (pip install -e '.[bench]')")
    return found


def wait_for_line(stream: IO[str], marker: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            raise RuntimeError(f"the profiled process ended before {marker}")
        if line.strip() == marker:
            return
    raise TimeoutError(f"no {marker} within {timeout} s")


def record(cmd: list[str], seconds: float, out: Path) -> dict[str, Any]:
    """Start `cmd`, wait for it to print MEASURING on stderr, sample it `seconds` with py-spy."""
    spy = py_spy()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        wait_for_line(proc.stderr, "MEASURING", 300)
        spy_cmd = [
            spy,
            "record",
            "--pid",
            str(proc.pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            str(RATE),
        ]
        spy_cmd += ["--nonblocking", "--format", "speedscope", "--output", str(out)]
        done = subprocess.run(spy_cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
        if done.returncode or not out.exists():
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"py-spy failed: {tail}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    summary = summarise(out)
    summary["command"] = " ".join(["python", *cmd[1:]]) if cmd[0] == sys.executable else " ".join(cmd)
    summary["speedscope"] = (
        str(out.resolve().relative_to(ROOT)) if out.resolve().is_relative_to(ROOT) else str(out)
    )
    return summary


def profile_opcua(nodes: int, seconds: float, out: Path) -> dict[str, Any]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.opcua_server", "--port", str(port), "--nodes", str(nodes)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        wait_for_line(server.stdout, "READY", 300)
        cmd = [sys.executable, "-m", "bench.opcua_ingest", "--turn", "parklink"]
        cmd += ["--endpoint", f"opc.tcp://127.0.0.1:{port}/bench/", "--nodes", str(nodes)]
        cmd += ["--seconds", str(seconds + 30)]  # outlives the sampling; terminated after it
        summary = record(cmd, seconds, out)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    summary["nodes"] = nodes
    return summary


def scrape_loop(signals: int, seconds: float) -> None:
    """The profiled process of `scrape`: build the park's collector, then scrape back to back."""
    from prometheus_client import CollectorRegistry, generate_latest

    from bench.scale import park_yaml
    from connectors.opcua.kind import KIND as OPCUA
    from exporters.prometheus.collector import ParkCollector
    from models.sample import Sample
    from models.status import GOOD
    from orchestrator.config import load_config
    from orchestrator.snapshot import Snapshot

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "park.yaml"
        config.write_text(park_yaml(signals))
        park = load_config(config, {"opcua": OPCUA}).park
    snapshot = Snapshot(signals)
    now = time.time()
    snapshot.push([Sample(i, float(i % 1000) + 0.5, GOOD, now, now) for i in range(signals)])
    registry = CollectorRegistry()
    registry.register(ParkCollector(park, snapshot, []))
    generate_latest(registry)
    print("MEASURING", file=sys.stderr, flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        generate_latest(registry)


def profile_scrape(signals: int, seconds: float, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.profile_hot_path", "--scrape-loop", "--signals", str(signals)]
    cmd += ["--seconds", str(seconds + 30)]
    summary = record(cmd, seconds, out)
    summary["signals"] = signals
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile_hot_path", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--what", default="opcua,scrape", help="comma-separated: opcua, scrape")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds sampled per profile")
    parser.add_argument("--nodes", type=int, default=10_000, help="opcua: changing variables")
    parser.add_argument("--signals", type=int, default=100_000, help="scrape: signals in the park")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench" / "profiles")
    parser.add_argument("--scrape-loop", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scrape_loop:
        scrape_loop(args.signals, args.seconds)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"rate_hz": RATE, "seconds": args.seconds}
    for what in [w for w in args.what.split(",") if w]:
        if what == "opcua":
            result["opcua"] = profile_opcua(
                args.nodes, args.seconds, args.out / "opcua-ingest.speedscope.json"
            )
        elif what == "scrape":
            result["scrape"] = profile_scrape(args.signals, args.seconds, args.out / "scrape.speedscope.json")
        else:
            parser.error(f"unknown profile {what!r}")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
