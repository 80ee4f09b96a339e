"""PostgreSQL unavailable for a while: KPI results closed meanwhile wait in memory and are written after.

A PostgreSQL of the test's own (initdb + pg_ctl on a free port, as the 'postgres' user when run as
root) stores the closed windows of a recorded park day. The KPI service is driven in-process on the
data's own time, five minutes of samples per step, closing windows and saving its state at every
step as its jobs would. The server is stopped (`pg_ctl stop -m fast`, while a close is writing) from
08:20 to 14:10 of the record, so the hours 08-13 and the shift close while it is down, and started
again. Every result must then be in the database exactly once and equal to a run without the outage
(the same steps on another database of the same server); the outage logged once and its end once;
`parklink_kpi_results_pending` and `parklink_kpi_db_errors_total` tell the story meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlmodel import Session, select

from exporters.prometheus.kpi_collector import KpiCollector
from models.park import Park
from models.sample import Sample
from models.store import create_tables, make_engine
from models.tables import KpiResultRow
from orchestrator.config import load_config
from orchestrator.kpi.service import KpiService
from orchestrator.registry import builtin_kinds
from orchestrator.replay import read_samples
from tests.conftest import IN_CI, Recorder, free_port
from tests.orchestrator.hub.parks import (
    COMPANIES,
    START,
    metric_value,
    park_config,
    write_config,
    write_samples,
)

pytestmark = pytest.mark.timeout(120)

HOURS = 8.5  # 06:00-14:30: the 06:00-14:00 shift closes
STEP = 300.0  # seconds of data per step (a close job and a state save each)
DOWN, UP = START + 3 * 3600 + 5 * 60, START + 8 * 3600 + 10 * 60  # 09:05 to 14:10 of the record
Key = tuple[str, str, str, str]


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's binaries (Debian's layout, else pg_ctl on the PATH)."""
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if debian:
        return debian[-1].parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


class Postgres:
    """A throwaway PostgreSQL cluster on a free loopback port; `stop()` and `start()` for outages."""

    def __init__(self, bindir: Path) -> None:
        self.bindir, self.port = bindir, free_port()
        as_root = os.geteuid() == 0  # initdb refuses root: run the server as the 'postgres' user
        self.workdir = Path(tempfile.mkdtemp(prefix="parklink-pg-"))
        self.prefix: list[str] = []
        if as_root:
            user = pwd.getpwnam("postgres")
            os.chown(self.workdir, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.data, self.log = self.workdir / "data", self.workdir / "server.log"

    def _run(self, tool: str, *args: str) -> None:
        command = [*self.prefix, str(self.bindir / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"{tool} {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}"
            )

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "-o", options
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", "30")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def up(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL of this test's own, started; removed afterwards whatever happens."""
    bindir = postgres_bin()
    missing = bindir is None or not (bindir / "initdb").exists()
    if not missing and os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            missing = True
    if missing:
        message = "the PostgreSQL server binaries (initdb, pg_ctl) or the 'postgres' user are missing"
        if IN_CI:
            pytest.fail(f"{message}, and CI=true requires them")
        pytest.skip(reason=f"{message}; install postgresql to run this test")
    assert bindir is not None
    server = Postgres(bindir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()


def stored(url: str) -> dict[Key, tuple[Any, ...]]:
    """Every stored result by scope and window; AssertionError on a duplicate."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            rows = session.exec(select(KpiResultRow)).all()
    finally:
        engine.dispose()
    out: dict[Key, tuple[Any, ...]] = {}
    for r in rows:
        key = (r.level, r.scope, r.window_kind, r.window_label)
        assert key not in out, f"{key} stored twice"
        out[key] = (r.window_start, r.window_end, r.coverage, r.oee, r.kpis, r.elements)
    return out


def exposed(service: KpiService) -> tuple[float | None, float | None]:
    """(`parklink_kpi_results_pending`, `parklink_kpi_db_errors_total`) as /metrics shows them."""
    registry = CollectorRegistry()
    registry.register(KpiCollector(service, "full"))
    text = generate_latest(registry).decode()
    return metric_value(text, "parklink_kpi_results_pending"), metric_value(
        text, "parklink_kpi_db_errors_total"
    )


async def play(park: Park, samples: list[Sample], url: str, server: Postgres | None) -> dict[str, int]:
    """Feed the record step by step, closing windows and saving the state at each step as the jobs
    do; with `server`, stop it at DOWN (while that step's close writes) and start it at UP."""
    engine = make_engine(url)
    create_tables(engine)
    now = START
    service = KpiService(park, engine, clock=lambda: now)
    service.closed_until = START  # windows close from the record's start, as a data clock does
    seen = {"tried": 0, "got_in": 0, "waited": 0, "errors": 0}  # results closed from the stop on, …
    i, end = 0, START + HOURS * 3600 + STEP
    try:
        while now < end:
            now += STEP
            while i < len(samples) and samples[i].source_time < now:
                j = i
                while j < len(samples) and samples[j].source_time == samples[i].source_time:
                    j += 1
                service.engine.feed(samples[i:j])
                i = j
            if server is not None and now - STEP < DOWN <= now:
                stopping = asyncio.create_task(asyncio.to_thread(server.stop))
                results = await service.close_windows(now)  # written before the stop, or waiting
                await stopping
                assert not server.up()
                seen["tried"] += len(results)
                seen["got_in"] = len(results) - service.results_pending
            elif server is not None and now - STEP < UP <= now:
                pending, errors = exposed(service)
                seen["waited"], seen["errors"] = service.results_pending, service.db_errors
                assert pending == seen["waited"] == seen["tried"] - seen["got_in"], "all of them wait"
                assert errors == service.db_errors > 0
                await asyncio.to_thread(server.start)
                await service.close_windows(now)  # nothing new ends here: the waiting ones go
                assert service.results_pending == 0
            else:
                results = await service.close_windows(now)
                if server is not None and DOWN < now < UP:
                    seen["tried"] += len(results)
                    assert exposed(service)[0] == service.results_pending == seen["tried"] - seen["got_in"]
            await service.save_state(now)
        await service.stop()
        if server is not None:
            assert exposed(service) == (0, seen["errors"]), "nothing waits, no error since the restart"
        return seen
    finally:
        engine.dispose()


async def test_results_closed_while_postgres_is_down_are_written_after(
    postgres: Postgres, tmp_path: Path, record: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    csv_path = tmp_path / "samples.csv"
    write_samples(csv_path, hours=HOURS)
    config = write_config(tmp_path / "park.yaml", park_config(COMPANIES, csv_path, "sqlite://"))
    park = load_config(config, builtin_kinds()).park
    samples = sorted(read_samples(csv_path, park), key=lambda s: s.source_time)
    reference_url = postgres.create_database("reference")
    outage_url = postgres.create_database("outage")

    await play(park, samples, reference_url, None)
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="parklink.kpi"):
        seen = await play(park, samples, outage_url, postgres)
    elapsed = time.monotonic() - started

    expected, got = stored(reference_url), stored(outage_url)
    per_window = len(park.assets) + 3 * 3 + 1  # assets, then lines, sites and companies, and the park
    assert len(expected) == 9 * per_window, "8 hours and the shift, at every level"
    # Closed from the stop on: hours 08-13 (hour 08 while the server stops) and the shift.
    down_keys = {k for k in expected if k[2] == "shift" or k[3] >= "hour:2026-03-02T08"}
    assert seen["tried"] == len(down_keys) == 7 * per_window
    survived = sum(1 for k in down_keys if got.get(k) == expected[k])
    lost = sum(1 for k in expected if got.get(k) != expected[k])
    record(
        "PostgreSQL stopped 09:05-14:10 of a shift (pg_ctl stop -m fast), started again",
        seen["tried"],
        survived,
        lost,
        f"closed while down ({seen['got_in']} written before the stop), stored after, equal to a run "
        f"without the outage; {seen['errors']} failed writes; {elapsed:.1f} s",
    )
    assert set(got) == set(expected), "every closed result stored, once"
    assert [k for k in expected if got[k] != expected[k]] == []
    assert survived == seen["tried"] and lost == 0
    messages = [r.getMessage() for r in caplog.records if r.name == "parklink.kpi"]
    down = [m for m in messages if "database unavailable" in m]
    back = [m for m in messages if "database available again" in m]
    assert len(down) == 1 and len(back) == 1, messages
    assert f"({seen['waited']} waiting results written)" in back[0]
