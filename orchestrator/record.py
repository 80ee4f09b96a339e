"""Recording: a live run's samples written as the recorded-samples CSV, to verify a mapping later.

`parklink record park.yaml --out shift.csv` runs the park exactly like `parklink run` and writes
every sample the snapshot takes, Bad ones included, in the CSV that `parklink kpi --samples` and
connections of `kind: replay` read (`connectors/replay/samples.py`): a recorded shift replays to
the KPIs the live engine computed from it.

What each column holds, and what it reads back as:
- `timestamp`: the sample's source time (the time the KPI engine uses), ISO 8601 in UTC with
  microseconds (`2026-03-02T05:00:00.123456+00:00`). It reads back as the same float to the
  microsecond: exactly for OPC UA, whose timestamps are whole microseconds, within 0.5 µs for
  clocks finer than that. The server time is not kept (the file has one time column), except
  where the KPI engine reads it: a state value older than the Bad rows before it (OPC UA re-sends
  values after a reconnect stamped with the time they last changed) ends the UNKNOWN gap live at
  its server time, so it is written at that time (the engine's own rule: not before the gap's
  last row), and replays the same; counted in `restamped`.
- `asset`, `signal`: the asset path and the signal name, as the config names them.
- `value`: empty for no value (e.g. a Bad sample), `true`/`false`, integers as digits, floats as
  their shortest exact form (`3.0`, `1e+20`, `nan`, `inf`), text as it is. Arrays and structures
  are written as compact JSON text and byte strings as `0x` + hex: those read back as text (the
  reader has no richer type), and are counted in `as_text`. Limits of the reader, not of the file:
  text that looks like a number or `true`/`false`, or is empty, reads back as that; integers
  beyond 2**53 read back rounded (the reader parses numbers through float).
- `quality`: the status code's name where the code has one exactly (`Good`,
  `BadNoCommunication`), else its hex (`0x80310400`): the full code survives, sub-codes and info
  bits included.

The hot path stays batch-oriented: the snapshot listener only extends a list; a flush task
formats and writes what has gathered in a worker thread every `flush_interval` seconds and at
stop, so a process killed hard loses at most that much. A file that cannot be written stops the
recording (logged once; the run reports it) rather than the park.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TextIO

from connectors.base import ConnectorKind
from connectors.replay.samples import FIELDS
from models import status
from models.park import Park
from models.sample import Sample, Value
from orchestrator.config import LoadedConfig
from orchestrator.kpi.setup import state_maps
from orchestrator.runtime import Runtime, run_until_stopped

log = logging.getLogger("parklink.record")
Mode = Literal["new", "append", "overwrite"]
"""new: refuse an existing file; append: add rows to an existing recording; overwrite: replace it."""
FLUSH_SECONDS = 1.0


class RecordError(Exception):
    """An output file that cannot be recorded into; the message names the file and what to do."""


def format_time(t: float) -> str:
    """POSIX seconds as ISO 8601 UTC with microseconds (what `parse_time` reads back)."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")


def format_value(value: Value) -> tuple[str, bool]:
    """The value column, and whether it reads back as the same value type (False: as text)."""
    if value is None:
        return "", True
    if value is True or value is False:
        return ("true" if value else "false"), True
    if isinstance(value, int):
        return str(value), True
    if isinstance(value, float):
        return repr(value), True  # shortest exact form; nan, inf, -inf as the reader spells them
    if isinstance(value, str):
        return value, True
    if isinstance(value, bytes | bytearray):
        return "0x" + value.hex(), False
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default), False


def _json_default(value: object) -> object:
    """Byte strings inside structures as `0x` + hex; anything else JSON lacks as its text."""
    if isinstance(value, bytes | bytearray):
        return "0x" + value.hex()
    return str(value)


def format_status(code: int) -> str:
    """The quality column: a status name where it is exactly that code, else the code in hex."""
    name = status.NAMES.get(code)
    return name if name is not None else f"0x{code:08X}"


@dataclass
class Counts:
    """What a recording wrote, for the summary line."""

    samples: int = 0
    bad: int = 0
    uncertain: int = 0
    as_text: int = 0  # arrays, structures, byte strings: written as text
    restamped: int = 0  # state values re-sent after a gap, written at their server time
    lost: int = 0  # not written because the file failed


class Recorder:
    """A snapshot batch listener writing every sample as one CSV row; `open` it, `start`, `stop`."""

    def __init__(
        self, park: Park, handle: TextIO, path: Path, *, header: bool, flush_interval: float = FLUSH_SECONDS
    ) -> None:
        self.path, self.flush_interval = path, flush_interval
        self.counts = Counts()
        self.error: str | None = None
        self._handle = handle
        self._writer = csv.writer(handle, lineterminator="\n")
        if header:
            self._writer.writerow(FIELDS)
        where: list[tuple[str, str]] = [("", "")] * len(park.signals)
        for s in park.signals:
            where[s.index] = (s.asset.path, s.name)
        self._where = where
        # The signals each asset's state timeline reads (its `state`, or a composite map's inputs),
        # with what the timeline last accepted: the time, and whether it was UNKNOWN since.
        maps = state_maps(park)
        position = {a.path: k for k, a in enumerate(park.assets)}
        timeline = [-1] * len(park.signals)
        for s in park.signals:
            inputs = maps[s.asset.path].inputs
            if (s.name in inputs) if inputs else s.role == "state":
                timeline[s.index] = position[s.asset.path]
        self._timeline = timeline
        self._accepted = [-math.inf] * len(park.assets)
        self._unknown = [True] * len(park.assets)
        self._statuses: dict[int, str] = {}
        self._pending: list[Sample] = []
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def open(
        cls, park: Park, path: Path, mode: Mode = "new", flush_interval: float = FLUSH_SECONDS
    ) -> Recorder:
        """A recorder on `path`; RecordError if it exists (mode new), is no recording (append), or
        cannot be written. Opening with `x` makes the refusal race-free."""
        header = True
        try:
            if mode == "append" and path.exists() and path.stat().st_size > 0:
                _check_header(path)
                header = False
                handle = path.open("a", newline="", encoding="utf-8")
                if not _ends_with_newline(path):
                    handle.write("\n")
            else:
                handle = path.open("w" if mode != "new" else "x", newline="", encoding="utf-8")
        except FileExistsError:
            raise RecordError(
                f"{path} exists: pass --force to overwrite it or --append to add to it"
            ) from None
        except OSError as exc:
            raise RecordError(f"{path}: cannot write: {exc.strerror or exc}") from None
        return cls(park, handle, path, header=header, flush_interval=flush_interval)

    def on_batch(self, batch: Sequence[Sample]) -> None:
        """The snapshot listener: O(1) per sample, nothing formatted or written here."""
        self._pending.extend(batch)

    async def start(self) -> None:
        """Start flushing every `flush_interval` seconds."""
        self._task = asyncio.create_task(self._flush_loop(), name="recorder")

    async def stop(self) -> None:
        """Write what is left and close the file (the last write finishes first: no row is lost)."""
        self._closing.set()
        if self._task is not None:
            await asyncio.wait([self._task])  # never cancelled: a write in its thread cannot be
            self._task = None
        await self.flush()
        with contextlib.suppress(OSError):
            self._handle.close()

    async def flush(self) -> None:
        """Hand what has gathered to a worker thread to format and write."""
        if not self._pending:
            return
        samples, self._pending = self._pending, []
        if self.error is not None:
            self.counts.lost += len(samples)
            return
        try:
            await asyncio.to_thread(self.write, samples)
        except OSError as exc:  # disk full, file system gone: stop recording, not the park
            self.error = f"{self.path}: cannot write: {exc.strerror or exc}"
            self.counts.lost += len(samples)
            log.error("recording stopped: %s", self.error)

    def write(self, samples: Sequence[Sample]) -> None:
        """Format and write rows, then flush the file (one worker thread at a time)."""
        where, statuses, counts = self._where, self._statuses, self.counts
        timeline, accepted, unknown = self._timeline, self._accepted, self._unknown
        rows = []
        last_t, last_text = math.nan, ""
        for s in samples:
            code = s.status
            severity = (code >> 30) & 3
            t = s.source_time
            k = timeline[s.signal]
            if k >= 0:  # mirror StateTimeline.set: where live and replay would tell times apart
                ok = severity <= 1 and s.value is not None
                if t >= accepted[k]:
                    accepted[k], unknown[k] = t, not ok
                elif ok and unknown[k]:  # ends the gap live at its server time (not before the gap)
                    t = accepted[k] = max(s.server_time, accepted[k])
                    unknown[k] = False
                    counts.restamped += 1
            if t != last_t:  # a batch mostly shares one time: format it once
                last_t, last_text = t, format_time(t)
            quality = statuses.get(code)
            if quality is None:
                quality = statuses[code] = format_status(code)
            if severity >= 2:
                counts.bad += 1
            elif severity == 1:
                counts.uncertain += 1
            value, exact = format_value(s.value)
            if not exact:
                counts.as_text += 1
            asset, signal = where[s.signal]
            rows.append((last_text, asset, signal, value, quality))
        self._writer.writerows(rows)
        self._handle.flush()
        counts.samples += len(rows)

    async def _flush_loop(self) -> None:
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.flush_interval)
            await self.flush()

    def summary(self) -> str:
        """One line: how many samples went into which file, and what to know about them."""
        c = self.counts
        text = (
            f"{c.samples} samples written to {self.path} ({c.bad} Bad, {c.uncertain} Uncertain"
            + (f", {c.as_text} arrays/structures/bytes as text" if c.as_text else "")
            + (
                f", {c.restamped} state values re-sent after a gap at their server time"
                if c.restamped
                else ""
            )
            + ")"
        )
        if self.error is not None:
            text += f"; recording stopped early: {self.error}; {c.lost} samples not written"
        return text


def _check_header(path: Path) -> None:
    """Appending only continues a recording: the same columns in the same order."""
    with path.open(newline="", encoding="utf-8") as handle:
        first = next(csv.reader(handle), [])
    if tuple(column.strip() for column in first) != FIELDS:
        raise RecordError(
            f"{path}: not a recording to append to (its header is {','.join(first)!r}, "
            f"expected {','.join(FIELDS)!r})"
        )


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) in (b"\n", b"\r")


class Recording:
    """A `Runtime` (role all) with a recorder on its snapshot: what `parklink record` runs."""

    def __init__(
        self,
        loaded: LoadedConfig,
        kinds: Mapping[str, ConnectorKind],
        recorder: Recorder,
        metrics_port: int | None = None,
        http_port: int | None = None,
    ) -> None:
        self.runtime = Runtime(loaded, kinds, metrics_port=metrics_port, http_port=http_port)
        self.recorder = recorder
        self.runtime.snapshot.listeners.append(recorder.on_batch)

    async def start(self) -> None:
        """Flushing first, then the park: no sample arrives before the recorder listens."""
        await self.recorder.start()
        await self.runtime.start()

    async def stop(self) -> None:
        """The park first (its last Bad samples are recorded too), then the file."""
        try:
            await self.runtime.stop()
        finally:
            await self.recorder.stop()

    async def run(
        self, duration: float | None = None, started: Callable[[Recording], None] | None = None
    ) -> None:
        """Until SIGINT/SIGTERM or `duration` seconds, then stop cleanly."""
        await run_until_stopped(self, duration, started)
