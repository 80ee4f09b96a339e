"""Store-and-forward: a bounded, ordered, on-disk queue of outgoing MQTT messages (SQLite, WAL).

Contract:
- `put_many` appends in one transaction; the row id (AUTOINCREMENT, never reused) is the order.
- `peek(n)` returns the oldest n; `ack(ids)` deletes them once the broker acknowledged them. A
  crash between the two replays them: delivery is at-least-once, in order.
- Limits (messages, payload bytes, age): at the limit the *oldest* are deleted and counted in
  `dropped_total`. Fresh data is worth more than old data to a live dashboard, and a bounded
  file never fills the disk of an edge box.
- A file that cannot be opened or written raises `StoreError` with the path and the reason
  ("disk full" first when SQLite says so); `write_errors_total` counts failed writes. Nothing is
  retried in here: the caller decides. On a full disk even acks fail (a delete needs WAL pages).

Durability: WAL with `synchronous=NORMAL`: a committed message survives a process crash; a power
loss may lose the last transactions but never corrupts the file.

Thread safety: one connection guarded by a lock, so the publisher can run writes off the event
loop in a worker thread while tests call it directly. The connection holds the file exclusively
(`locking_mode=EXCLUSIVE`: no -shm file, so it opens on a full disk; no second process on it).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

from exporters.mqtt.settings import StoreSettings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    created REAL NOT NULL
)
"""


class StoreError(Exception):
    """The message store cannot be opened or written (path, permissions, disk full, corrupt file)."""


class StoredMessage(NamedTuple):
    """One pending message; `id` gives the order and is what `ack` takes."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    created: float


Message = tuple[str, bytes, int, bool]  # topic, payload, qos, retain


class MessageStore:
    """A bounded FIFO of MQTT messages in one SQLite file."""

    def __init__(
        self,
        path: Path | str,
        *,
        max_messages: int = 1_000_000,
        max_bytes: int = 512 * 1024 * 1024,
        max_age: float = 7 * 24 * 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = str(path)
        self.max_messages, self.max_bytes, self.max_age = max_messages, max_bytes, max_age
        self.dropped_total = 0
        self.write_errors_total = 0
        self._clock = clock
        self._lock = threading.Lock()
        db: sqlite3.Connection | None = None
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we open transactions ourselves (BEGIN IMMEDIATE), one per batch.
            db = self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # One connection owns the file, so the WAL index lives in its memory, not in a -shm file
            # that needs disk space: a restart on a full disk still opens the queue and sends it.
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            count, size = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM messages"
            ).fetchone()
        except (sqlite3.Error, OSError) as exc:
            if db is not None:
                db.close()
            raise StoreError(f"MQTT message store {self.path!r} cannot be opened: {_reason(exc)}") from None
        self._count, self._bytes = int(count), int(size)

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> MessageStore:
        """A store with the path and limits of the settings."""
        return cls(
            settings.path,
            max_messages=settings.max_messages,
            max_bytes=settings.max_bytes,
            max_age=settings.max_age,
        )

    def __len__(self) -> int:
        return self._count

    @property
    def pending_bytes(self) -> int:
        """Payload bytes pending."""
        return self._bytes

    def put(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Append one message (prefer `put_many` on hot paths: one transaction per batch)."""
        self.put_many([(topic, payload, qos, retain)])

    def put_many(self, messages: Iterable[Message]) -> int:
        """Append messages in order in one transaction, then enforce the limits; returns how many."""
        now = self._clock()
        rows = [(t, p, q, int(r), now) for t, p, q, r in messages]
        if not rows:
            return 0
        with self._lock:
            before = (self._count, self._bytes, self.dropped_total)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT INTO messages (topic, payload, qos, retain, created) VALUES (?, ?, ?, ?, ?)", rows
                )
                self._count += len(rows)
                self._bytes += sum(len(r[1]) for r in rows)
                self._enforce(now)
                self._db.execute("COMMIT")  # on a full disk, this is what fails
            except sqlite3.Error as exc:
                self._rollback()
                self._count, self._bytes, self.dropped_total = before  # rolled back: none of it happened
                self.write_errors_total += 1
                raise StoreError(
                    f"MQTT message store {self.path!r}: {len(rows)} messages not stored: {_reason(exc)}"
                ) from None
        return len(rows)

    def peek(self, n: int, after: int = 0) -> list[StoredMessage]:
        """The oldest `n` pending messages with an id above `after`, in order (expired ones dropped first)."""
        with self._lock:
            try:
                if self._count:
                    self._expire(self._clock())
                cursor = self._db.execute(
                    "SELECT id, topic, payload, qos, retain, created FROM messages"
                    " WHERE id > ? ORDER BY id LIMIT ?",
                    (after, n),
                )
                return [StoredMessage(i, t, bytes(p), q, bool(r), c) for i, t, p, q, r, c in cursor]
            except sqlite3.Error as exc:
                raise StoreError(f"MQTT message store {self.path!r} cannot be read: {_reason(exc)}") from None

    def ack_through(self, last: int) -> int:
        """Delete every message up to id `last`: the sender acknowledges a prefix of the queue. How many."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                gone = self._delete("DELETE FROM messages WHERE id <= ? RETURNING LENGTH(payload)", (last,))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                self.write_errors_total += 1
                raise StoreError(f"MQTT message store {self.path!r}: ack failed: {_reason(exc)}") from None
            self._count -= len(gone)
            self._bytes -= sum(gone)
            return len(gone)

    def close(self) -> None:
        """Close the file (pending messages stay in it for the next open)."""
        with self._lock:
            self._db.close()

    def _delete(self, sql: str, params: tuple[object, ...]) -> list[int]:
        """Run a DELETE … RETURNING LENGTH(payload); the sizes of the deleted rows."""
        return [int(size) for (size,) in self._db.execute(sql, params)]

    def _enforce(self, now: float) -> None:
        """Drop the oldest messages over the age, count and byte limits (inside a transaction)."""
        self._expire(now, in_transaction=True)
        if self._count > self.max_messages:
            self._drop_oldest(self._count - self.max_messages)
        if self._bytes > self.max_bytes:
            excess, n = self._bytes - self.max_bytes, 0
            freed = 0
            for (size,) in self._db.execute("SELECT LENGTH(payload) FROM messages ORDER BY id"):
                freed += int(size)
                n += 1
                if freed >= excess:
                    break
            self._drop_oldest(n)

    def _drop_oldest(self, n: int) -> None:
        gone = self._delete(
            "DELETE FROM messages WHERE id IN (SELECT id FROM messages ORDER BY id LIMIT ?) "
            "RETURNING LENGTH(payload)",
            (n,),
        )
        self._count -= len(gone)
        self._bytes -= sum(gone)
        self.dropped_total += len(gone)

    def _expire(self, now: float, in_transaction: bool = False) -> int:
        """Drop messages older than max_age; their count.

        Messages are appended with the current time, so the expired ones are a prefix in id order:
        one indexed look at the oldest decides, and the scan stops at the first young message.
        """
        cutoff = now - self.max_age
        oldest = self._db.execute("SELECT created FROM messages ORDER BY id LIMIT 1").fetchone()
        if oldest is None or oldest[0] >= cutoff:
            return 0
        young = self._db.execute(
            "SELECT id FROM messages WHERE created >= ? ORDER BY id LIMIT 1", (cutoff,)
        ).fetchone()
        if not in_transaction:
            self._db.execute("BEGIN IMMEDIATE")
        try:
            if young is None:
                gone = self._delete("DELETE FROM messages RETURNING LENGTH(payload)", ())
            else:
                gone = self._delete(
                    "DELETE FROM messages WHERE id < ? RETURNING LENGTH(payload)", (young[0],)
                )
            if not in_transaction:
                self._db.execute("COMMIT")
        except sqlite3.Error:
            if not in_transaction:
                self._rollback()
            raise
        self._count -= len(gone)
        self._bytes -= sum(gone)
        self.dropped_total += len(gone)
        return len(gone)

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # no transaction open when BEGIN itself failed
            self._db.execute("ROLLBACK")


def _reason(exc: sqlite3.Error | OSError) -> str:
    """SQLite's message, led by "disk full" when the disk (or the file's size limit) is full."""
    if isinstance(exc, sqlite3.Error) and exc.sqlite_errorcode == sqlite3.SQLITE_FULL:
        return f"disk full ({exc})"
    return str(exc)
