"""Disk full under the MQTT store-and-forward queue: a clear error, a metric, no loop, nothing lost.

The queue's SQLite file lives on an 8 MiB filesystem of the test's own (a tmpfs, mounted as root).
A thousand messages are queued on it, then the rest of the filesystem is filled with a file, so
SQLite really gets ENOSPC (SQLITE_FULL). The publisher then runs against a Mosquitto of the test's
own (its queue for our subscriber unbounded: the broker drops nothing) while samples keep coming:
the stored thousand are delivered once (deleting them needs disk space too, and must not make the
sender send them again and again), new messages wait in memory, one log line names the file and
says "disk full", `parklink_mqtt_store_errors_total` counts and `parklink_mqtt_store_writable` is
0. Once the filler is deleted, everything is written, delivered in order and deleted from the
queue: none lost, none duplicated.

Where mounting is not permitted (not root, a container without CAP_SYS_ADMIN), the last resort is
SQLite's own size limit (`PRAGMA max_page_count` at the file's current size): the same SQLITE_FULL
for writes, though deletes then still succeed (they only need WAL space). CI runs as root.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporters.mqtt.client import RawMessage
from exporters.mqtt.metrics import MqttCollector
from exporters.mqtt.publisher import MqttPublisher
from exporters.mqtt.store import MessageStore
from exporters.mqtt.subscriber import MqttSubscriber
from models.sample import Sample
from models.status import GOOD
from tests.brokers import PrivateBroker, private_broker  # noqa: F401  (a fixture)
from tests.conftest import Recorder
from tests.exporters.mqtt.conftest import make_park, settings_for
from tests.orchestrator.hub.parks import metric_value

pytestmark = pytest.mark.timeout(60)

T0 = 1_700_000_000.0
BEFORE = 1000  # queued on disk before it fills
DURING = 4000  # produced while it is full


class SmallDisk:
    """An 8 MiB filesystem for the queue; `fill()` and `free()` its remaining space."""

    def __init__(self, root: Path) -> None:
        self.path = root / "disk"
        self.path.mkdir()
        self.filler = self.path / "filler"
        self.mounted = False
        self.store: MessageStore | None = None  # the page-limit fallback acts on the store's file

    def mount(self) -> bool:
        if os.geteuid() != 0:
            return False
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(self.path)],
            capture_output=True,
            timeout=10,
            check=False,
        )
        self.mounted = done.returncode == 0
        return self.mounted

    def unmount(self) -> None:
        if self.mounted:
            done = subprocess.run(["umount", str(self.path)], capture_output=True, timeout=10, check=False)
            if done.returncode != 0:  # something still holds a file there: detach it anyway
                subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=10, check=False)
            self.mounted = False

    def fill(self, store: MessageStore | None = None) -> int:
        """Take every byte left; how many that was."""
        if not self.mounted:
            assert store is not None, "the page-limit fallback needs the store"
            self.store = store
            with store._lock:
                pages = store._db.execute("PRAGMA page_count").fetchone()[0]
                store._db.execute(f"PRAGMA max_page_count={pages}")
            return 0
        written = 0
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            while True:
                written += os.write(fd, b"\0" * 4096)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
        finally:
            os.close(fd)
        return written

    def free(self) -> None:
        if self.store is not None:
            with self.store._lock:
                self.store._db.execute("PRAGMA max_page_count=4294967294")
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    disk = SmallDisk(tmp_path)
    disk.mount()
    try:
        yield disk
    finally:
        disk.unmount()


def samples(start: int, stop: int) -> list[Sample]:
    """Values start..stop-1 on the temperature signal of m0, one per second."""
    return [Sample(1, float(i), GOOD, T0 + i, T0 + i) for i in range(start, stop)]


def values(messages: list[RawMessage]) -> list[float]:
    """Values in arrival order, duplicates (same msg_id) removed."""
    seen: set[str] = set()
    out = []
    for message in messages:
        payload = json.loads(message.payload)
        if payload["msg_id"] not in seen:
            seen.add(payload["msg_id"])
            out.append(payload["value"])
    return out


def exposed(publisher: MqttPublisher) -> tuple[float | None, float | None]:
    """(`parklink_mqtt_store_errors_total`, `parklink_mqtt_store_writable`) as /metrics shows them."""
    registry = CollectorRegistry()
    registry.register(MqttCollector(publisher.health))
    text = generate_latest(registry).decode()
    errors = metric_value(text, "parklink_mqtt_store_errors_total")
    return errors, metric_value(text, "parklink_mqtt_store_writable")


@contextlib.asynccontextmanager
async def running(publisher: MqttPublisher) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(publisher.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_disk_full_under_the_queue(
    private_broker: PrivateBroker,  # noqa: F811
    small_disk: SmallDisk,
    tmp_path: Path,
    record: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store_path = small_disk.path / "queue.sqlite"
    settings = settings_for(private_broker.port, tmp_path, store={"path": str(store_path)})
    publisher = MqttPublisher(settings, make_park())
    topic = f"{settings.topic_prefix}/p/acme/north/hall/l1/m0/temperature"
    got: list[RawMessage] = []
    caplog.set_level(logging.INFO, logger="parklink.mqtt")
    started = time.monotonic()
    try:
        async with MqttSubscriber(settings, topics=[topic]) as sub:
            publisher.on_batch(samples(0, BEFORE))
            assert await publisher.flush() == BEFORE
            filled = small_disk.fill(publisher.store)
            async with running(publisher) as task:
                for i in range(BEFORE, BEFORE + DURING, 400):  # samples keep coming while it is full
                    publisher.on_batch(samples(i, i + 400))
                    await asyncio.sleep(0.05)
                got += await sub.collect(lambda m: len(m) >= BEFORE, within=10)
                got += await sub.collect(lambda m: False, within=1.0)  # a resending loop would show here
                assert values(got) == [float(i) for i in range(BEFORE)], "the stored ones, once, in order"
                assert len(got) == BEFORE, "nothing sent twice while the queue cannot delete"
                errors, writable = exposed(publisher)
                assert errors is not None and errors >= 1 and writable == 0
                assert publisher.health.queued == len(publisher.store) + DURING
                assert not task.done(), "still running: no crash"
                mqtt_logs = [r for r in caplog.records if r.name == "parklink.mqtt"]
                full_errors = [r.getMessage() for r in mqtt_logs if r.levelno >= logging.ERROR]
                assert len(full_errors) == 1, full_errors
                assert str(store_path) in full_errors[0] and "disk full" in full_errors[0]

                small_disk.free()
                assert await publisher.wait_drained(15), "written, delivered and deleted once space is back"
                got += await sub.collect(lambda m: len(got) + len(m) >= BEFORE + DURING, within=10)
                errors_after, writable_after = exposed(publisher)
                assert writable_after == 1 and not task.done()
                await asyncio.sleep(0.3)
                assert exposed(publisher) == (errors_after, 1), "no error once space is back"
    finally:
        publisher.close()
    elapsed = time.monotonic() - started
    delivered = values(got)
    lost = BEFORE + DURING - len(set(delivered))
    filler = f"a {filled // 1024} KiB filler" if small_disk.mounted else "max_page_count"
    record(
        "disk full under the MQTT store-and-forward queue (tmpfs"
        + (")" if small_disk.mounted else " not mountable: SQLite page limit)"),
        DURING,
        sum(1 for v in delivered if v >= BEFORE),
        lost,
        f"{BEFORE} queued before it filled ({filler}), {DURING} produced while full: "
        f"kept in memory, written and delivered after; {int(errors or 0)} store errors, 1 log line; "
        f"{elapsed:.1f} s",
    )
    assert delivered == [float(i) for i in range(BEFORE + DURING)], "all of them, in order"
    assert len(got) == len(delivered), "no duplicates"
    messages = [r.getMessage() for r in caplog.records if r.name == "parklink.mqtt"]
    assert sum("disk full" in m for m in messages) == 1 and sum("writable again" in m for m in messages) == 1


async def test_restart_on_a_full_disk(
    private_broker: PrivateBroker,  # noqa: F811
    small_disk: SmallDisk,
    tmp_path: Path,
    record: Recorder,
) -> None:
    """parklink restarted while the disk is full comes up: the queue opens (no -shm file to create),
    what it holds is delivered, new messages wait in memory until space is back. No crash loop."""
    if not small_disk.mounted:
        pytest.skip(reason="a restart on a full disk needs a real full filesystem (mounting a tmpfs)")
    settings = settings_for(private_broker.port, tmp_path, store={"path": str(small_disk.path / "q.sqlite")})
    before = MqttPublisher(settings, make_park())  # the process before the restart: never got to send
    before.on_batch(samples(0, BEFORE))
    assert await before.flush() == BEFORE
    before.close()
    small_disk.fill()
    started = time.monotonic()
    restarted = MqttPublisher(settings, make_park())  # raised StoreError ("disk I/O error") before
    assert len(restarted.store) == BEFORE
    got: list[RawMessage] = []
    try:
        topic = f"{settings.topic_prefix}/p/acme/north/hall/l1/m0/temperature"
        async with MqttSubscriber(settings, topics=[topic]) as sub, running(restarted) as task:
            restarted.on_batch(samples(BEFORE, BEFORE + DURING))
            got += await sub.collect(lambda m: len(m) >= BEFORE, within=10)
            for _ in range(200):
                if not restarted.health.store_writable:
                    break
                await asyncio.sleep(0.01)
            assert exposed(restarted)[1] == 0 and not task.done()
            small_disk.free()
            assert await restarted.wait_drained(15)
            got += await sub.collect(lambda m: len(got) + len(m) >= BEFORE + DURING, within=10)
    finally:
        restarted.close()
    delivered = values(got)
    lost = BEFORE + DURING - len(set(delivered))
    record(
        "parklink restarted on a full disk (MQTT queue reopened)",
        1,
        int(delivered == [float(i) for i in range(BEFORE + DURING)]),
        lost,
        f"{BEFORE} queued before the restart delivered, {DURING} new ones kept in memory until space "
        f"was back; {time.monotonic() - started:.1f} s",
    )
    assert delivered == [float(i) for i in range(BEFORE + DURING)] and len(got) == len(delivered)
