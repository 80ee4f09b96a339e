"""A fake connector kind: the test seam for the runtime and exporters (no protocol involved)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Literal

from connectors.base import BoundSignal, ConnectorKind, LinkHealth, SampleSink
from models.assets import DataType, Strict
from models.sample import Sample
from models.status import GOOD


class FakeConnection(Strict):
    kind: Literal["fake"]
    interval: float = 0.05
    fail: bool = False


class FakeBinding(Strict):
    address: str
    writable: bool = False


class FakeConnector:
    """Pushes value = poll number for every signal each interval; `fail` makes run() raise."""

    def __init__(self, conn: FakeConnection, signals: Sequence[BoundSignal], health: LinkHealth) -> None:
        self.conn, self.signals, self.health = conn, signals, health
        self.closed = False
        self.polls = 0

    async def run(self, sink: SampleSink) -> None:
        try:
            while True:
                if self.conn.fail:
                    raise RuntimeError("fake connector bug")
                self.polls += 1
                now = time.time()
                batch = [Sample(s.signal, float(self.polls), GOOD, now, now) for s in self.signals]
                self.health.samples += len(batch)
                self.health.mark_up()
                sink(batch)
                await asyncio.sleep(self.conn.interval)
        finally:
            self.closed = True


def _validate(raw: dict[str, Any], _data_type: DataType) -> FakeBinding:
    return FakeBinding.model_validate(raw)


FAKE_KIND = ConnectorKind("fake", FakeConnection, _validate, FakeConnector)
