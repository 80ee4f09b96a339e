"""Three edges (one per company) and a hub over the real Mosquitto, against one all-in-one process.

Every process plays the same recorded samples under the data clock, so the hub's park view, rebuilt
from what the edges publish, must equal the all-in-one result exactly: live (`/metrics/park`) and
from the closed windows each stored (the hub in PostgreSQL, the all-in-one in SQLite).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporters.http.history import closed_view
from models.park import Park
from models.store import make_engine
from orchestrator.config import load_config
from orchestrator.registry import builtin_kinds
from orchestrator.sharing import ParkView
from tests.conftest import free_port
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

pytestmark = pytest.mark.timeout(180)


def park_token(config: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "token", "create", "--park", "--config", str(config)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def park_metrics(process: Process, token: str) -> list[str]:
    """The park operator's `/metrics/park`, its sample lines sorted (comments dropped)."""
    response = httpx.get(
        f"http://127.0.0.1:{process.http_port}/metrics/park",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    response.raise_for_status()
    return sorted(line for line in response.text.splitlines() if line and not line.startswith("#"))


def normalized(view: ParkView) -> dict[str, list[Any]]:
    key = lambda p: (p.level, p.scope, p.window_kind, p.window_label)  # noqa: E731
    return {
        "scopes": sorted(view.scopes, key=key),
        "park": sorted(view.park, key=key),
        "benchmarks": sorted(
            view.benchmarks, key=lambda b: (b.asset_type, b.kpi, b.window_kind, b.window_label)
        ),
    }


def stored_view(url: str, park: Park) -> dict[str, list[Any]]:
    engine = make_engine(url)
    try:
        types = {a.path: a.type for a in park.assets}
        return normalized(closed_view(engine, park, types, 0.0, math.inf, None))
    finally:
        engine.dispose()


def test_hub_park_view_equals_all_in_one(
    tmp_path: Path, broker: int, hub_database: str, samples: tuple[Path, dict[str, int]]
) -> None:
    csv_path, counts = samples
    prefix = unique_prefix()
    processes: list[Process] = []

    def process(name: str, config: dict[str, Any], role: str) -> Process:
        path = write_config(tmp_path / f"{name}.yaml", config)
        metrics_port, http_port = free_port(), free_port()
        p = Process(name, run_args(path, role, metrics_port, http_port), tmp_path / f"{name}.log")
        p.metrics_port, p.http_port = metrics_port, http_port
        processes.append(p)
        return p

    hub_config = park_config(
        (), csv_path, hub_database, mqtt=mqtt_section(broker, tmp_path / "hub-q.db", prefix)
    )
    hub = process("hub", hub_config, "hub")
    all_url = f"sqlite:///{tmp_path}/all.db"
    everyone = process("all", park_config(COMPANIES, csv_path, all_url), "all")
    edges = [
        process(
            f"edge-{c}",
            park_config(
                (c,),
                csv_path,
                f"sqlite:///{tmp_path}/{c}.db",
                mqtt=mqtt_section(broker, tmp_path / f"{c}-q.db", prefix),
            ),
            "edge",
        )
        for c in COMPANIES
    ]
    hub_token = park_token(tmp_path / "hub.yaml")
    all_token = park_token(tmp_path / "all.yaml")
    try:
        hub.start()
        wait_for(lambda: "parklink_hub_messages_total" in hub.metrics(), 30, "the hub's /metrics")
        everyone.start()
        for edge in edges:
            edge.start()
        # Every edge announced, is up and streamed every recorded sample to the hub.
        for c in COMPANIES:
            wait_for(
                lambda c=c: (
                    metric_value(hub.metrics(), "parklink_connection_up", company=c, connection="edge") == 1
                ),
                60,
                f"edge {c} up at the hub",
            )
        total = sum(counts.values())
        wait_for(
            lambda: metric_value(hub.metrics(), "parklink_hub_samples_total") == total,
            60,
            f"{total} samples at the hub",
        )
        # Live: the park operator's metrics are the same series with the same values.
        live_hub: list[str] = []

        def same_live() -> bool:
            nonlocal live_hub
            live_hub = park_metrics(hub, hub_token)
            return live_hub == park_metrics(everyone, all_token)

        wait_for(same_live, 30, "the hub's /metrics/park to equal the all-in-one's")
        assert any(line.startswith("parklink_kpi_oee_ratio{") and 'level="park"' in line for line in live_hub)
        assert any(line.startswith("parklink_park_benchmark") for line in live_hub), "benchmarks (k=2)"
        assert not any('company="bolt"' in line and "quality_ratio" in line for line in live_hub), (
            "bolt hides quality"
        )
    finally:
        codes = {p.name: p.stop() for p in processes}
    assert codes == dict.fromkeys(codes, 0), "every process stops cleanly"
    # Closed windows: what the hub stored equals what the all-in-one stored, seen through sharing.
    park = load_config(tmp_path / "all.yaml", builtin_kinds()).park
    hub_view, all_view = stored_view(hub_database, park), stored_view(all_url, park)
    assert hub_view == all_view
    labels = {p.window_label for p in hub_view["park"]}
    # The record spans 06:00-08:30: two hours closed; the shift and the day are still running.
    assert labels == {"hour:2026-03-02T06:00+00:00", "hour:2026-03-02T07:00+00:00"}, labels
    assert max(p.companies for p in hub_view["park"]) == 3  # OEE is shared by all three
