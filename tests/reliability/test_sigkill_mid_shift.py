"""parklink killed with SIGKILL mid-shift and restarted: the shift's KPIs equal an uninterrupted run.

One company's recorded shift (06:00-14:00, then half an hour more so the shift closes) is played by
the replay connector under the data clock at about 2,000× real time, so the shift's data takes
about 15 s. Two `parklink run` processes play it: one uninterrupted, one SIGKILLed twice mid-shift
(each time after at least one state save, `kpi.state_interval: 1`) and restarted on the same SQLite
database. The restarted replay plays the file from its start again: what it re-delivers from before
the resumed state must not disturb it, and what the killed process had seen after its last save
comes again and is taken. Every closed window (the shift and its eight hours, at every level) must
be stored once and equal the uninterrupted run's exactly: with the data clock, results depend on the
samples alone, never on when or how often they were played.

One company only: its one replay connection delivers samples in time order. Three connections
would each pace from their own start, and a window could close before a lagging one caught up.
"""

from __future__ import annotations

import csv
import json
import random
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Recorder, free_port
from tests.orchestrator.hub.parks import START, Process, park_config, run_args, wait_for, write_config

pytestmark = pytest.mark.timeout(150)

HOURS = 8.5  # the 06:00-14:00 shift and half an hour past it, so the shift window closes
SPEED = 3000.0  # 8.5 h of data in about 10 s
ASSETS = ("m1", "m2", "m3", "m4")
KILL_AFTER = (START + 3.5 * 3600, START + 6 * 3600)  # kill once windows up to here are closed and saved
Key = tuple[str, str, str, str]


def write_shift(path: Path, seed: int = 11) -> int:
    """acme's machines over the shift, as parks.py records them, except that each one waits for an
    order at 06:00 (state 2, ADOT) before it runs: the first sample of a machine is rarely its state
    at the kill, as on a real shift. Returns the number of samples."""
    rng = random.Random(seed)
    rows: list[tuple[float, str, str, int]] = []
    end = START + HOURS * 3600
    for asset in ASSETS:
        path_ = f"acme/north/line-1/{asset}"
        t, state, good, scrap = START, 2, rng.randrange(60000), 0
        while t < end:
            rows.append((t, path_, "state", state))
            duration = rng.uniform(60, 900)
            if state == 3:
                good = (good + int(duration / 20)) % 65536  # 16-bit counter: wraps
                scrap += rng.randrange(3)
            t = min(end, t + duration)
            rows.append((t, path_, "good_count", good))
            rows.append((t, path_, "scrap_count", scrap))
            state = rng.choices([3, 4, 1, 2, 0], weights=[70, 8, 10, 7, 5])[0]
    rows.sort(key=lambda r: r[0])
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "asset", "signal", "value", "quality"])
        writer.writerows([f"{t:.3f}", asset, name, value, "good"] for t, asset, name, value in rows)
    return len(rows)


def hhmm(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S")


def saved_state(db: Path) -> tuple[float, float] | None:
    """(data time the state was saved at, closed_until) of the state row, or None before the first save."""
    if not db.exists():
        return None
    with sqlite3.connect(db, timeout=5) as conn:
        try:
            row = conn.execute("SELECT state, closed_until FROM kpi_state").fetchone()
        except sqlite3.OperationalError:  # the table is not created yet
            return None
    return None if row is None else (float(json.loads(row[0])["saved_at"]), float(row[1]))


def closed_results(db: Path) -> dict[Key, tuple[Any, ...]]:
    """Every stored result, keyed by scope and window (the key is unique in the table)."""
    if not db.exists():
        return {}
    with sqlite3.connect(db, timeout=5) as conn:
        try:
            rows = conn.execute(
                "SELECT level, scope, window_kind, window_label, window_start, window_end, coverage, oee,"
                " kpis, elements FROM kpi_result"
            ).fetchall()
        except sqlite3.OperationalError:
            return {}
    out: dict[Key, tuple[Any, ...]] = {}
    for level, scope, kind, label, start, end, coverage, oee, kpis, elements in rows:
        key = (level, scope, kind, label)
        assert key not in out, f"{key} stored twice"
        out[key] = (start, end, coverage, oee, json.loads(kpis), json.loads(elements))
    return out


def shift_closed(db: Path) -> bool:
    return any(kind == "shift" for _, _, kind, _ in closed_results(db))


def test_sigkill_mid_shift_then_restart_equals_an_uninterrupted_run(tmp_path: Path, record: Recorder) -> None:
    samples = tmp_path / "samples.csv"
    write_shift(samples)

    def process(name: str) -> tuple[Process, Path]:
        db = tmp_path / f"{name}.db"
        config = park_config(("acme",), samples, f"sqlite:///{db}", speed=SPEED)
        config["kpi"]["state_interval"] = 1.0
        line = config["companies"][0]["sites"][0]["lines"][0]
        line["assets"] = [{**line["assets"][0], "id": a} for a in ASSETS]
        path = write_config(tmp_path / f"{name}.yaml", config)
        p = Process(name, [], tmp_path / f"{name}.log")
        p.args = run_args(path, "all", free_port(), free_port())
        return p, db

    reference, reference_db = process("uninterrupted")
    killed, killed_db = process("killed")
    resumed_at: list[tuple[float, float]] = []  # (saved_at, closed_until) each restart resumes from
    started = time.monotonic()
    try:
        reference.start()
        killed.start()
        for mark in KILL_AFTER:
            # Mid-shift, after a state save that closed windows up to `mark`; then some more data is
            # taken (and lost with the process) before the kill.
            wait_for(
                lambda m=mark: (s := saved_state(killed_db)) and s[1] >= m, 60, f"a save past {hhmm(mark)}"
            )
            time.sleep(0.5)
            killed.kill()
            state = saved_state(killed_db)
            assert state is not None and START < state[0] < START + 8 * 3600, "the kill landed mid-shift"
            resumed_at.append(state)
            killed.args[-3], killed.args[-1] = str(free_port()), str(free_port())  # fresh ports
            killed.start()
        wait_for(lambda: shift_closed(reference_db) and shift_closed(killed_db), 90, "both shifts closed")
    finally:
        codes = [reference.stop(), killed.stop()]
    elapsed = time.monotonic() - started
    assert codes == [0, 0], "both stop cleanly on SIGTERM"

    expected, got = closed_results(reference_db), closed_results(killed_db)
    shift = {k: v for k, v in expected.items() if k[2] == "shift"}
    assert len(shift) == len(ASSETS) + 4, "the shift at asset, line, site, company and park level"
    assert sum(1 for k in expected if k[2] == "hour") == 8 * len(shift), "its eight hours, at every level"
    assert expected[("asset", "acme/north/line-1/m1", "shift", "shift:early:2026-03-02")][2] == 1.0
    differing = sorted(k for k in expected if got.get(k) != expected[k])
    lost = sum(1 for k in expected if k not in got)
    record(
        "parklink SIGKILLed mid-shift, restarted (replay, data clock)",
        len(resumed_at),
        len(resumed_at) if not differing else 0,
        lost,
        f"resumed from states saved at {', '.join(hhmm(s) for s, _ in resumed_at)} (data time); "
        f"{len(expected)} closed results compared, {len(differing)} differ; {elapsed:.0f} s",
    )
    assert set(got) == set(expected), "the same windows closed and stored once"
    assert not differing, f"differ from the uninterrupted run: {differing[:5]}"
