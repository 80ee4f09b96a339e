"""Prometheus metrics of the MQTT publisher: queue depth, drops, store errors, published."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporters.mqtt.publisher import MqttHealth


class MqttCollector(Collector):
    """Reads `MqttHealth` at scrape time (its up/reconnects are in the connection metrics)."""

    def __init__(self, health: MqttHealth) -> None:
        self._health = health

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        h = self._health
        published = CounterMetricFamily("parklink_mqtt_published", "Messages acknowledged by the broker")
        published.add_metric([], float(h.published_total))
        queued = GaugeMetricFamily("parklink_mqtt_queued_messages", "Messages waiting (store-and-forward)")
        queued.add_metric([], float(h.queued))
        dropped = CounterMetricFamily("parklink_mqtt_dropped", "Messages dropped at the queue limits")
        dropped.add_metric([], float(h.dropped_total))
        errors = CounterMetricFamily(
            "parklink_mqtt_store_errors", "Failed reads or writes of the on-disk queue"
        )
        errors.add_metric([], float(h.store_errors_total))
        writable = GaugeMetricFamily(
            "parklink_mqtt_store_writable",
            "1 while the on-disk queue takes writes, 0 after a failure (disk full): messages wait in memory",
        )
        writable.add_metric([], float(h.store_writable))
        yield from (published, queued, dropped, errors, writable)
