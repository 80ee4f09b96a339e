"""The edge role's side of the edge/hub protocol (exporters/mqtt/edge_protocol.py).

Wires a `MqttPublisher` so the hub can rebuild the park from this edge: births (each company's
model, then status online) at every connect, the will (status offline), and a `KpiService`
listener sending the results the companies' policies share. Sharing is enforced here, at the edge
that owns the data: a result whose company shares nothing of its level and window never leaves,
nor does a suspect one (orchestrator/kpi/guard.py; the hub checks again, it trusts no edge).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

from exporters.mqtt import uns
from exporters.mqtt.client import Will
from exporters.mqtt.edge_protocol import company_model, edge_topic, results_message
from exporters.mqtt.publisher import MqttPublisher
from models.park import Park
from orchestrator.kpi.results import ScopedResult
from orchestrator.sharing import ParkView, shares


class EdgeFeed:
    """Makes a publisher an edge; register `on_results` as a KPI service listener."""

    def __init__(self, publisher: MqttPublisher, park: Park) -> None:
        self.publisher, self.park = publisher, park
        settings = publisher.settings
        self._prefix = settings.topic_prefix
        self.companies = sorted(park.companies)
        node = publisher.sparkplug
        self._sparkplug_node = f"{node.group_id}/{node.edge_node_id}" if node is not None else None
        # One process may host several companies; the will can name one topic only, so the first
        # company's status carries it and the hub treats every company of the edge alike.
        self.status_topics = [edge_topic(self._prefix, park.id, c, "status") for c in self.companies]
        offline = json.dumps({"online": False, "client_id": publisher.client_id}).encode()
        if self.status_topics:
            publisher.will = Will(self.status_topics[0], offline, qos=1, retain=True)
        publisher.births = self.births

    def births(self) -> list[tuple[str, uns.Payload]]:
        """Models first, then status online: a hub that reads the status already knows the model."""
        out: list[tuple[str, uns.Payload]] = []
        client_id = self.publisher.client_id
        for company in self.companies:
            model = company_model(
                self.park, company, client_id=client_id, sparkplug_node=self._sparkplug_node
            )
            out.append((edge_topic(self._prefix, self.park.id, company, "model"), model))
        status: uns.Payload = {"online": True, "client_id": client_id, "time": uns.iso(time.time())}
        out.extend((topic, dict(status)) for topic in self.status_topics)
        return out

    def on_results(self, kind: str, results: Sequence[ScopedResult], view: ParkView, now: float) -> None:
        del view  # the hub rebuilds the park view from the results themselves
        if kind not in ("current", "closed"):
            return
        which: Literal["current", "closed"] = "closed" if kind == "closed" else "current"
        by_company: dict[str, list[ScopedResult]] = defaultdict(list)
        for r in results:
            if shares(r, self.park.share) and not r.suspect:
                by_company[r.company].append(r)
        for company in self.companies:
            shared = by_company.get(company, [])
            if which == "closed" and not shared:
                continue
            message = results_message(which, company, now, shared)
            topic = edge_topic(self._prefix, self.park.id, company, "results")
            self.publisher.publish(topic, message, retain=False)
