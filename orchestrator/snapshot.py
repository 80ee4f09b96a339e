"""The latest-value table: one slot per signal, written by batches on the event loop.

Readers (the Prometheus collector in its HTTP thread, the API) read slots without locks: a slot
holds an immutable Sample and replacing a list item is atomic under the GIL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from models.sample import Sample

BatchListener = Callable[[Sequence[Sample]], None]


class Snapshot:
    """Latest Sample per signal index; fans batches out to listeners (KPI trackers, exporters)."""

    __slots__ = ("batches", "latest", "listeners")

    def __init__(self, size: int) -> None:
        self.latest: list[Sample | None] = [None] * size
        self.listeners: list[BatchListener] = []
        self.batches = 0

    def push(self, batch: Sequence[Sample]) -> None:
        """Take one batch: O(1) per sample, no allocation."""
        latest = self.latest
        for sample in batch:
            latest[sample.signal] = sample
        self.batches += 1
        for listener in self.listeners:
            listener(batch)
