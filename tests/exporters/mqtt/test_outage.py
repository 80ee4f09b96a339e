"""Store-and-forward end to end: broker outages, process restarts, limits, unwritable and full stores."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from exporters.mqtt.client import RawMessage
from exporters.mqtt.publisher import MqttPublisher
from exporters.mqtt.settings import MqttSettings
from exporters.mqtt.store import StoreError
from exporters.mqtt.subscriber import MqttSubscriber
from models.park import Park
from models.sample import Sample
from models.status import GOOD
from tests.conftest import free_port
from tests.exporters.mqtt.conftest import PrivateBroker, settings_for

T0 = 1_700_000_000.0


def samples(start: int, stop: int) -> list[Sample]:
    """Values start..stop-1 on the temperature signal of m0, one per second."""
    return [Sample(1, float(i), GOOD, T0 + i, T0 + i) for i in range(start, stop)]


@asynccontextmanager
async def running(publisher: MqttPublisher) -> AsyncIterator[None]:
    task = asyncio.create_task(publisher.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def values(messages: list[RawMessage]) -> list[float]:
    """Values in arrival order, duplicates (same msg_id: at-least-once) removed."""
    seen: set[str] = set()
    out = []
    for message in messages:
        payload = json.loads(message.payload)
        if payload["msg_id"] not in seen:
            seen.add(payload["msg_id"])
            out.append(payload["value"])
    return out


async def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    for _ in range(int(within / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"condition not met within {within} s")


def topic_of(settings: MqttSettings) -> str:
    return f"{settings.topic_prefix}/p/acme/north/hall/l1/m0/temperature"


@pytest.mark.mqtt
async def test_outage_queues_on_disk_and_delivers_all_in_order(
    private_broker: PrivateBroker, park: Park, tmp_path: Path
) -> None:
    """Broker down: messages wait on disk; broker back: all of them arrive, in order, none lost."""
    settings = settings_for(private_broker.port, tmp_path)
    publisher = MqttPublisher(settings, park)

    def subscriber() -> MqttSubscriber:  # a persistent session: the broker queues for it while away
        return MqttSubscriber(
            settings, topics=[topic_of(settings)], client_id=f"{settings.client_id}-sub", clean_start=False
        )

    got: list[RawMessage] = []
    async with running(publisher):
        async with subscriber() as sub:
            publisher.on_batch(samples(0, 100))
            got += await sub.collect(lambda m: len(m) >= 100, within=10)
            assert await publisher.wait_drained(5)  # acknowledged: nothing of these left to resend
            private_broker.stop()  # the subscriber's session is persisted by the broker
        await wait_for(lambda: not publisher.health.link.up)
        for i in range(100, 600, 50):  # batches keep coming during the outage
            publisher.on_batch(samples(i, i + 50))
            await asyncio.sleep(0.01)
        await publisher.flush()
        assert len(publisher.store) == 500 and publisher.health.queued == 500
        assert publisher.health.published_total == 100
        private_broker.start()
        assert await publisher.wait_drained(10)
        assert publisher.health.link.up and publisher.health.link.reconnects == 1
    publisher.close()
    async with subscriber() as sub:
        # Queued for us by the broker; it may redeliver some of the first 100 (same msg_id: deduped).
        got += await sub.collect(lambda m: len(values(got + m)) >= 600, within=10)
    assert values(got) == [float(i) for i in range(600)]
    assert publisher.health.published_total >= 600 and publisher.health.dropped_total == 0


@pytest.mark.mqtt
async def test_restart_replays_pending(broker: int, park: Park, tmp_path: Path) -> None:
    """What a publisher queued without ever reaching a broker, the next one on the same file sends."""
    store = {"path": str(tmp_path / "queue.sqlite")}
    offline = settings_for(free_port(), tmp_path, store=store)  # nothing listens there
    first = MqttPublisher(offline, park)
    async with running(first):
        first.on_batch(samples(0, 30))
        await first.flush()
        first.on_batch(samples(30, 50))  # still in memory when cancelled: written on the way out
    first.close()
    online = settings_for(broker, tmp_path, store=store, topic_prefix=offline.topic_prefix)
    second = MqttPublisher(online, park)
    assert len(second.store) == 50
    async with MqttSubscriber(online, topics=[topic_of(online)]) as sub, running(second):
        got = await sub.collect(lambda m: len(m) >= 50, within=10)
        assert await second.wait_drained(5)
    second.close()
    assert values(got) == [float(i) for i in range(50)]


@pytest.mark.mqtt
async def test_limits_drop_oldest_and_count(broker: int, park: Park, tmp_path: Path) -> None:
    """At max_messages the oldest drop (counted); what is left is delivered later, newest intact."""
    store = {"path": str(tmp_path / "queue.sqlite"), "max_messages": 100}
    offline = settings_for(free_port(), tmp_path, store=store)
    first = MqttPublisher(offline, park)
    first.on_batch(samples(0, 250))
    await first.flush()
    assert len(first.store) == 100
    assert first.health.dropped_total == 150 and first.health.queued == 100
    first.close()
    online = settings_for(broker, tmp_path, store=store, topic_prefix=offline.topic_prefix)
    second = MqttPublisher(online, park)
    async with MqttSubscriber(online, topics=[topic_of(online)]) as sub, running(second):
        got = await sub.collect(lambda m: len(m) >= 100, within=10)
    second.close()
    assert values(got) == [float(i) for i in range(150, 250)]


def test_unwritable_store_is_a_clear_error(park: Park, tmp_path: Path) -> None:
    """A store path that cannot be created fails at construction, naming the path."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    settings = settings_for(1883, tmp_path, store={"path": str(blocker / "queue.sqlite")})
    with pytest.raises(StoreError, match=r"file/queue\.sqlite.*cannot be opened"):
        MqttPublisher(settings, park)


async def test_full_store_keeps_messages_in_memory(park: Park, tmp_path: Path) -> None:
    """A failed write (disk full) is counted, the batch stays in memory in order, a later flush stores it."""
    settings = settings_for(free_port(), tmp_path)
    publisher = MqttPublisher(settings, park)
    db = publisher.store._db
    db.execute(f"PRAGMA max_page_count={db.execute('PRAGMA page_count').fetchone()[0]}")
    publisher.on_batch(samples(0, 2000))
    assert await publisher.flush() == 0
    assert publisher.health.store_errors_total == 1 and publisher.health.queued == 2000
    publisher.on_batch(samples(2000, 2010))
    db.execute("PRAGMA max_page_count=1073741823")
    assert await publisher.flush() == 2010
    stored = publisher.store.peek(3000)
    assert [json.loads(m.payload)["value"] for m in stored] == [float(i) for i in range(2010)]
    publisher.close()
