"""Edges and a hub through broker outages and killed edges: counted end to end, nothing lost.

The edges play recorded samples under the data clock, at a pace that makes hour windows close
while the broker is away, so both samples and closed KPI results must cross the outage through the
edges' on-disk queues and the hub's persistent session (the broker keeps it: persistence on).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from exporters.http.history import row_result
from models.store import make_engine
from models.tables import KpiResultRow, KpiStateRow
from orchestrator.config import load_config
from orchestrator.registry import builtin_kinds
from orchestrator.sharing import shares
from tests.brokers import PrivateBroker
from tests.conftest import Recorder, free_port
from tests.orchestrator.hub.parks import (
    COMPANIES,
    Process,
    metric_value,
    mqtt_section,
    park_config,
    run_args,
    unique_prefix,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.timeout(240)
Key = tuple[str, str, str, str, tuple[tuple[str, float], ...]]


def stored(url: str, company: str, share: dict[str, Any] | None = None) -> set[Key]:
    """A company's closed results in a database (only what its policy shares, when `share` given)."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            rows = session.exec(select(KpiResultRow).where(KpiResultRow.company == company)).all()
            results = [row_result(r) for r in rows]
    except OperationalError:  # the process has not created its tables yet
        return set()
    finally:
        engine.dispose()
    if share is not None:
        results = [r for r in results if shares(r, share)]
    return {
        (r.level, r.scope, r.window_kind, r.window_label, tuple(sorted(vars_of(r.result.elements).items())))
        for r in results
    }


def vars_of(elements: object) -> dict[str, float]:
    return {name: getattr(elements, name) for name in elements.__dataclass_fields__}  # type: ignore[attr-defined]


class EdgesAndHub:
    """A hub and three edges of one test, as processes."""

    def __init__(
        self,
        tmp_path: Path,
        port: int,
        hub_database: str,
        samples: Path,
        speed: float,
        state_interval: float = 30.0,
    ) -> None:
        self.tmp_path, self.processes = tmp_path, {}
        prefix = unique_prefix()
        self.hub_url = hub_database
        hub = park_config((), samples, hub_database, mqtt=mqtt_section(port, tmp_path / "hub-q.db", prefix))
        self._add("hub", hub, "hub")
        self.edge_urls = {c: f"sqlite:///{tmp_path}/{c}.db" for c in COMPANIES}
        for c in COMPANIES:
            mqtt = mqtt_section(port, tmp_path / f"{c}-q.db", prefix)
            config = park_config(
                (c,), samples, self.edge_urls[c], mqtt=mqtt, speed=speed, state_interval=state_interval
            )
            self._add(c, config, "edge")
        self.share = {
            c: load_config(tmp_path / f"{c}.yaml", builtin_kinds()).park.share[c] for c in COMPANIES
        }

    def _add(self, name: str, config: dict[str, Any], role: str) -> None:
        path = write_config(self.tmp_path / f"{name}.yaml", config)
        metrics, http = free_port(), free_port()
        process = Process(name, run_args(path, role, metrics, http), self.tmp_path / f"{name}.log")
        process.metrics_port, process.http_port = metrics, http
        self.processes[name] = process

    @property
    def hub(self) -> Process:
        return self.processes["hub"]

    def hub_metric(self, name: str, **labels: str) -> float | None:
        return metric_value(self.hub.metrics(), name, **labels)

    def start(self) -> None:
        self.hub.start()
        wait_for(lambda: self.hub_metric("parklink_hub_messages_total") is not None, 30, "the hub")
        for c in COMPANIES:
            self.processes[c].start()

    def stop(self) -> dict[str, int]:
        return {name: p.stop() for name, p in self.processes.items()}

    def edge_results(self, company: str) -> set[Key]:
        return stored(self.edge_urls[company], company, self.share)

    def hub_results(self, company: str) -> set[Key]:
        return stored(self.hub_url, company)

    def all_results_at_hub(self) -> bool:
        return all(self.edge_results(c) and self.hub_results(c) == self.edge_results(c) for c in COMPANIES)


def test_broker_outage_loses_no_sample_and_no_kpi_result(
    tmp_path: Path,
    private_broker: PrivateBroker,
    hub_database: str,
    samples: tuple[Path, dict[str, int]],
    record: Recorder,
) -> None:
    csv_path, counts = samples
    total = sum(counts.values())
    park = EdgesAndHub(tmp_path, private_broker.port, hub_database, csv_path, speed=180.0)  # 2.5 h in 50 s
    try:
        park.start()
        for c in COMPANIES:
            wait_for(
                lambda c=c: park.hub_metric("parklink_connection_up", company=c, connection="edge") == 1,
                60,
                c,
            )
        before = park.hub_metric("parklink_hub_samples_total") or 0
        private_broker.stop()
        stopped = time.monotonic()
        time.sleep(30.0)
        during = sum(len(park.edge_results(c)) for c in COMPANIES)
        private_broker.start()
        outage = time.monotonic() - stopped
        wait_for(
            lambda: park.hub_metric("parklink_hub_samples_total") == total, 90, f"{total} samples at the hub"
        )
        wait_for(park.all_results_at_hub, 60, "every shared closed result at the hub")
        hub_metrics = park.hub.metrics()
        edge_metrics = {c: park.processes[c].metrics() for c in COMPANIES}
    finally:
        codes = park.stop()
    assert codes == dict.fromkeys(codes, 0)
    assert outage >= 30.0 and before < total, "the outage fell in the middle of the stream"
    assert during > 0, "windows closed while the broker was away"
    for c in COMPANIES:
        assert metric_value(edge_metrics[c], "parklink_mqtt_dropped_total") == 0
        assert (
            metric_value(edge_metrics[c], "parklink_connection_reconnects_total", connection="mqtt") or 0
        ) >= 1
    assert (metric_value(hub_metrics, "parklink_connection_reconnects_total", connection="mqtt") or 0) >= 1
    results = sum(len(park.hub_results(c)) for c in COMPANIES)
    received = int(metric_value(hub_metrics, "parklink_hub_samples_total") or 0)
    record(
        "broker stopped 30 s under 3 edges and a hub",
        total + results,
        received + results,
        total - received,
        f"{total} samples and {results} closed KPI results counted at the hub; {outage:.0f} s outage",
    )
    print(
        f"\nbroker outage {outage:.1f} s: samples {total} sent, "
        f"{metric_value(hub_metrics, 'parklink_hub_samples_total'):.0f} received once "
        f"({metric_value(hub_metrics, 'parklink_hub_duplicates_total'):.0f} duplicates dropped); "
        f"closed KPI results {results} at the edges and at the hub (lost 0)"
    )


def forget_state(url: str) -> None:
    """Remove an edge's saved KPI state (finishing its recording saves one)."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            for row in session.exec(select(KpiStateRow)).all():
                session.delete(row)
            session.commit()
    finally:
        engine.dispose()


def test_killed_edge_is_marked_down_recovers_and_leaves_no_duplicate_rows(
    tmp_path: Path, broker: int, hub_database: str, samples: tuple[Path, dict[str, int]], record: Recorder
) -> None:
    csv_path, _ = samples
    # The restarted edge must not resume (as when it was killed before any state save, here: its
    # saved state is removed): it replays and closes every window again.
    park = EdgesAndHub(tmp_path, broker, hub_database, csv_path, speed=0.0, state_interval=3600.0)
    bolt = park.processes["bolt"]
    up = lambda: park.hub_metric("parklink_connection_up", company="bolt", connection="edge")  # noqa: E731
    try:
        park.start()
        wait_for(park.all_results_at_hub, 60, "every shared closed result at the hub")
        rows = park.hub_results("bolt")
        stored_before = park.hub_metric("parklink_hub_results_stored_total") or 0
        assert up() == 1
        bolt.kill()  # SIGKILL: no clean disconnect, so the broker publishes the edge's will
        killed = time.monotonic()
        wait_for(lambda: up() == 0, 15, "bolt marked down at the hub")
        marked = time.monotonic() - killed
        forget_state(park.edge_urls["bolt"])
        bolt.start()
        wait_for(lambda: up() == 1, 60, "bolt up again")
        reconnects = park.hub_metric(
            "parklink_connection_reconnects_total", company="bolt", connection="edge"
        )
        # The restarted edge closes its windows again: the hub absorbs the replay.
        wait_for(
            lambda: (park.hub_metric("parklink_hub_results_stored_total") or 0) >= stored_before + len(rows),
            60,
            "bolt's results re-sent",
        )
        after = park.hub_results("bolt")
    finally:
        codes = park.stop()
    assert codes == dict.fromkeys(codes, 0)
    assert marked < 10 and reconnects == 1
    assert after == rows == park.edge_results("bolt") and len(rows) > 0
    record(
        "edge SIGKILLed and restarted (hub view)",
        1,
        1,
        0,
        f"marked down in {marked:.2f} s by its will; {len(rows)} result rows replayed, none duplicated",
    )
    print(f"\nedge SIGKILL: marked down after {marked:.2f} s; {len(rows)} rows before and after the replay")
