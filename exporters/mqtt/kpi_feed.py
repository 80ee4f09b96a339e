"""KPI results → MQTT: a `KpiService` listener publishing UNS JSON KPI topics.

Closed windows go out per scope under the company's own namespace (every KPI: the company's own
data) and, through the park view, under `_park` (only what sharing policies publish). Current
windows go out through the park view only, to keep the volume bounded. The raw park-level
aggregate is never published: park figures come from the park view alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from exporters.mqtt.publisher import MqttPublisher
from exporters.mqtt.uns import JsonValue
from orchestrator.kpi.results import ScopedResult
from orchestrator.sharing import ParkView


class KpiFeed:
    """Publishes what the KPI service computes; register `feed.on_results` as a service listener."""

    def __init__(self, publisher: MqttPublisher) -> None:
        self.publisher = publisher

    def on_results(self, kind: str, results: Sequence[ScopedResult], view: ParkView, now: float) -> None:
        publish = self.publisher.publish_kpis
        if kind == "closed":
            for r in results:
                if r.level != "park":
                    own: dict[str, JsonValue] = {"window_label": r.window_label, "level": r.level}
                    kpis = r.result.kpis()
                    publish(r.scope, r.window_kind, kpis, time=now, start=r.start, end=r.end, extra=own)
        for p in (*view.scopes, *view.park):
            extra: dict[str, JsonValue] = {
                "window_label": p.window_label,
                "level": p.level,
                "companies": p.companies,
            }
            publish(
                p.scope, p.window_kind, p.kpis, time=now, view="park", start=p.start, end=p.end, extra=extra
            )
