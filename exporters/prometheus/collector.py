"""A custom collector that builds metric families from the snapshot at scrape time.

Nothing is set per sample: the hot path only replaces snapshot slots. At scrape time each signal
becomes one sample of the family `parklink_<signal>_<base unit>` with labels company, site, line,
asset (a bounded set: the configured hierarchy). Bad values are left out (absent, not stale).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from connectors.base import LinkHealth
from models.park import Park
from models.status import quality_of
from models.units import to_base_unit
from orchestrator.snapshot import Snapshot

PREFIX = "parklink"
ASSET_LABELS = ["company", "site", "line", "asset"]
_NUMERIC = (int, float)


@dataclass(frozen=True, slots=True)
class _Series:
    signal: int
    labels: tuple[str, ...]
    factor: float


class ParkCollector(Collector):
    """Signals, asset info and connection health of one park."""

    def __init__(self, park: Park, snapshot: Snapshot, health: Sequence[LinkHealth]) -> None:
        self._park, self._snapshot, self._health = park, snapshot, health
        families: dict[str, tuple[str, list[_Series]]] = {}
        self._quality: list[_Series] = []
        for signal in park.signals:
            suffix, factor = to_base_unit(signal.unit)
            name = f"{PREFIX}_{signal.name}" + (
                f"_{suffix}" if suffix and not signal.name.endswith(suffix) else ""
            )
            asset = signal.asset
            labels = (asset.company, asset.site, asset.line, asset.asset)
            unit_note = f" (device unit {signal.unit!r})" if signal.unit else ""
            families.setdefault(
                name, (f"Signal {signal.name}{unit_note}, latest Good or Uncertain value", [])
            )
            families[name][1].append(_Series(signal.index, labels, factor))
            self._quality.append(_Series(signal.index, (*labels, signal.name), 1.0))
        self._families = families

    def describe(self) -> Iterable[Metric]:
        return []  # families depend on the park; no duplicate checks needed in our own registry

    def collect(self) -> Iterable[Metric]:
        latest = self._snapshot.latest
        for name, (help_text, series) in self._families.items():
            family = GaugeMetricFamily(name, help_text, labels=ASSET_LABELS)
            for item in series:
                sample = latest[item.signal]
                if sample is None or quality_of(sample.status) == 0:
                    continue
                value = sample.value
                if isinstance(value, _NUMERIC):  # bool is an int
                    family.add_metric(item.labels, float(value) * item.factor)
            yield family
        quality = GaugeMetricFamily(
            f"{PREFIX}_signal_quality",
            "Quality of the latest sample: 2 good, 1 uncertain, 0 bad or none yet",
            labels=[*ASSET_LABELS, "signal"],
        )
        for item in self._quality:
            sample = latest[item.signal]
            quality.add_metric(item.labels, 0.0 if sample is None else float(quality_of(sample.status)))
        yield quality
        yield from self._asset_info()
        yield from self._connection_health()

    def _asset_info(self) -> Iterable[Metric]:
        info = GaugeMetricFamily(
            f"{PREFIX}_asset_info",
            "Asset metadata (value 1)",
            labels=[*ASSET_LABELS, "area", "name", "type", "connection"],
        )
        for a in self._park.assets:
            if not a.retired:
                info.add_metric(
                    [a.company, a.site, a.line, a.asset, a.area, a.name, a.type, a.connection], 1.0
                )
        yield info

    def _connection_health(self) -> Iterable[Metric]:
        labels = ["company", "connection", "kind"]
        up = GaugeMetricFamily(f"{PREFIX}_connection_up", "1 when the connection works", labels=labels)
        samples = CounterMetricFamily(
            f"{PREFIX}_connection_samples", "Samples received from the connection", labels=labels
        )
        errors = CounterMetricFamily(
            f"{PREFIX}_connection_read_errors", "Failed reads, connects and requests", labels=labels
        )
        reconnects = CounterMetricFamily(
            f"{PREFIX}_connection_reconnects", "Times the connection recovered after a loss", labels=labels
        )
        rtt = GaugeMetricFamily(
            f"{PREFIX}_connection_round_trip_seconds", "Last request round-trip time", labels=labels
        )
        for h in self._health:
            key = [h.company, h.connection, h.kind]
            up.add_metric(key, 1.0 if h.up else 0.0)
            samples.add_metric(key, float(h.samples))
            errors.add_metric(key, float(h.read_errors))
            reconnects.add_metric(key, float(h.reconnects))
            if h.last_rtt == h.last_rtt:  # not NaN
                rtt.add_metric(key, h.last_rtt)
        yield from (up, samples, errors, reconnects, rtt)
