"""Sparkplug B: payload mapping (pure), then the edge node against the real Mosquitto.

Every payload is decoded with the pb2 generated from the official sparkplug_b.proto.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from exporters.mqtt.client import Connection, RawMessage, connect
from exporters.mqtt.settings import MqttSettings
from exporters.mqtt.sparkplug import payloads as spb
from exporters.mqtt.sparkplug import sparkplug_b_pb2 as pb
from exporters.mqtt.sparkplug.edge import ALIAS_BASE, SparkplugEdgeNode, device_id
from exporters.mqtt.subscriber import MqttSubscriber
from models.park import Park
from models.sample import Sample
from models.status import BAD_NO_COMMUNICATION, GOOD, UNCERTAIN_LAST_USABLE_VALUE
from tests.exporters.mqtt.conftest import settings_for

T0 = 1_700_000_000.0
ROOT = Path(__file__).resolve().parents[3]


# ---- pure mapping ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("datatype", "value"),
    [
        (pb.Int8, -5),
        (pb.Int16, -32768),
        (pb.Int32, -1),
        (pb.Int64, -(2**63)),
        (pb.UInt16, 65535),
        (pb.UInt32, 2**32 - 1),
        (pb.UInt64, 2**64 - 1),
        (pb.Float, 1.5),
        (pb.Double, -2.25),
        (pb.Boolean, True),
        (pb.String, "héllo"),
        (pb.Bytes, b"\x00\x01"),
        (pb.DateTime, T0 + 0.5),
    ],
)
def test_values_round_trip(datatype: int, value: object) -> None:
    """Each type encodes into its oneof field and decodes back (signed types sign-extended)."""
    payload = pb.Payload(timestamp=1, seq=0)
    spb.add_metric(payload, alias=16, datatype=datatype, value=value, status=GOOD, timestamp=T0, name="m")
    metric = spb.decode(payload.SerializeToString()).metrics[0]
    assert spb.metric_value(metric) == value
    assert metric.datatype == datatype and metric.timestamp == 1_700_000_000_000
    assert not metric.properties.keys  # Good: no Quality property


def test_quality_mapping() -> None:
    """Bad → is_null + Quality 0; Uncertain → value + Quality 500 (STALE); StatusCode: the OPC UA code."""
    payload = pb.Payload()
    spb.add_metric(
        payload, alias=1, datatype=pb.Double, value=None, status=BAD_NO_COMMUNICATION, timestamp=T0
    )
    spb.add_metric(
        payload, alias=2, datatype=pb.Double, value=4.0, status=UNCERTAIN_LAST_USABLE_VALUE, timestamp=T0
    )
    bad, uncertain = spb.decode(payload.SerializeToString()).metrics
    assert bad.is_null and bad.WhichOneof("value") is None
    assert spb.properties(bad) == {"Quality": 0, "StatusCode": BAD_NO_COMMUNICATION}
    assert bad.properties.values[0].type == pb.Int32 and bad.properties.values[1].type == pb.UInt32
    assert spb.metric_value(uncertain) == 4.0
    assert spb.properties(uncertain) == {"Quality": 500, "StatusCode": UNCERTAIN_LAST_USABLE_VALUE}


def test_widening() -> None:
    """Values that do not fit their declared type widen: Int64, then Double, then String."""
    assert not spb.fits(pb.Int16, 70_000) and spb.widen(pb.Int16, 70_000) == pb.Int64
    assert not spb.fits(pb.Int16, 2.5) and spb.widen(pb.Int16, 2.5) == pb.Double
    assert not spb.fits(pb.Double, "x") and spb.widen(pb.Double, "x") == pb.String
    assert spb.fits(pb.String, [1, 2]) and spb.fits(pb.Boolean, 1) and spb.fits(pb.Double, None)


def test_device_ids(park: Park) -> None:
    """Asset path joined by '.', area level only when set."""
    assert [device_id(a) for a in park.assets] == ["acme.north.hall.l1.m0", "acme.north.l1.m1"]


# ---- edge node on the broker -----------------------------------------------------------------


@asynccontextmanager
async def running(node: SparkplugEdgeNode) -> AsyncIterator[None]:
    task = asyncio.create_task(node.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def kind(message: RawMessage) -> str:
    return message.topic.split("/")[2]


async def births(sub: MqttSubscriber, devices: int = 2) -> list[RawMessage]:
    """Read until one NBIRTH and its DBIRTHs arrived (other messages before them are skipped)."""
    got = await sub.collect(lambda m: sum(kind(x) == "DBIRTH" for x in m) >= devices, within=5)
    start = max(i for i, m in enumerate(got) if kind(m) == "NBIRTH")
    return got[start : start + 1 + devices]


def spb_settings(port: int, tmp_path: Path, **sparkplug: object) -> MqttSettings:
    return settings_for(port, tmp_path, payloads=["sparkplug"], sparkplug=sparkplug)


def spb_subscriber(settings: MqttSettings) -> MqttSubscriber:
    group = settings.sparkplug.group_id
    return MqttSubscriber(settings, topics=[f"spBv1.0/{group}/#"], client_id=f"{settings.client_id}-sub")


@pytest.mark.mqtt
async def test_births_and_data(broker: int, park: Park, tmp_path: Path) -> None:
    """NBIRTH (bdSeq, Rebirth), one DBIRTH per asset with every metric, then DDATA with changes only."""
    settings = spb_settings(broker, tmp_path)
    node = SparkplugEdgeNode(settings, park)
    node.on_batch([Sample(0, 3, GOOD, T0, T0), Sample(1, 20.5, GOOD, T0, T0)])
    async with spb_subscriber(settings) as sub, running(node):
        nbirth, dbirth0, dbirth1 = await births(sub)
        node.on_batch([Sample(1, 20.5, GOOD, T0 + 1, T0 + 1), Sample(2, 7, GOOD, T0 + 1, T0 + 1)])
        node.on_batch([Sample(4, None, BAD_NO_COMMUNICATION, T0 + 2, T0 + 2)])
        data = await sub.collect(lambda m: len(m) >= 2, within=5)
    group = settings.sparkplug.group_id
    assert nbirth.topic == f"spBv1.0/{group}/NBIRTH/edge1" and nbirth.qos == 0 and not nbirth.retain
    n = spb.decode(nbirth.payload)
    assert n.seq == 0 and n.timestamp > 0
    assert [(m.name, m.datatype, spb.metric_value(m)) for m in n.metrics] == [
        ("bdSeq", pb.UInt64, 0),
        ("Node Control/Rebirth", pb.Boolean, False),
    ]
    assert dbirth0.topic == f"spBv1.0/{group}/DBIRTH/edge1/acme.north.hall.l1.m0"
    d0 = spb.decode(dbirth0.payload)
    assert d0.seq == 1 and spb.decode(dbirth1.payload).seq == 2
    assert [(m.name, m.alias, m.datatype) for m in d0.metrics] == [
        ("state", ALIAS_BASE + 0, pb.Int16),
        ("temperature", ALIAS_BASE + 1, pb.Double),
        ("good", ALIAS_BASE + 2, pb.UInt32),
    ]
    assert [spb.metric_value(m) for m in d0.metrics] == [3, 20.5, None]
    assert d0.metrics[0].timestamp == 1_700_000_000_000
    assert spb.properties(d0.metrics[2])["StatusCode"] == 0x80320000  # BadWaitingForInitialData
    assert [kind(m) for m in data] == ["DDATA", "DDATA"]
    first, second = (spb.decode(m.payload) for m in data)
    assert data[0].topic.endswith("/acme.north.hall.l1.m0") and data[1].topic.endswith("/acme.north.l1.m1")
    # temperature did not change: only `good` goes, by alias, without a name
    assert [(m.name, m.alias, spb.metric_value(m)) for m in first.metrics] == [("", ALIAS_BASE + 2, 7)]
    assert (first.seq, second.seq) == (3, 4)
    assert second.metrics[0].is_null and spb.properties(second.metrics[0])["Quality"] == 0
    assert node.health.births_total == 1 and node.health.messages_total == 5
    # The subscriber side maps DATA aliases back to names through the births it saw.
    decoded = [d for m in (nbirth, dbirth0, dbirth1, *data) for d in sub.decode(m)]
    by_path = {(d.message_type, d.path): d for d in decoded}
    good = by_path[("DDATA", f"{group}/edge1/acme.north.hall.l1.m0/good")]
    assert (good.value, good.status, good.seq, good.source_time) == (7, GOOD, 3, T0 + 1)
    lost = by_path[("DDATA", f"{group}/edge1/acme.north.l1.m1/temperature")]
    assert lost.value is None and lost.status == BAD_NO_COMMUNICATION
    assert by_path[("NBIRTH", f"{group}/edge1/bdSeq")].value == 0


@pytest.mark.mqtt
async def test_seq_wraps_after_255(broker: int, park: Park, tmp_path: Path) -> None:
    """seq runs 0..255 across NBIRTH, DBIRTH and DDATA, then wraps to 0 (checked on 300 messages)."""
    settings = spb_settings(broker, tmp_path, publish_interval=0.001)
    node = SparkplugEdgeNode(settings, park)
    seqs: list[int] = []
    async with spb_subscriber(settings) as sub, running(node):
        seqs += [spb.decode(m.payload).seq for m in await births(sub)]
        for i in range(300):
            node.on_batch([Sample(1, float(i), GOOD, T0 + i, T0 + i)])
            message = await asyncio.wait_for(sub.next(), 5)
            assert kind(message) == "DDATA"
            seqs.append(spb.decode(message.payload).seq)
    assert seqs[:3] == [0, 1, 2]
    assert seqs == [i % 256 for i in range(303)]


@pytest.mark.mqtt
async def test_rebirth_on_ncmd(broker: int, park: Park, tmp_path: Path) -> None:
    """NCMD Node Control/Rebirth=true re-sends NBIRTH (seq 0, same bdSeq) and DBIRTHs with current values."""
    settings = spb_settings(broker, tmp_path)
    node = SparkplugEdgeNode(settings, park)
    async with spb_subscriber(settings) as sub, running(node):
        first = await births(sub)
        node.on_batch([Sample(3, 1, GOOD, T0, T0)])
        await sub.collect(lambda m: len(m) >= 1, within=5)  # its DDATA
        command = pb.Payload(timestamp=spb.ms(time.time()))
        metric = command.metrics.add(name="Node Control/Rebirth", datatype=pb.Boolean)
        metric.boolean_value = True
        async with connect(settings, client_id=f"{settings.client_id}-host") as host:
            await host.publish(node.topic("NCMD"), command.SerializeToString(), qos=1)
        second = await births(sub)
    again = spb.decode(second[0].payload)
    assert again.seq == 0
    assert spb.metric_value(again.metrics[0]) == spb.metric_value(spb.decode(first[0].payload).metrics[0])
    assert [spb.metric_value(m) for m in spb.decode(second[2].payload).metrics] == [1, None, None]
    assert node.health.rebirth_requests_total == 1 and node.health.births_total == 2


@pytest.mark.mqtt
async def test_births_wait_for_primary_host_state(broker: int, park: Park, tmp_path: Path) -> None:
    """With a primary host: no births until STATE online; data stops when offline; births again when back."""
    settings = spb_settings(broker, tmp_path)
    host_id = f"host-{settings.client_id}"
    settings = spb_settings(broker, tmp_path, primary_host_id=host_id, group_id=settings.sparkplug.group_id)
    state_topic = f"spBv1.0/STATE/{host_id}"
    node = SparkplugEdgeNode(settings, park)

    async def state(host: Connection, online: bool, stamp: int) -> None:
        body = json.dumps({"online": online, "timestamp": stamp}).encode()
        await host.publish(state_topic, body, qos=1, retain=True)

    async with (
        spb_subscriber(settings) as sub,
        connect(settings, client_id=f"{settings.client_id}-host") as host,
        running(node),
    ):
        try:
            assert await sub.collect(lambda m: len(m) >= 1, within=0.5) == []  # host unknown: silent
            now = spb.ms(time.time())
            await state(host, True, now)
            first = await births(sub)
            await state(host, False, now + 1)
            await asyncio.sleep(0.2)
            node.on_batch([Sample(1, 5.0, GOOD, T0, T0)])
            assert await sub.collect(lambda m: len(m) >= 1, within=0.3) == []  # host offline: no DDATA
            await state(host, True, now - 10)  # an older STATE arriving late is ignored
            assert await sub.collect(lambda m: len(m) >= 1, within=0.3) == []
            await state(host, True, now + 2)
            second = await births(sub)
        finally:
            await host.publish(state_topic, b"", qos=1, retain=True)  # clear the retained STATE
    assert spb.decode(first[0].payload).seq == 0 and spb.decode(second[0].payload).seq == 0
    assert spb.metric_value(spb.decode(second[1].payload).metrics[1]) == 5.0  # births carry the latest
    assert node.health.births_total == 2


@pytest.mark.mqtt
async def test_type_drift_rebirths_with_wider_type(broker: int, park: Park, tmp_path: Path) -> None:
    """A float on an int16 signal (e.g. Modbus scaling) re-births the device with the metric as Double."""
    settings = spb_settings(broker, tmp_path)
    node = SparkplugEdgeNode(settings, park)
    async with spb_subscriber(settings) as sub, running(node):
        await births(sub)
        node.on_batch([Sample(0, 2.5, GOOD, T0, T0)])
        second = await births(sub)
    state = spb.decode(second[1].payload).metrics[0]
    assert state.name == "state" and state.datatype == pb.Double and spb.metric_value(state) == 2.5
    assert node.health.widened_total == 1


@pytest.mark.mqtt
async def test_bdseq_increments_per_connect_and_persists(broker: int, park: Park, tmp_path: Path) -> None:
    """bdSeq: +1 per session, also across node objects sharing its file; a graceful stop sends NDEATH."""
    settings = spb_settings(broker, tmp_path, bdseq_file=str(tmp_path / "bdseq"))
    seen: list[int] = []
    async with spb_subscriber(settings) as sub:
        for _ in range(2):
            node = SparkplugEdgeNode(settings, park)
            async with running(node):
                nbirth = (await births(sub))[0]
                bdseq = spb.metric_value(spb.decode(nbirth.payload).metrics[0])
                assert isinstance(bdseq, int)
                seen.append(bdseq)
            death = await sub.collect(lambda m: any(kind(x) == "NDEATH" for x in m), within=5)
            ndeath = spb.decode(death[-1].payload)
            assert not ndeath.HasField("seq")  # NDEATH carries no seq
            assert spb.metric_value(ndeath.metrics[0]) == seen[-1]
    assert seen == [0, 1]
    assert (tmp_path / "bdseq").read_text().strip() == "1"


@pytest.mark.mqtt
async def test_ndeath_will_when_process_dies(broker: int, tmp_path: Path) -> None:
    """SIGKILL an edge node process: the broker publishes its NDEATH will, with the NBIRTH's bdSeq."""
    settings = spb_settings(broker, tmp_path)
    group = settings.sparkplug.group_id or ""
    async with spb_subscriber(settings) as sub:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.exporters.mqtt.edge_child",
            str(broker),
            group,
            settings.client_id or "",
            cwd=ROOT,
        )
        try:
            nbirth = (await births(sub))[0]
            child.send_signal(signal.SIGKILL)  # no DISCONNECT: the socket just closes
            await asyncio.wait_for(child.wait(), 5)
            got = await sub.collect(lambda m: any(kind(x) == "NDEATH" for x in m), within=5)
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
    death = next(m for m in got if kind(m) == "NDEATH")
    assert death.topic == f"spBv1.0/{group}/NDEATH/edge1" and death.qos == 1
    ndeath = spb.decode(death.payload)
    assert [m.name for m in ndeath.metrics] == ["bdSeq"]
    assert spb.metric_value(ndeath.metrics[0]) == spb.metric_value(spb.decode(nbirth.payload).metrics[0])
