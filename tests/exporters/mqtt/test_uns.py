"""UNS JSON: topics and payloads (pure), then a batch end to end through the real Mosquitto at QoS 1."""

from __future__ import annotations

import asyncio
import base64
import json
import math
from pathlib import Path
from typing import Any

import pytest

from exporters.mqtt import uns
from exporters.mqtt.client import connect
from exporters.mqtt.publisher import MqttPublisher
from exporters.mqtt.subscriber import MqttSubscriber, decode_uns
from models.park import Park
from models.sample import Sample
from models.status import BAD_NO_COMMUNICATION, GOOD, UNCERTAIN_LAST_USABLE_VALUE
from tests.exporters.mqtt.conftest import settings_for

T0 = 1_700_000_000.25


def test_signal_topics_follow_isa95(park: Park) -> None:
    """Area level only when present; prefix and park first."""
    topics = [uns.signal_topic("parklink", park.id, s) for s in park.signals]
    assert topics[0] == "parklink/p/acme/north/hall/l1/m0/state"
    assert topics[3] == "parklink/p/acme/north/l1/m1/state"


@pytest.mark.parametrize(
    ("value", "expected", "base64_flag"),
    [
        (3, 3, False),
        (True, True, False),
        (2.5, 2.5, False),
        (math.nan, None, False),
        (math.inf, None, False),
        ("text", "text", False),
        (b"\x00\xff", base64.b64encode(b"\x00\xff").decode(), True),
        ([1.0, math.nan, b"a"], [1.0, None, "YQ=="], True),
        (None, None, False),
    ],
)
def test_payload_values_are_json_safe(value: Any, expected: object, base64_flag: bool) -> None:
    """bytes → base64 (flagged), NaN/inf → null; the encoded payload is strict JSON."""
    payload = uns.sample_payload(Sample(0, value, GOOD, T0, T0 + 1))
    assert payload["value"] == expected
    assert ("encoding" in payload) is base64_flag
    wire = uns.encode(payload, "id-1")
    assert json.loads(wire)["msg_id"] == "id-1"


def test_payload_fields() -> None:
    """quality, full status code and its name, ISO 8601 UTC times with milliseconds."""
    payload = uns.sample_payload(Sample(0, 1.5, UNCERTAIN_LAST_USABLE_VALUE, T0, T0 + 0.5))
    assert payload == {
        "value": 1.5,
        "quality": "uncertain",
        "status": UNCERTAIN_LAST_USABLE_VALUE,
        "status_name": "UncertainLastUsableValue",
        "source_time": "2023-11-14T22:13:20.250Z",
        "server_time": "2023-11-14T22:13:20.750Z",
    }
    bad = uns.sample_payload(Sample(0, None, BAD_NO_COMMUNICATION, T0, T0))
    assert bad["quality"] == "bad" and bad["status_name"] == "BadNoCommunication" and bad["value"] is None


def test_kpi_messages() -> None:
    """One topic per KPI under _kpi/<window>; coverage rides in every payload; park view under _park."""
    kpis = {"oee": 0.5, "availability": None, "coverage": 0.9}
    out = uns.kpi_messages(
        "parklink", "p", ("acme", "north", "", "l1"), "hour", kpis, time=T0, start=T0 - 3600
    )
    assert [t for t, _ in out] == [
        "parklink/p/acme/north/l1/_kpi/hour/oee",
        "parklink/p/acme/north/l1/_kpi/hour/availability",
    ]
    payload = out[0][1]
    assert payload["kpi"] == "oee" and payload["value"] == 0.5 and payload["coverage"] == 0.9
    assert payload["scope"] == "acme/north/l1" and payload["window"] == "hour" and "start" in payload
    assert out[1][1]["value"] is None  # undefined KPIs are published as null, not left out
    park_view = uns.kpi_messages("parklink", "p", (), "day", {"oee": 0.7}, time=T0, view="park")
    assert park_view[0][0] == "parklink/p/_park/_kpi/day/oee"
    shared = uns.kpi_messages(
        "parklink", "p", "acme/north", "day", {"oee": 0.7}, time=T0, view="park", extra={"companies": 3}
    )
    assert shared[0][0] == "parklink/p/_park/acme/north/_kpi/day/oee"
    assert shared[0][1]["companies"] == 3 and shared[0][1]["scope"] == "acme/north"
    with pytest.raises(ValueError, match="park view"):
        uns.kpi_messages("parklink", "p", (), "day", {"oee": 0.7}, time=T0)
    with pytest.raises(ValueError, match="window"):
        uns.kpi_messages("parklink", "p", ("acme",), "a/b", {"oee": 0.7}, time=T0)


@pytest.mark.mqtt
@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_batch_end_to_end(broker: int, park: Park, tmp_path: Path, protocol: str) -> None:
    """A batch through the publisher arrives on the right topics with the right JSON, at QoS 1."""
    settings = settings_for(broker, tmp_path, protocol=protocol)
    publisher = MqttPublisher(settings, park)
    batch = [
        Sample(0, 3, GOOD, T0, T0 + 0.1),
        Sample(1, 71.25, GOOD, T0, T0 + 0.1),
        Sample(4, None, BAD_NO_COMMUNICATION, T0 + 1, T0 + 1),
        Sample(5, 42, GOOD, T0 + 2, T0 + 2),
    ]
    async with MqttSubscriber(settings) as sub:
        task = asyncio.create_task(publisher.run())
        try:
            publisher.on_batch(batch)
            publisher.publish_kpis(("acme", "north"), "hour", {"oee": 0.61, "coverage": 1.0}, time=T0)
            got = await sub.collect(lambda m: len(m) >= 5, within=10)
            assert await publisher.wait_drained(5)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            publisher.close()
    prefix = settings.topic_prefix
    assert [m.topic for m in got] == [
        f"{prefix}/p/acme/north/hall/l1/m0/state",
        f"{prefix}/p/acme/north/hall/l1/m0/temperature",
        f"{prefix}/p/acme/north/l1/m1/temperature",
        f"{prefix}/p/acme/north/l1/m1/good",
        f"{prefix}/p/acme/north/_kpi/hour/oee",
    ]
    assert all(m.qos == 1 for m in got)
    first = json.loads(got[0].payload)
    assert first["value"] == 3 and first["quality"] == "good" and first["status"] == 0
    assert first["status_name"] == "Good" and first["source_time"] == "2023-11-14T22:13:20.250Z"
    assert first["server_time"] == "2023-11-14T22:13:20.350Z"
    decoded = [decode_uns(m.topic, m.payload, prefix) for m in got]
    assert decoded[2].value is None and decoded[2].status == BAD_NO_COMMUNICATION
    assert decoded[1].path == "p/acme/north/hall/l1/m0/temperature" and decoded[1].value == 71.25
    assert decoded[1].source_time == pytest.approx(T0)
    assert decoded[4].family == "kpi" and decoded[4].value == 0.61
    ids = [d.msg_id for d in decoded]
    assert len(set(ids)) == 5 and all(ids)
    assert publisher.health.published_total == 5 and publisher.health.queued == 0
    assert publisher.health.link.up


@pytest.mark.mqtt
async def test_retained_for_late_subscribers(broker: int, park: Park, tmp_path: Path) -> None:
    """With retain on, a subscriber that comes later gets the latest value; retained messages are cleared."""
    settings = settings_for(broker, tmp_path, retain=True)
    publisher = MqttPublisher(settings, park)
    task = asyncio.create_task(publisher.run())
    try:
        publisher.on_batch([Sample(1, 20.0, GOOD, T0, T0), Sample(1, 21.0, GOOD, T0 + 1, T0 + 1)])
        assert await publisher.wait_drained(5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        publisher.close()
    topic = f"{settings.topic_prefix}/p/acme/north/hall/l1/m0/temperature"
    async with MqttSubscriber(settings, topics=[topic]) as sub:
        got = await sub.collect(lambda m: len(m) >= 1, within=5)
    assert got and got[0].retain and json.loads(got[0].payload)["value"] == 21.0
    async with connect(settings, client_id=f"{settings.client_id}-clean") as conn:
        await conn.publish(topic, b"", qos=1, retain=True)  # an empty retained message deletes it


def test_structures_become_json_objects() -> None:
    from exporters.mqtt.uns import json_value

    value, encoded = json_value({"Speed": 1.5, "Raw": b"\x01", "Nested": {"Ok": True, "Bad": float("nan")}})
    assert value == {"Speed": 1.5, "Raw": "AQ==", "Nested": {"Ok": True, "Bad": None}}
    assert encoded  # bytes inside were base64-encoded
