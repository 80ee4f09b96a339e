"""The Prometheus collector: families from the snapshot at scrape time, base units, health."""

from __future__ import annotations

import textwrap
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connectors.base import LinkHealth
from exporters.prometheus.collector import ParkCollector
from models.sample import Sample
from models.status import BAD_NO_COMMUNICATION, GOOD, UNCERTAIN
from orchestrator.config import load_config
from orchestrator.snapshot import Snapshot
from tests.fakes import FAKE_KIND

CONFIG = """\
park: {id: p}
asset_types:
  oven:
    signals:
      state: {role: state, type: int16, binding: {address: s}}
      energy: {role: energy, unit: kWh, binding: {address: e}}
      temperature: {unit: °C, binding: {address: t}}
      cycle: {unit: ms, binding: {address: c}}
companies:
  - id: acme
    connections: {dev: {kind: fake}}
    sites:
      - id: north
        areas:
          - id: hall
            lines:
              - id: l1
                assets:
                  - {id: oven-1, type: oven, connection: dev, name: Oven One}
"""


def scrape(tmp_path: Path, samples: list[Sample], health: LinkHealth) -> str:
    (tmp_path / "c.yaml").write_text(textwrap.dedent(CONFIG))
    park = load_config(tmp_path / "c.yaml", {"fake": FAKE_KIND}).park
    snapshot = Snapshot(len(park.signals))
    snapshot.push(samples)
    registry = CollectorRegistry()
    registry.register(ParkCollector(park, snapshot, [health]))
    return generate_latest(registry).decode()


def series(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by name and label set."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


ASSET = {"company": "acme", "site": "north", "line": "l1", "asset": "oven-1"}
LINK = {"company": "acme", "connection": "dev", "kind": "fake"}


def key(metric: str, /, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return metric, frozenset(labels.items())


def test_signals_in_base_units_with_hierarchy_labels(tmp_path: Path) -> None:
    health = LinkHealth("dev", "fake", "acme", up=True, samples=7, read_errors=2, last_rtt=0.004)
    got = series(
        scrape(
            tmp_path,
            [
                Sample(0, 3, GOOD, 1.0, 1.0),
                Sample(1, 2.5, GOOD, 1.0, 1.0),
                Sample(2, 71.5, UNCERTAIN, 1.0, 1.0),
                Sample(3, None, BAD_NO_COMMUNICATION, 1.0, 1.0),
            ],
            health,
        )
    )
    assert got[key("parklink_state", **ASSET)] == 3.0
    assert got[key("parklink_energy_joules", **ASSET)] == 9e6  # 2.5 kWh
    assert got[key("parklink_temperature_celsius", **ASSET)] == 71.5
    assert key("parklink_cycle_seconds", **ASSET) not in got  # Bad: absent, not a stale value
    assert got[key("parklink_signal_quality", **ASSET, signal="cycle")] == 0.0
    assert got[key("parklink_signal_quality", **ASSET, signal="temperature")] == 1.0
    info = key("parklink_asset_info", **ASSET, area="hall", name="Oven One", type="oven", connection="dev")
    assert got[info] == 1.0
    assert got[key("parklink_connection_up", **LINK)] == 1.0
    assert got[key("parklink_connection_samples_total", **LINK)] == 7.0
    assert got[key("parklink_connection_read_errors_total", **LINK)] == 2.0
    assert got[key("parklink_connection_round_trip_seconds", **LINK)] == 0.004


def test_scrape_reads_current_snapshot(tmp_path: Path) -> None:
    health = LinkHealth("dev", "fake", "acme")
    got = series(scrape(tmp_path, [Sample(0, 1, GOOD, 1.0, 1.0), Sample(0, 4, GOOD, 2.0, 2.0)], health))
    assert got[key("parklink_state", **ASSET)] == 4.0
    assert got[key("parklink_connection_up", **LINK)] == 0.0
    assert key("parklink_connection_round_trip_seconds", **LINK) not in got  # never measured: absent
