"""Plays a recorded-samples file into the runtime: the deterministic device of replays and tests.

Rows are sorted by time once, at start, and played in batches; rows of signals this connection
does not carry are skipped (one file can hold a whole park). With `speed` > 0 each batch waits for
its time; with 0 everything is played as fast as the sink takes it. Once played, the connection
stays up and silent, like a device whose values no longer change, and `played` is set (the
`FiniteConnector` ability): the runtime can then close what ended by the last sample at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from connectors.base import BoundSignal, LinkHealth, SampleSink
from connectors.replay.config import ReplayBinding, ReplayConnection
from connectors.replay.samples import SampleFileError, read_rows
from models.sample import Sample

log = logging.getLogger("parklink.replay")


class ReplayConnector:
    """One recorded file; `run(sink)` until cancelled."""

    def __init__(self, conn: ReplayConnection, signals: Sequence[BoundSignal], health: LinkHealth) -> None:
        self.conn, self.health = conn, health
        self.played = asyncio.Event()  # set once the whole file has been handed to the sink
        self._index: dict[str, int] = {}
        for s in signals:
            binding: ReplayBinding = s.binding
            self._index[binding.source or s.path] = s.signal

    def load(self) -> list[Sample]:
        """The file's samples for this connection's signals, in time order (stable within a time)."""
        index = self._index
        out = []
        for row in read_rows(self.conn.file):
            signal = index.get(f"{row.key[0]}/{row.key[1]}")
            if signal is not None:
                out.append(Sample(signal, row.value, row.status, row.time, row.time))
        out.sort(key=lambda s: s.source_time)
        return out

    async def run(self, sink: SampleSink) -> None:
        try:
            samples = await asyncio.to_thread(self.load)
        except SampleFileError as exc:
            self.health.mark_down(str(exc))
            raise
        self.health.mark_up()
        if not samples:
            log.warning("%s: no samples for this connection's signals", self.conn.file)
            self.played.set()
            await asyncio.Event().wait()
        if self.conn.speed > 0:
            await self._paced(samples, sink)
        else:
            shift = time.time() - samples[0].source_time if self.conn.align == "now" else 0.0
            size = self.conn.batch
            for start in range(0, len(samples), size):
                batch = _shifted(samples[start : start + size], shift)
                sink(batch)
                self.health.samples += len(batch)
                await asyncio.sleep(0)  # let exporters and the API run between batches
        self.played.set()
        log.info("%s: played, %d samples", self.conn.file, len(samples))
        await asyncio.Event().wait()  # played: stay connected and silent until cancelled

    async def _paced(self, samples: list[Sample], sink: SampleSink) -> None:
        """Each group of samples with one time at (time - first) / speed after the start; with
        `align: now` their times are shifted as they go, so a sample's time is when it is handed on."""
        loop = asyncio.get_running_loop()
        started, first, speed = loop.time(), samples[0].source_time, self.conn.speed
        shift = time.time() - first if self.conn.align == "now" else 0.0
        start = 0
        while start < len(samples):
            at = samples[start].source_time
            end = start
            while end < len(samples) and samples[end].source_time == at:
                end += 1
            delay = started + (at - first) / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sink(_shifted(samples[start:end], shift))
            self.health.samples += end - start
            start = end


def _shifted(samples: list[Sample], shift: float) -> list[Sample]:
    if not shift:
        return samples
    return [s._replace(source_time=s.source_time + shift, server_time=s.server_time + shift) for s in samples]
