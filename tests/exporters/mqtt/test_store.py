"""The on-disk queue: order, peek/ack, limits that drop the oldest, restart, unwritable paths, disk full."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from exporters.mqtt.store import MessageStore, StoreError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def messages(n: int, start: int = 0) -> list[tuple[str, bytes, int, bool]]:
    return [(f"t/{i}", f"payload-{i}".encode(), 1, False) for i in range(start, start + n)]


def test_fifo_peek_and_ack(tmp_path: Path) -> None:
    """Messages come back in insertion order; an ack removes exactly the acknowledged prefix."""
    store = MessageStore(tmp_path / "q.sqlite")
    store.put_many(messages(5))
    store.put("t/5", b"payload-5", qos=0, retain=True)
    first = store.peek(3)
    assert [m.topic for m in first] == ["t/0", "t/1", "t/2"]
    assert first[0].payload == b"payload-0" and first[0].qos == 1 and first[0].retain is False
    assert [m.topic for m in store.peek(2, after=first[0].id)] == ["t/1", "t/2"]  # the sender reads on
    assert store.ack_through(first[1].id) == 2
    assert [m.topic for m in store.peek(10)] == ["t/2", "t/3", "t/4", "t/5"]
    assert store.peek(10)[-1].retain is True and store.peek(10)[-1].qos == 0
    assert len(store) == 4
    assert store.pending_bytes == sum(len(f"payload-{i}") for i in range(2, 6))
    assert store.ack_through(first[0].id) == 0  # already gone: nothing more deleted
    assert len(store) == 4
    store.close()


def test_survives_restart(tmp_path: Path) -> None:
    """Reopening the file finds the pending messages, in order, with ids that keep growing."""
    path = tmp_path / "q.sqlite"
    store = MessageStore(path)
    store.put_many(messages(10))
    store.ack_through(store.peek(4)[-1].id)
    last_id = store.peek(100)[-1].id
    store.close()
    again = MessageStore(path)
    assert len(again) == 6
    assert [m.topic for m in again.peek(100)] == [f"t/{i}" for i in range(4, 10)]
    again.put("t/new", b"x")
    assert again.peek(100)[-1].id > last_id
    again.close()


def test_max_messages_drops_oldest(tmp_path: Path) -> None:
    """Beyond max_messages the oldest go first, and each is counted."""
    store = MessageStore(tmp_path / "q.sqlite", max_messages=10)
    store.put_many(messages(7))
    store.put_many(messages(7, start=7))
    assert len(store) == 10
    assert store.dropped_total == 4
    assert [m.topic for m in store.peek(100)] == [f"t/{i}" for i in range(4, 14)]
    store.put_many(messages(25, start=14))  # one batch larger than the limit keeps its newest
    assert [m.topic for m in store.peek(100)] == [f"t/{i}" for i in range(29, 39)]
    assert store.dropped_total == 29


def test_max_bytes_drops_oldest(tmp_path: Path) -> None:
    """The byte limit counts payload bytes and drops whole messages, oldest first."""
    store = MessageStore(tmp_path / "q.sqlite", max_bytes=100)
    store.put_many([(f"t/{i}", bytes(30), 1, False) for i in range(5)])  # 150 bytes
    assert store.pending_bytes <= 100
    assert [m.topic for m in store.peek(100)] == ["t/2", "t/3", "t/4"]
    assert store.dropped_total == 2


def test_max_age_expires_oldest(tmp_path: Path) -> None:
    """Messages older than max_age are dropped at the next put or peek, and counted."""
    clock = Clock()
    store = MessageStore(tmp_path / "q.sqlite", max_age=60.0, clock=clock)
    store.put_many(messages(3))
    clock.now += 30
    store.put_many(messages(2, start=3))
    clock.now += 40  # the first three are 70 s old, the last two 40 s
    assert [m.topic for m in store.peek(100)] == ["t/3", "t/4"]
    assert store.dropped_total == 3
    clock.now += 100
    store.put("t/5", b"x")  # everything older expires on put as well
    assert [m.topic for m in store.peek(100)] == ["t/5"]
    assert store.dropped_total == 5 and len(store) == 1


def test_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    """A path whose parent is a file (or a read-only directory) raises StoreError naming the path."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="not-a-dir") as info:
        MessageStore(blocker / "queue.sqlite")
    assert "cannot be opened" in str(info.value)
    if os.geteuid() != 0:  # root writes anywhere; the parent-is-a-file case above covers it
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        with pytest.raises(StoreError, match="locked"):
            MessageStore(locked / "queue.sqlite")


def test_disk_full_is_counted_not_fatal(tmp_path: Path) -> None:
    """SQLITE_FULL on write raises StoreError, counts it, keeps earlier messages, and recovers."""
    store = MessageStore(tmp_path / "q.sqlite")
    store.put_many(messages(3))
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count={pages}")  # the file may not grow: "disk" full
    with pytest.raises(StoreError, match="not stored") as info:
        store.put_many([("big", bytes(200_000), 1, False)])
    assert "full" in str(info.value)
    assert store.write_errors_total == 1
    assert [m.topic for m in store.peek(10)] == ["t/0", "t/1", "t/2"] and len(store) == 3
    store._db.execute("PRAGMA max_page_count=1073741823")
    store.put("t/3", b"y")
    assert len(store) == 4


def test_memory_store(tmp_path: Path) -> None:
    """':memory:' works (no persistence), for demos and tests."""
    store = MessageStore(":memory:")
    store.put_many(messages(2))
    assert [m.topic for m in store.peek(5)] == ["t/0", "t/1"]


def test_file_is_wal(tmp_path: Path) -> None:
    """The queue runs in WAL mode (readers never block the writer)."""
    path = tmp_path / "q.sqlite"
    MessageStore(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
