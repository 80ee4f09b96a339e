"""The hub's intake, message by message, without a broker: models, values, results, liveness."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from exporters.mqtt import uns
from exporters.mqtt.client import RawMessage
from exporters.mqtt.edge_feed import EdgeFeed
from exporters.mqtt.edge_protocol import company_model, edge_topic, results_message
from exporters.mqtt.sparkplug import payloads as spb
from models.park import Park
from models.sample import Sample
from orchestrator.config import LoadedConfig, load_config
from orchestrator.hub.runtime import HubRuntime
from orchestrator.kpi.elements import Elements
from orchestrator.kpi.engine import KpiEngine
from orchestrator.kpi.results import ScopedResult, scoped_results
from orchestrator.kpi.windows import Window
from orchestrator.registry import builtin_kinds
from orchestrator.sharing import ParkView
from tests.orchestrator.hub.parks import COMPANIES, mqtt_section, park_config, write_config

PREFIX = "uns"
ROOT = f"{PREFIX}/harbour"


def loaded(tmp_path: Path, companies: tuple[str, ...], hub: dict[str, Any] | None = None) -> LoadedConfig:
    config = park_config(
        companies,
        tmp_path / "none.csv",
        f"sqlite:///{tmp_path}/x.db",
        mqtt=mqtt_section(1, tmp_path / "q.db", PREFIX),
    )
    if hub:
        config["hub"] = hub
    name = "-".join(companies) or "hub"
    return load_config(write_config(tmp_path / f"{name}.yaml", config), builtin_kinds())


@pytest.fixture
def edges(tmp_path: Path) -> Park:
    """The park as the edges know it (every company's part)."""
    return loaded(tmp_path, COMPANIES).park


@pytest.fixture
def hub(tmp_path: Path) -> HubRuntime:
    return HubRuntime(loaded(tmp_path, ()))


def message(
    topic: str, payload: dict[str, Any] | bytes, msg_id: str | None = None, retain: bool = False
) -> RawMessage:
    if isinstance(payload, dict):
        data = uns.encode(dict(payload), msg_id) if msg_id else json.dumps(payload).encode()
    else:
        data = payload
    return RawMessage(topic, data, 1, retain)


def announce(
    hub: HubRuntime, park: Park, company: str, client_id: str = "edge-1", node: str | None = None
) -> None:
    model = company_model(park, company, client_id=client_id, sparkplug_node=node)
    hub.handle(message(edge_topic(PREFIX, "harbour", company, "model"), model, "p-birth-1"))
    hub.handle(
        message(edge_topic(PREFIX, "harbour", company, "status"), {"online": True, "client_id": client_id})
    )


def value(park: Park, path: str, v: object, t: float, msg_id: str) -> RawMessage:
    signal = next(s for s in park.signals if s.path == path)
    payload = uns.sample_payload(Sample(signal.index, v, 0, t, t))  # type: ignore[arg-type]
    return message(f"{ROOT}/{path}", payload, msg_id)


def results_of(park: Park, company: str) -> list[ScopedResult]:
    """A day of results for every scope of one company (all running, 100 good parts per asset)."""
    engine = KpiEngine(park)
    assets = [a for a in park.assets if a.company == company]
    for a in assets:
        for name, v in (("state", 3), ("good_count", 0)):
            s = next(s for s in park.signals if s.asset == a and s.name == name)
            engine.feed([Sample(s.index, v, 0, 1000.0, 1000.0)])
        s = next(s for s in park.signals if s.asset == a and s.name == "good_count")
        engine.feed([Sample(s.index, 100, 0, 4000.0, 4000.0)])
    window = Window("day:test", 0.0, 86400.0)
    return scoped_results(((a, engine.window_elements(a, window, 5000.0)) for a in assets), "day", window)


def test_model_builds_the_park_and_values_land_in_the_snapshot(hub: HubRuntime, edges: Park) -> None:
    announce(hub, edges, "acme")
    assert set(hub.park.companies) == {"acme"}
    assert {a.path for a in hub.park.assets} == {a.path for a in edges.assets if a.company == "acme"}
    assert [link.ref.company for link in hub.links] == ["acme"] and hub.links[0].health.up
    path = "acme/north/line-1/m1/state"
    now = time.time()
    hub.handle(value(edges, path, 3, now - 0.5, "p1-1"))
    index = hub._signal_index[path]
    latest = hub.snapshot.latest[index]
    assert (
        latest is not None and latest.value == 3 and latest.source_time == pytest.approx(now - 0.5, abs=0.001)
    )
    assert hub.health.samples_total == 1 and hub.health.delay_count == 1 and hub.health.delay_sum >= 0.5
    # A second company: the first one's values survive the rebuild.
    announce(hub, edges, "bolt", client_id="edge-2")
    latest = hub.snapshot.latest[hub._signal_index[path]]
    assert latest is not None and latest.value == 3


def test_duplicates_are_dropped_by_message_number(hub: HubRuntime, edges: Park) -> None:
    announce(hub, edges, "acme")
    path = "acme/north/line-1/m1/good_count"
    hub.handle(value(edges, path, 10, 100.0, "prod-1"))
    hub.handle(value(edges, path, 11, 101.0, "prod-2"))
    hub.handle(value(edges, path, 11, 101.0, "prod-2"))  # re-sent after a lost PUBACK
    hub.handle(value(edges, path, 10, 100.0, "prod-1"))
    hub.handle(value(edges, path, 12, 102.0, "other-1"))  # another producer (the edge restarted)
    assert hub.health.samples_total == 3 and hub.health.duplicates_total == 2
    latest = hub.snapshot.latest[hub._signal_index[path]]
    assert latest is not None and latest.value == 12


def test_a_retained_copy_never_hides_a_queued_message(hub: HubRuntime, edges: Park) -> None:
    announce(hub, edges, "acme")
    path = "acme/north/line-1/m1/good_count"
    hub.handle(value(edges, path, 5, 100.0, "prod-1"))
    retained = value(edges, path, 13, 109.0, "prod-9")._replace(retain=True)  # at (re)subscribe
    hub.handle(retained)
    for n in range(2, 10):  # then the queue of the persistent session, in order
        hub.handle(value(edges, path, 4 + n, 100.0 + n, f"prod-{n}"))
    assert hub.health.samples_total == 9  # the retained copy is not a reason to drop 2..9
    latest = hub.snapshot.latest[hub._signal_index[path]]
    assert latest is not None and latest.value == 13 and latest.source_time == 109.0


def test_results_are_filtered_again_by_the_announced_policy(hub: HubRuntime, edges: Park) -> None:
    announce(hub, edges, "bolt")
    results = results_of(edges, "bolt")  # every level: bolt shares oee and availability per company only
    topic = edge_topic(PREFIX, "harbour", "bolt", "results")
    hub.handle(message(topic, results_message("current", "bolt", 5000.0, results), "b-1"))
    assert [r.level for r in hub.kpi.current] == ["company"]
    assert hub.health.rejected_total == len(results) - 1
    published = hub.kpi.view.scopes
    assert [(p.scope, sorted(p.kpis)) for p in published] == [("bolt", ["availability", "oee"])]
    assert published[0].kpis["oee"] == pytest.approx(100 * 20 / 4000)  # PRU·GQ / PBT (running 1000..5000 s)
    # Results on bolt's topic that name acme are refused as a whole.
    hub.handle(message(topic, results_message("current", "acme", 5000.0, results_of(edges, "acme")), "b-2"))
    assert [r.company for r in hub.kpi.current] == ["bolt"]


def test_a_result_of_another_company_inside_a_message_is_refused(hub: HubRuntime, edges: Park) -> None:
    """A message that names its own company but carries another company's scopes: those are refused,
    even where the other company's own policy would share them (acme shares every level)."""
    announce(hub, edges, "acme")
    announce(hub, edges, "bolt", client_id="edge-2")
    foreign = results_of(edges, "acme")
    own = [r for r in results_of(edges, "bolt") if r.level == "company"]
    topic = edge_topic(PREFIX, "harbour", "bolt", "results")
    hub.handle(message(topic, results_message("current", "bolt", 5000.0, [*foreign, *own]), "b-1"))
    assert [(r.company, r.level) for r in hub.kpi.current] == [("bolt", "company")]
    assert hub.health.rejected_total == len(foreign)
    assert all(p.names[0] == "bolt" for p in hub.kpi.view.scopes)


def test_results_before_the_model_wait_for_it(hub: HubRuntime, edges: Park) -> None:
    topic = edge_topic(PREFIX, "harbour", "acme", "results")
    hub.handle(message(topic, results_message("current", "acme", 5000.0, results_of(edges, "acme")), "a-1"))
    assert hub.kpi.current == []
    announce(hub, edges, "acme")
    assert {r.level for r in hub.kpi.current} == {"company", "site", "line", "asset"}


def test_closed_results_are_kept_until_stored(hub: HubRuntime, edges: Park) -> None:
    announce(hub, edges, "acme")
    topic = edge_topic(PREFIX, "harbour", "acme", "results")
    closed = [r for r in results_of(edges, "acme") if r.level != "park"]
    hub.handle(message(topic, results_message("closed", "acme", 5000.0, closed), "a-1"))
    hub.handle(message(topic, results_message("closed", "acme", 5000.0, closed), "a-1"))  # duplicate
    assert hub.health.pending_closed == len(closed) and hub.health.duplicates_total == 1


def test_will_stale_and_sparkplug_death_mark_edges_down(hub: HubRuntime, edges: Park) -> None:
    announce(hub, edges, "acme", client_id="gw-1")
    announce(hub, edges, "bolt", client_id="gw-1")  # one process hosting two companies
    offline = {"online": False, "client_id": "gw-1"}
    hub.handle(message(edge_topic(PREFIX, "harbour", "acme", "status"), offline))
    assert [link.health.up for link in hub.links] == [False, False]
    announce(hub, edges, "acme", client_id="gw-1")
    assert hub.links[0].health.up and hub.links[0].health.reconnects == 1
    # Silence beyond stale_after.
    hub._last_seen["acme"] = time.monotonic() - hub.settings.stale_after - 1
    hub._mark_stale()
    assert not hub.links[0].health.up and "stale" in hub.links[0].health.last_error
    # Sparkplug: a death with the bdSeq of the current birth counts, an older session's does not.
    announce(hub, edges, "acme", client_id="gw-1", node="harbour/gw")
    birth = spb.ndeath(7, 1.0)  # a payload with bdSeq 7 stands in for the NBIRTH's
    hub.handle(RawMessage(spb.topic("harbour", "NBIRTH", "gw"), birth, 0, False))
    hub.handle(RawMessage(spb.topic("harbour", "NDEATH", "gw"), spb.ndeath(6, 2.0), 1, False))
    assert hub.links[0].health.up
    hub.handle(RawMessage(spb.topic("harbour", "NDEATH", "gw"), spb.ndeath(7, 3.0), 1, False))
    assert not hub.links[0].health.up and hub.links[0].health.last_error == "Sparkplug NDEATH"


def test_bad_messages_are_counted_never_raised(hub: HubRuntime, edges: Park) -> None:
    announce(hub, edges, "acme")
    hub.handle(RawMessage(edge_topic(PREFIX, "harbour", "acme", "model"), b"\xff\x00not json", 1, True))
    hub.handle(
        message(edge_topic(PREFIX, "harbour", "acme", "model"), {"park": "harbour", "company": "acme"})
    )
    hub.handle(message(edge_topic(PREFIX, "harbour", "acme", "results"), {"kind": "weekly"}))
    hub.handle(RawMessage(f"{ROOT}/acme/north/line-1/m1/state", b"[1, 2]", 1, False))
    hub.handle(RawMessage(spb.topic("harbour", "NDEATH", "gw"), b"\x0a\xff\xff", 1, False))
    model = company_model(edges, "bolt")
    hub.handle(message(edge_topic(PREFIX, "harbour", "acme", "model"), model))  # bolt's model on acme's topic
    assert hub.health.rejected_total == 6
    assert set(hub.park.companies) == {"acme"}  # the good model stands


def test_only_accepted_companies(tmp_path: Path, edges: Park) -> None:
    hub = HubRuntime(loaded(tmp_path, (), {"companies": ["acme"]}))
    announce(hub, edges, "acme")
    announce(hub, edges, "bolt")
    assert set(hub.park.companies) == {"acme"} and hub.health.rejected_total == 2


def sparkplug(kind: str, device: str, metrics: list[tuple[int, str | None, int]], at: float) -> RawMessage:
    payload = spb.pb.Payload(timestamp=spb.ms(at), seq=1)
    for alias, name, v in metrics:
        spb.add_metric(
            payload, alias=alias, datatype=spb.pb.UInt32, value=v, status=0, timestamp=at, name=name
        )
    return RawMessage(spb.topic("harbour", kind, "gw", device), payload.SerializeToString(), 0, False)


def test_sparkplug_device_data_of_an_announced_node(hub: HubRuntime, edges: Park) -> None:
    now = time.time()
    device = "acme.north.line-1.m1"
    hub.handle(sparkplug("DBIRTH", device, [(16, "state", 3)], now))  # before the model: whose node?
    assert hub.health.samples_total == 0
    announce(hub, edges, "acme", node="harbour/gw")
    hub.handle(sparkplug("DBIRTH", device, [(16, "state", 3), (17, "good_count", 10)], now - 1))
    hub.handle(sparkplug("DDATA", device, [(17, None, 12)], now))  # by alias only, as DDATA is
    good = hub.snapshot.latest[hub._signal_index["acme/north/line-1/m1/good_count"]]
    state = hub.snapshot.latest[hub._signal_index["acme/north/line-1/m1/state"]]
    assert good is not None and good.value == 12 and abs(good.source_time - now) < 0.002
    assert state is not None and state.value == 3
    assert hub.health.samples_total == 3
    # A device of another company under acme's node is not acme's to report.
    hub.handle(sparkplug("DDATA", "bolt.north.line-1.m1", [(16, "state", 1)], now))
    assert hub.health.samples_total == 3


def test_one_edge_cannot_mark_another_down_or_take_its_sparkplug_node(hub: HubRuntime, edges: Park) -> None:
    announce(hub, edges, "acme", client_id="edge-a", node="harbour/gw-a")
    announce(hub, edges, "bolt", client_id="edge-b", node="harbour/gw-b")
    # acme's topic, naming bolt's client: only acme goes down.
    hub.handle(
        message(edge_topic(PREFIX, "harbour", "acme", "status"), {"online": False, "client_id": "edge-b"})
    )
    up = {link.ref.company: link.health.up for link in hub.links}
    assert up == {"acme": False, "bolt": True}
    # acme claims bolt's Sparkplug node: bolt's data still lands, acme cannot report bolt's assets.
    announce(hub, edges, "acme", client_id="edge-a", node="harbour/gw-b")
    now = time.time()
    bolt_device = "bolt.north.line-1.m1"
    birth = sparkplug("DBIRTH", bolt_device, [(16, "state", 3)], now)._replace(
        topic=spb.topic("harbour", "DBIRTH", "gw-b", bolt_device)
    )
    hub.handle(birth)
    state = hub.snapshot.latest[hub._signal_index["bolt/north/line-1/m1/state"]]
    assert state is not None and state.value == 3
    forged = sparkplug("DDATA", bolt_device, [(16, None, 1)], now + 1)._replace(
        topic=spb.topic("harbour", "DDATA", "gw-a", bolt_device)
    )
    hub.handle(forged)
    state = hub.snapshot.latest[hub._signal_index["bolt/north/line-1/m1/state"]]
    assert state is not None and state.value == 3


def test_the_hub_flags_impossible_results_itself_and_never_shares_them(
    hub: HubRuntime, edges: Park, caplog: pytest.LogCaptureFixture
) -> None:
    """An edge that does not flag (an older version, a laxer `max_effectiveness`) sends acme's m1 with
    100 parts at PRU 1 s in 20 s running (E = 5): the hub checks the received elements with its own
    bound, flags m1 and every scope above it, keeps them out of the park view, logs m1 once."""
    announce(hub, edges, "acme")
    m1, m2 = (next(a for a in edges.assets if a.path == f"acme/north/line-1/{m}") for m in ("m1", "m2"))
    window = Window("day:test", 0.0, 86400.0)
    running = Elements(apt=4000, adet=0, pq=100, gq=100, ideal_time=100, ideal_good_time=100)
    impossible = Elements(apt=20, adet=3980, pq=100, gq=100, ideal_time=100, ideal_good_time=100)
    unflagged = [
        replace(r, suspect=())
        for r in scoped_results([(m1, impossible), (m2, running)], "day", window, max_effectiveness=100.0)
        if r.level != "park"  # an edge never sends the park level
    ]
    assert not any(r.suspect for r in unflagged)
    topic = edge_topic(PREFIX, "harbour", "acme", "results")
    with caplog.at_level(logging.WARNING, logger="parklink.hub"):
        hub.handle(message(topic, results_message("current", "acme", 5000.0, unflagged), "a-1"))
        hub.handle(message(topic, results_message("current", "acme", 5010.0, unflagged), "a-2"))
    flagged = {r.scope: r.suspect for r in hub.kpi.current}
    assert flagged["acme/north/line-1/m1"][0] == "effectiveness 5 > 1.5"
    assert flagged["acme/north/line-1/m2"] == ()
    assert flagged["acme/north/line-1"][-1] == "contains suspect asset acme/north/line-1/m1"
    assert flagged["acme"][-1] == "contains suspect asset acme/north/line-1/m1"
    assert [p.scope for p in hub.kpi.view.scopes] == ["acme/north/line-1/m2"]
    warnings = [r.getMessage() for r in caplog.records if "suspect" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("hub: KPI result of acme/north/line-1/m1")
    assert hub.health.rejected_total == 0  # flagged, not refused: the policy shares them
    # Closed windows are stored flagged (the stored view leaves them out in turn).
    hub.handle(message(topic, results_message("closed", "acme", 5020.0, unflagged), "a-3"))
    assert {r.scope for r in hub._closed_backlog if r.suspect} == {
        "acme",
        "acme/north",
        "acme/north/line-1",
        "acme/north/line-1/m1",
    }


def test_an_edge_never_sends_a_suspect_result(tmp_path: Path, edges: Park) -> None:
    from tests.test_security_defaults import Publisher

    publisher = Publisher()
    feed = EdgeFeed(publisher, edges)  # type: ignore[arg-type]  # a stand-in publisher
    m1, m2 = (next(a for a in edges.assets if a.path == f"acme/north/line-1/{m}") for m in ("m1", "m2"))
    window = Window("day:test", 0.0, 86400.0)
    running = Elements(apt=4000, pq=100, gq=100, ideal_time=100, ideal_good_time=100)
    impossible = Elements(apt=20, adet=3980, pq=100, gq=100, ideal_time=100, ideal_good_time=100)
    results = scoped_results([(m1, impossible), (m2, running)], "day", window)
    feed.on_results("current", results, ParkView(), 5000.0)
    sent = dict(publisher.sent)["uns/harbour/acme/_edge/results"]["results"]
    assert [r["scope"] for r in sent] == ["acme/north/line-1/m2"]  # acme shares every level
