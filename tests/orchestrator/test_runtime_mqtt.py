"""The runtime with an `mqtt:` section: samples and shared KPIs reach the real Mosquitto."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

from exporters.mqtt.settings import MqttSettings
from exporters.mqtt.subscriber import MqttSubscriber, RawMessage
from orchestrator.config import load_config
from orchestrator.runtime import Runtime
from tests.conftest import free_port, need_server
from tests.fakes import FAKE_KIND

CONFIG = """\
park: {id: PARK}
database: {url: "sqlite:///DB"}
kpi: {update_interval: 0.5}
mqtt:
  topic_prefix: PREFIX
  retain: false
  store: {path: QUEUE}
asset_types:
  m:
    ideal_cycle_time: 1.0
    signals:
      state: {role: state, binding: {address: s}}
      good_count: {role: good_count, binding: {address: g}}
companies:
  - id: acme
    connections: {dev: {kind: fake}}
    share: [{kpis: [oee], level: line, windows: [rolling_hour]}]
    sites: [{id: s, lines: [{id: l, assets: [{id: a1, type: m, connection: dev}]}]}]
  - id: bolt
    connections: {dev: {kind: fake}}
    sites: [{id: s, lines: [{id: l, assets: [{id: b1, type: m, connection: dev}]}]}]
"""


async def test_samples_and_only_shared_kpis_are_published(tmp_path: Path) -> None:
    need_server("Mosquitto", "127.0.0.1", 1883)
    prefix = f"test{uuid.uuid4().hex[:8]}"
    text = textwrap.dedent(CONFIG).replace("PARK", "p1").replace("PREFIX", prefix)
    text = text.replace("DB", str(tmp_path / "p.db")).replace("QUEUE", str(tmp_path / "queue.sqlite"))
    (tmp_path / "park.yaml").write_text(text)
    loaded = load_config(tmp_path / "park.yaml", {"fake": FAKE_KIND})
    runtime = Runtime(loaded, {"fake": FAKE_KIND}, metrics_port=free_port(), http_port=free_port())
    listen = MqttSettings(topic_prefix=prefix)

    def seen(messages: list[RawMessage]) -> bool:
        topics = {m.topic for m in messages}
        wanted = {f"{prefix}/p1/acme/s/l/a1/good_count", f"{prefix}/p1/bolt/s/l/b1/good_count"}
        return wanted <= topics and f"{prefix}/p1/_park/acme/s/l/_kpi/rolling_hour/oee" in topics

    async with MqttSubscriber(listen, topics=[f"{prefix}/#"]) as subscriber:
        await runtime.start()
        try:
            messages = await subscriber.collect(seen, within=15)
        finally:
            await runtime.stop()
    topics = {m.topic for m in messages}
    assert f"{prefix}/p1/acme/s/l/a1/good_count" in topics
    assert f"{prefix}/p1/bolt/s/l/b1/good_count" in topics  # raw data: the company namespaces
    park_topics = {t for t in topics if "/_park/" in t}
    assert f"{prefix}/p1/_park/acme/s/l/_kpi/rolling_hour/oee" in park_topics
    assert all("/bolt/" not in t for t in park_topics), "bolt shares nothing"
    assert all(t.endswith("/oee") for t in park_topics), "acme shares only OEE"
    assert runtime.mqtt is not None and runtime.mqtt.health.published_total > 0
