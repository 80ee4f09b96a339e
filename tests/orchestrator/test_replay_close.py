"""A data-clock replay stores its last windows: the shipped example run through the whole runtime.

`examples/replay-two-machines.*` is played by a replay connection (its modbus connection swapped
for `kind: replay`, bindings emptied: a replay binding defaults to the signal's own path) under
`kpi: {clock: data}`, in-process, on a temporary SQLite database. Once the recording has played
(`FiniteConnector.played`), the runtime closes every window that ended by its last sample, without
the 5 s settle margin; at stop too. The stored rows must be exactly the windows inside the
recording's span, each equal to what `parklink kpi` (`orchestrator.replay`) reports for it.

The periodic KPI jobs are slowed to 600 s so that windows close only where these tests look:
when the recording has played, or at stop. The example's site: UTC, one shift 06:00-14:00.
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import Session, select

from models.park import Park
from models.store import make_engine
from models.tables import KpiResultRow, KpiStateRow
from orchestrator.config import DATABASE_URL_ENV, load_config
from orchestrator.kpi.service import SETTLE, KpiService, result_row
from orchestrator.registry import builtin_kinds
from orchestrator.replay import replay
from orchestrator.runtime import Runtime
from tests.conftest import free_port

pytestmark = pytest.mark.timeout(60)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KINDS = builtin_kinds()
SCOPES = {  # (level, scope) of every result of one window: two machines, one line, one site
    ("asset", "acme/north/line-1/m1"),
    ("asset", "acme/north/line-1/m2"),
    ("line", "acme/north/line-1"),
    ("site", "acme/north"),
    ("company", "acme"),
    ("park", ""),
}
SHIFT = "shift:early:2026-03-02"
WAIT = 20.0  # seconds any one wait may take
Key = tuple[str, str, str]  # (level, scope, window label)


def t(hhmm: str) -> float:
    """2026-03-02 (the recording's day) at hh:mm UTC."""
    return datetime.fromisoformat(f"2026-03-02T{hhmm}:00+00:00").timestamp()


def hour(hh: int) -> tuple[str, float, float]:
    """The label, start and end of the hour window starting at hh:00."""
    return f"hour:2026-03-02T{hh:02d}:00+00:00", t(f"{hh:02d}:00"), t(f"{hh + 1:02d}:00")


# The shipped recording spans 06:00-13:59: its hours 06:00-12:00 end inside it. Not stored: the
# 13:00 hour and the shift (end 14:00, after the last sample), the day (began 00:00, before the
# first sample, and ends at midnight), rolling hours (never closed).
SHIPPED_WINDOWS = {hour(h) for h in range(6, 13)}


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "asset", "signal", "value", "quality"])
        writer.writerows(rows)
    return path


def shipped_rows() -> list[list[str]]:
    with (EXAMPLES / "replay-two-machines.csv").open(newline="") as handle:
        return list(csv.reader(handle))[1:]


def config_for(tmp_path: Path, samples: Path, database: str, speed: float = 0.0, clock: str = "data") -> Path:
    """The shipped example's park, its connection a replay of `samples`, under the data clock."""
    config: dict[str, Any] = yaml.safe_load((EXAMPLES / "replay-two-machines.yaml").read_text())
    config["companies"][0]["connections"] = {"gw": {"kind": "replay", "file": str(samples), "speed": speed}}
    for spec in config["asset_types"]["machine"]["signals"].values():
        spec["binding"] = {}
    config["kpi"] = {"clock": clock, "update_interval": 600.0, "state_interval": 600.0}
    config["database"] = {"url": database}
    path = tmp_path / f"replay-{speed:g}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'kpi.db'}"
    monkeypatch.setenv(DATABASE_URL_ENV, url)  # wins over any URL of the environment
    return url


def stored(url: str) -> dict[Key, KpiResultRow]:
    """Every stored result by (level, scope, label); a key stored twice fails the test."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            rows = list(session.exec(select(KpiResultRow)).all())
    finally:
        engine.dispose()
    out: dict[Key, KpiResultRow] = {}
    for row in rows:
        key = (row.level, row.scope, row.window_label)
        assert key not in out, f"{key} stored twice"
        out[key] = row
    return out


def saved_state(url: str) -> KpiStateRow:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            row = session.exec(select(KpiStateRow)).one()
    finally:
        engine.dispose()
    return row


def expected_keys(windows: set[tuple[str, float, float]]) -> set[Key]:
    return {(level, scope, label) for level, scope in SCOPES for label, _, _ in windows}


def comparable(row: KpiResultRow) -> dict[str, Any]:
    """What a stored row says, through JSON as the database keeps it."""
    fields = ("window_kind", "window_start", "window_end", "coverage", "oee", "kpis", "elements")
    out: dict[str, Any] = json.loads(json.dumps({f: getattr(row, f) for f in fields}))
    return out


def parklink_kpi(park: Park, samples: Path, start: float, end: float) -> dict[Key, dict[str, Any]]:
    """`parklink kpi --window hour|shift|day --from start --to end`, as rows would store it."""
    done = replay(park, samples)
    out: dict[Key, dict[str, Any]] = {}
    for kind in ("hour", "shift", "day"):
        for r in done.results(kind, start, end):
            out[(r.level, r.scope, r.window_label)] = comparable(result_row(r))
    return out


def assert_windows(rows: dict[Key, KpiResultRow], windows: set[tuple[str, float, float]]) -> None:
    assert set(rows) == expected_keys(windows)
    spans = {label: (start, end) for label, start, end in windows}
    for (_, _, label), row in rows.items():
        assert (row.window_start, row.window_end) == spans[label], label


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition`, at most WAIT seconds."""
    for _ in range(int(WAIT / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"not within {WAIT:.0f} s: {what}")


def runtime_of(config: Path) -> Runtime:
    return Runtime(load_config(config, KINDS), KINDS, metrics_port=free_port(), http_port=free_port())


async def play_whole(config: Path, url: str, keys: set[Key]) -> Runtime:
    """Run until the recording has played and `keys` are stored (before the stop), then stop."""
    runtime = runtime_of(config)
    await runtime.start()
    try:
        await wait_until(lambda: set(stored(url)) >= keys, "the last windows stored once played")
        assert await runtime.kpi.finish() == [], "closing again closes nothing more"
    finally:
        await runtime.stop()
    return runtime


@pytest.mark.parametrize("speed", [0.0, 20_000.0])  # as fast as taken; paced (8 h in 1.4 s)
async def test_shipped_example_stores_every_window_of_its_span(
    tmp_path: Path, database: str, speed: float
) -> None:
    samples = EXAMPLES / "replay-two-machines.csv"
    config = config_for(tmp_path, samples, database, speed)
    runtime = await play_whole(config, database, expected_keys(SHIPPED_WINDOWS))

    rows = stored(database)
    assert_windows(rows, SHIPPED_WINDOWS)
    expected = parklink_kpi(runtime.park, samples, t("06:00"), t("13:59"))
    assert set(expected) == set(rows), "the recording's span as `parklink kpi` reports it"
    for key, row in rows.items():
        assert comparable(row) == expected[key], key
    assert saved_state(database).closed_until == t("13:59"), "closed up to the last sample"


async def test_recording_ending_on_the_shift_end_stores_the_shift(tmp_path: Path, database: str) -> None:
    # The same recording with each machine's state repeated at 14:00: the 13:00 hour and the shift
    # end exactly at the last sample, less than SETTLE before it, and are stored once it has played.
    closing = [
        ["2026-03-02T14:00:00Z", "acme/north/line-1/m1", "state", "1", "good"],
        ["2026-03-02T14:00:00Z", "acme/north/line-1/m2", "state", "2", "good"],
    ]
    samples = write_csv(tmp_path / "to-14.csv", shipped_rows() + closing)
    windows = {hour(h) for h in range(6, 14)} | {(SHIFT, t("06:00"), t("14:00"))}
    runtime = await play_whole(config_for(tmp_path, samples, database), database, expected_keys(windows))

    rows = stored(database)
    assert_windows(rows, windows)
    expected = parklink_kpi(runtime.park, samples, t("06:00"), t("14:00"))
    assert set(expected) == set(rows)
    for key, row in rows.items():
        assert comparable(row) == expected[key], key
    line = rows[("line", "acme/north/line-1", SHIFT)]
    assert line.oee == pytest.approx(420 / 720)  # the example's figure: Σ(PRU·GQ) / ΣPBT


async def test_windows_begun_before_the_first_sample_are_not_stored(tmp_path: Path, database: str) -> None:
    # The recording 30 min later: 06:30-14:29. The 06:00 hour and the shift began before its first
    # sample (their first half hour unseen); `parklink kpi --from 06:30` leaves them out too.
    later = [[str(datetime.fromisoformat(r[0]).timestamp() + 1800), *r[1:]] for r in shipped_rows()]
    samples = write_csv(tmp_path / "later.csv", later)
    windows = {hour(h) for h in range(7, 14)}
    runtime = await play_whole(config_for(tmp_path, samples, database), database, expected_keys(windows))

    rows = stored(database)
    assert_windows(rows, windows)
    expected = parklink_kpi(runtime.park, samples, t("06:30"), t("14:29"))
    assert set(expected) == set(rows)
    for key, row in rows.items():
        assert comparable(row) == expected[key], key


async def test_stop_mid_recording_then_resume_stores_the_rest_once(tmp_path: Path, database: str) -> None:
    # Paced at 3600x: the 10:00 samples come 4 s after the start, the 12:00 ones 2 s later. The
    # first run stops in between: the hours that ended by 10:00 (the last sample seen) are stored,
    # from the samples seen so far; later ones are not.
    samples = EXAMPLES / "replay-two-machines.csv"
    first = runtime_of(config_for(tmp_path, samples, database, speed=3600.0))
    await first.start()
    try:
        await wait_until(lambda: first.kpi.clock() >= t("10:00"), "the 10:00 samples played")
    finally:
        await first.stop()
    assert first.kpi.clock() == t("10:00"), "stopped before the 12:00 samples (the test's premise)"
    early = {hour(h) for h in range(6, 10)}
    before = stored(database)
    assert_windows(before, early)
    seen = write_csv(tmp_path / "seen.csv", [r for r in shipped_rows() if r[0] <= "2026-03-02T10:00:00Z"])
    expected_seen = parklink_kpi(first.park, seen, t("06:00"), t("10:00"))
    for key, row in before.items():
        assert comparable(row) == expected_seen[key], key
    state = saved_state(database)
    assert state.closed_until == t("10:00") and state.state["data_start"] == t("06:00")

    # Started again, the replay plays the file from its start: the resumed state takes the rest,
    # and the windows already stored are neither stored twice nor changed.
    second = await play_whole(
        config_for(tmp_path, samples, database), database, expected_keys(SHIPPED_WINDOWS)
    )
    after = stored(database)
    assert_windows(after, SHIPPED_WINDOWS)
    for key, row in before.items():
        assert comparable(after[key]) == comparable(row), key
    expected = parklink_kpi(second.park, samples, t("06:00"), t("13:59"))
    for key, row in after.items():
        if key not in before:
            assert comparable(row) == expected[key], key
    assert saved_state(database).closed_until == t("13:59")


async def test_wall_clock_keeps_its_settle_margin(tmp_path: Path, database: str) -> None:
    # Under the wall clock, time goes on: `finish` does nothing, and stop leaves a window that ended
    # less than SETTLE ago for the next start, as before.
    config = config_for(tmp_path, EXAMPLES / "replay-two-machines.csv", database, clock="wall")
    park = load_config(config, KINDS).park
    now = t("07:00") + SETTLE - 1
    service = KpiService(park, None, clock=lambda: now)
    service.closed_until = t("06:00")
    assert await service.finish() == []
    await service.stop()
    assert service.closed_until == now - SETTLE, "the 06:00 hour (ended 4 s ago) not closed"
