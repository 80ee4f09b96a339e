"""KPI jobs on apscheduler: current windows, closing and persisting windows, state, retention.

The engine is fed by the snapshot (as a batch listener). Jobs run on the event loop; database
work runs in a thread. Closed windows are persisted idempotently (unique per scope and window), and
the engine's state is saved every `kpi.state_interval` seconds and at shutdown, so a restart
mid-shift resumes the shift from where it was (the outage itself is UNKNOWN time, reported as
coverage; under the data clock there is no outage in data time). Windows that ended while parklink
was down are closed at the next start (catch-up). Under the data clock, windows close `SETTLE`
after their end in data time while samples come; once every recording has played (`finish`) and at
stop, every window that ended by the last sample closes at once, and windows that began before the
first sample are never closed (partial: they would differ from `parklink kpi --from <first sample>`).

While the database is unavailable, closed results wait in memory, in order (up to `PENDING_MAX`),
and are written first at the next close; the state is not saved meanwhile, so it never claims
windows closed whose results are not stored. The outage is logged once, and its end once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine, delete, tuple_
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import Session, select

from models.park import AssetRef, Park
from models.tables import KpiResultRow, KpiStateRow
from orchestrator.kpi.clock import DataClock
from orchestrator.kpi.elements import EMPTY, Elements
from orchestrator.kpi.engine import KpiEngine
from orchestrator.kpi.guard import SuspectLog
from orchestrator.kpi.results import ScopedResult, scoped_results
from orchestrator.kpi.setup import calendars, state_maps
from orchestrator.kpi.windows import Window, calendar_window, calendar_windows, rolling
from orchestrator.sharing import ParkView, park_view

log = logging.getLogger("parklink.kpi")
CLOSE_EVERY = 15.0
SETTLE = 5.0  # seconds of lag before time counts as settled (late samples within it still count)
HISTORY = 3 * 86400.0  # what the engine keeps in memory: enough for the longest window plus catch-up
PENDING_MAX = 100_000  # closed results kept in memory while the database is unavailable (then: oldest go)
Clock = Callable[[], float]
ResultListener = Callable[[str, Sequence[ScopedResult], ParkView, float], None]
"""Called with ("current" | "closed", results, their park view, now) after each update / close."""


class KpiSource(Protocol):
    """What exporters read of live KPIs: a `KpiService`, or a hub's results received from edges."""

    @property
    def park(self) -> Park: ...
    @property
    def current(self) -> list[ScopedResult]: ...
    @property
    def view(self) -> ParkView: ...
    @property
    def asset_types(self) -> dict[str, str]: ...
    @property
    def cumulative(self) -> dict[str, Elements]: ...
    @property
    def job_seconds(self) -> float: ...
    @property
    def db(self) -> Engine | None: ...


class KpiService:
    """The live KPI engine of one park, its jobs and its latest results."""

    def __init__(self, park: Park, db: Engine | None, clock: Clock = time.time) -> None:
        self.park, self.db, self.clock = park, db, clock
        self.settings = park.kpi
        self.calendars = calendars(park)
        self.engine = KpiEngine(
            park,
            state_map=state_maps(park),
            calendars=self.calendars,
            counter_tolerance=self.settings.counter_tolerance,
        )
        self.asset_types = {a.path: a.type for a in park.assets}
        self._by_site: dict[tuple[str, str], list[AssetRef]] = defaultdict(list)
        for asset in park.assets:
            if not asset.retired:
                self._by_site[(asset.company, asset.site)].append(asset)
        self.current: list[ScopedResult] = []
        self.view = ParkView()
        self.cumulative: dict[str, Elements] = {}  # per asset path, since this process started
        self.closed_until = clock() - SETTLE
        self.data_start = -math.inf  # data clock: the first sample's time; earlier windows stay open
        self._settled_until: float | None = None
        self.job_seconds = 0.0  # CPU-ish cost of the KPI jobs (wall time on the loop)
        self.job_runs = 0
        self._scheduler: AsyncIOScheduler | None = None
        self.listeners: list[ResultListener] = []
        self._pending: list[ScopedResult] = []  # closed, not yet stored (the database was unavailable)
        self._storing = asyncio.Lock()  # one writer of `_pending` at a time (close and state jobs)
        self._db_down = False
        self.db_errors = 0  # failed database writes (closed results, state, retention)
        self._suspects = SuspectLog(log)  # one warning per asset when it turns suspect

    # -- windows ------------------------------------------------------------------------------
    def _site_windows(self, kind: str, now: float) -> list[tuple[list[AssetRef], Window]]:
        if kind == "rolling_hour":
            everyone = [a for assets in self._by_site.values() for a in assets]
            return [(everyone, rolling(now, 3600.0, "rolling:1h"))]
        out: list[tuple[list[AssetRef], Window]] = []
        for key, assets in self._by_site.items():
            window: Window | None
            if kind == "shift":
                calendar = self.calendars.get(key)
                window = calendar.current(now) if calendar else None
            else:
                window = calendar_window(kind, now, self.park.sites[key])  # type: ignore[arg-type]
            if window is not None:
                out.append((assets, window))
        return out

    def ended_windows(self, kind: str, since: float, until: float) -> list[tuple[list[AssetRef], Window]]:
        """Windows of `kind` at every site that ended in (since, until]."""
        out: list[tuple[list[AssetRef], Window]] = []
        for key, assets in self._by_site.items():
            if kind == "shift":
                calendar = self.calendars.get(key)
                windows = calendar.windows(since, until) if calendar else []
            else:
                windows = calendar_windows(kind, since, until, self.park.sites[key])  # type: ignore[arg-type]
            out.extend((assets, w) for w in windows if since < w.end <= until)
        return out

    def results_for(
        self, groups: Sequence[tuple[list[AssetRef], Window]], kind: str, now: float
    ) -> list[ScopedResult]:
        """Per-asset elements of each window, rolled up per window label."""
        by_label: dict[str, list[tuple[AssetRef, Elements]]] = defaultdict(list)
        first: dict[str, Window] = {}
        for assets, window in groups:
            first.setdefault(window.name, window)
            by_label[window.name].extend((a, self.engine.window_elements(a, window, now)) for a in assets)
        out: list[ScopedResult] = []
        for label, pairs in by_label.items():
            out.extend(scoped_results(pairs, kind, first[label], self.settings.max_effectiveness))
        return out

    # -- jobs -----------------------------------------------------------------------------------
    def update(self, now: float | None = None) -> None:
        """Recompute the current windows, the park view and the cumulative elements."""
        started = time.perf_counter()
        now = self.clock() if now is None else now
        if not math.isfinite(now):
            return  # a data clock before the first sample: no time yet
        results: list[ScopedResult] = []
        for kind in self.settings.windows:
            results.extend(self.results_for(self._site_windows(kind, now), kind, now))
        self.current = results
        self._suspects.update(results)
        self.view = park_view(
            results, self.park.share, self.asset_types, self.settings.benchmark_min_companies
        )
        for listener in self.listeners:
            listener("current", results, self.view, now)
        settled = now - SETTLE
        since = self._settled_until
        if since is not None and settled > since:
            for asset in self.engine.assets:
                if asset.retired:
                    continue
                added = self.engine.elements(asset, since, settled, now)
                self.cumulative[asset.path] = self.cumulative.get(asset.path, EMPTY) + added
        if since is None or settled > since:
            self._settled_until = settled
        self._account(started)

    async def _update_job(self) -> None:
        self.update()

    @property
    def results_pending(self) -> int:
        """Closed results waiting in memory for the database."""
        return len(self._pending)

    async def close_windows(self, now: float | None = None, settle: float = SETTLE) -> list[ScopedResult]:
        """Persist every window that ended since the last close (catch-up after downtime too), up to
        `settle` seconds before `now` (0 when no late sample can come any more: see `finish`).

        Results still waiting for the database are written first; what it does not take waits.
        """
        started = time.perf_counter()
        now = self.clock() if now is None else now
        until = now - settle
        if not math.isfinite(until):
            return []  # a data clock before the first sample
        if not math.isfinite(self.closed_until):
            self.closed_until = until  # the first time seen: windows close from here on
            return []
        results: list[ScopedResult] = []
        if until > self.closed_until:
            for kind in self.settings.windows:
                if kind != "rolling_hour":
                    ended = self.ended_windows(kind, self.closed_until, until)
                    seen = [(assets, w) for assets, w in ended if w.start >= self.data_start]
                    results.extend(self.results_for(seen, kind, now))
            self.closed_until = until
            self._account(started)
        await self._store(results)
        if results:
            log.info("closed %d KPI results", len(results))
            self._suspects.update(results, forget=False)  # a window closed in a catch-up
            view = park_view(
                results, self.park.share, self.asset_types, self.settings.benchmark_min_companies
            )
            for listener in self.listeners:
                listener("closed", results, view, now)
        return results

    def start_at(self, first: float) -> None:
        """Close windows from `first` on (a data clock's first sample), unless a saved state says where.

        Windows that began before it are never closed: their start was not seen (UNKNOWN time), and
        `parklink kpi --from <first sample>` leaves them out too.
        """
        if not math.isfinite(self.closed_until):
            self.closed_until = self.data_start = first

    async def finish(self) -> list[ScopedResult]:
        """Under the data clock, once no sample can come any more (every recording played): close
        every window that ended by the last sample, without waiting `SETTLE` for late ones, and save
        the state. Closing twice stores nothing twice. Under the wall clock, nothing: time goes on."""
        if self.settings.clock != "data":
            return []
        results = await self.close_windows(settle=0.0)
        await self.save_state()
        return results

    async def _store(self, results: Sequence[ScopedResult]) -> None:
        """Write the waiting results, then `results`, in one transaction; on an outage they all wait."""
        if self.db is None:
            return
        async with self._storing:
            self._pending.extend(results)
            excess = len(self._pending) - PENDING_MAX
            if excess > 0:
                del self._pending[:excess]
                log.error("KPI database unavailable too long: %d closed results dropped (the oldest)", excess)
            if self._pending and await self._write(save_results, list(self._pending)):
                self._pending.clear()

    async def _write(self, write: Callable[..., None], *args: Any) -> bool:
        """Run `write(db, *args)` in a thread; False when the database is unavailable."""
        try:
            await asyncio.to_thread(write, self.db, *args)
        except (OperationalError, InterfaceError) as exc:  # unreachable, restarting, connection lost
            self.db_errors += 1
            if not self._db_down:
                self._db_down = True
                reason = str(exc.orig or exc).strip().splitlines()[0]
                log.error("KPI database unavailable (%s); closed results wait in memory, retried", reason)
            return False
        if self._db_down:
            self._db_down = False
            log.warning("KPI database available again (%d waiting results written)", len(self._pending))
        return True

    async def save_state(self, now: float | None = None) -> None:
        """Persist the engine state and how far windows are closed (after every closed result)."""
        now = self.clock() if now is None else now
        if self.db is None or not math.isfinite(now):
            return
        await self._store(())
        if self._pending:
            return  # the database is down; and `closed_until` must not run ahead of stored results
        state = self.engine.state(now)
        if math.isfinite(self.data_start):
            state["data_start"] = self.data_start  # the service's, beside the engine's (it ignores it)
        await self._write(_save_state, self.park.id, state, self.closed_until)

    async def retention(self, now: float | None = None) -> None:
        """Drop closed results past retention and engine history past what windows need."""
        now = self.clock() if now is None else now
        if not math.isfinite(now):
            return
        self.engine.prune(now - HISTORY)
        if self.db is not None:
            cutoff = now - self.settings.retention_days * 86400.0
            await self._write(_delete_before, cutoff)

    def _account(self, started: float) -> None:
        self.job_seconds += time.perf_counter() - started
        self.job_runs += 1

    # -- lifecycle ------------------------------------------------------------------------------
    async def resume(self) -> None:
        """Load the saved state, if any, and close the windows that ended meanwhile (catch-up)."""
        now = self.clock()
        self.closed_until = now - SETTLE
        if self.db is not None:
            saved = await asyncio.to_thread(_load_state, self.db, self.park.id)
            if saved is not None:
                state, closed_until = saved
                try:
                    # Under the data clock, time is the samples': parklink being down is no gap in it.
                    self.engine.load_state(state, mark_gap=self.settings.clock != "data")
                    self.closed_until = closed_until
                    self.data_start = float(state.get("data_start", -math.inf))
                    if isinstance(self.clock, DataClock):
                        self.clock.resume(float(state["saved_at"]))
                    log.info("KPI state resumed from %s", datetime.fromtimestamp(state["saved_at"], UTC))
                except (ValueError, KeyError) as exc:
                    log.warning("KPI state not resumed (%s); starting fresh", exc)
        await self.close_windows()

    async def start(self) -> None:
        """`resume`, then schedule the jobs."""
        await self.resume()
        scheduler = AsyncIOScheduler(
            timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
        )
        first = datetime.now(UTC)
        # Coroutine jobs run on the loop; a plain function would run in a worker thread.
        scheduler.add_job(
            self._update_job, "interval", seconds=self.settings.update_interval, next_run_time=first
        )
        close_every = min(CLOSE_EVERY, self.settings.update_interval)
        scheduler.add_job(self.close_windows, "interval", seconds=close_every)
        scheduler.add_job(self.save_state, "interval", seconds=self.settings.state_interval)
        scheduler.add_job(self.retention, "interval", hours=1, next_run_time=first)
        scheduler.start()
        self._scheduler = scheduler

    async def stop(self) -> None:
        """Stop the jobs, close what ended, save the state. Under the data clock, what ended by the
        last sample closes without the settle margin: nothing more comes in this process, and the
        next start resumes after it (a replay played again from its start closes nothing twice)."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        await self.close_windows(settle=0.0 if self.settings.clock == "data" else SETTLE)
        await self.save_state()
        if self._pending:
            log.error(
                "%d closed KPI results not stored (database unavailable); the next start closes them again",
                len(self._pending),
            )


def result_row(r: ScopedResult) -> KpiResultRow:
    """The table row of one closed result."""
    as_dict = r.result.as_dict()
    elements = as_dict.pop("elements")
    return KpiResultRow(
        level=r.level,
        scope=r.scope,
        company=r.company,
        window_kind=r.window_kind,
        window_label=r.window_label,
        window_start=r.start,
        window_end=r.end,
        coverage=r.result.coverage,
        oee=r.result.oee,
        kpis={**as_dict, "suspect": list(r.suspect)},  # in the JSON column: no schema change
        elements=elements,  # type: ignore[arg-type]
    )


def save_results(db: Engine, results: Sequence[ScopedResult]) -> None:
    """Upsert closed results: one row per (level, scope, window kind, window label).

    One DELETE per window (not per row) and one bulk insert, in one transaction.
    """
    by_window: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for r in results:
        by_window[(r.window_kind, r.window_label)].append((r.level, r.scope))
    with Session(db) as session:
        for (kind, label), keys in by_window.items():
            session.exec(
                delete(KpiResultRow).where(
                    KpiResultRow.window_kind == kind,  # type: ignore[arg-type]
                    KpiResultRow.window_label == label,  # type: ignore[arg-type]
                    tuple_(KpiResultRow.level, KpiResultRow.scope).in_(keys),
                )
            )
        session.add_all([result_row(r) for r in results])
        session.commit()


def _save_state(db: Engine, park: str, state: dict[str, Any], closed_until: float) -> None:
    with Session(db) as session:
        row = session.get(KpiStateRow, park) or KpiStateRow(park=park)
        row.state, row.closed_until, row.updated_at = state, closed_until, datetime.now(UTC)
        session.add(row)
        session.commit()


def _load_state(db: Engine, park: str) -> tuple[dict[str, Any], float] | None:
    with Session(db) as session:
        row = session.exec(select(KpiStateRow).where(KpiStateRow.park == park)).first()
        return (dict(row.state), row.closed_until) if row is not None else None


def _delete_before(db: Engine, cutoff: float) -> None:
    with Session(db) as session:
        session.exec(delete(KpiResultRow).where(KpiResultRow.window_end < cutoff))  # type: ignore[arg-type]
        session.commit()
