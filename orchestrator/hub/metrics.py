"""The hub's own metrics: intake, duplicates, storage, and the end-to-end delay of values."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from connectors.base import LinkHealth

DELAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass
class HubHealth:
    """Counters of the hub's intake, read at scrape time."""

    link: LinkHealth
    messages_total: int = 0
    samples_total: int = 0
    duplicates_total: int = 0
    rejected_total: int = 0
    results_stored_total: int = 0
    db_errors_total: int = 0
    pending_closed: int = 0
    delay_buckets: list[int] = field(default_factory=lambda: [0] * (len(DELAY_BUCKETS) + 1))
    delay_sum: float = 0.0
    delay_count: int = 0

    def observe_delay(self, seconds: float) -> None:
        self.delay_buckets[bisect.bisect_left(DELAY_BUCKETS, seconds)] += 1
        self.delay_sum += seconds
        self.delay_count += 1


class HubCollector(Collector):
    """The hub's own metrics: intake, duplicates, storage, end-to-end delay."""

    def __init__(self, health: HubHealth) -> None:
        self._health = health

    def describe(self) -> Sequence[Metric]:
        return []

    def collect(self) -> Sequence[Metric]:
        h = self._health
        out: list[Metric] = []
        for name, text, value in (
            ("messages", "MQTT messages received", h.messages_total),
            ("samples", "signal values taken into the snapshot", h.samples_total),
            (
                "duplicates",
                "messages dropped as already received (at-least-once delivery)",
                h.duplicates_total,
            ),
            ("rejected", "messages refused: malformed, another company's, or not accepted", h.rejected_total),
            ("results_stored", "closed KPI results written to the database", h.results_stored_total),
            ("db_errors", "failed database writes (results kept and retried)", h.db_errors_total),
        ):
            counter = CounterMetricFamily(f"parklink_hub_{name}", text)
            counter.add_metric([], value)
            out.append(counter)
        pending = GaugeMetricFamily(
            "parklink_hub_results_pending", "closed KPI results not yet in the database"
        )
        pending.add_metric([], h.pending_closed)
        out.append(pending)
        buckets, running = [], 0
        for bound, count in zip((*DELAY_BUCKETS, float("inf")), h.delay_buckets, strict=True):
            running += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
        delay = HistogramMetricFamily(
            "parklink_hub_sample_delay_seconds",
            "Source time of a signal value to its arrival in the hub's snapshot",
            buckets=buckets,
            sum_value=h.delay_sum,
        )
        out.append(delay)
        return out
