"""KPI time taken from the data: the newest source time seen, for replays and backfills.

With `kpi.clock: data`, windows open and close as the samples' own time passes, so the results of a
recorded day depend on the samples alone, not on when or how fast they were played. Before the
first sample there is no time at all (-inf), and the KPI jobs wait. After a restart it resumes at
the saved state's time, so samples a source plays again from before it do not move time back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from models.sample import Sample


class DataClock:
    """A snapshot listener that remembers the newest source time; call it for `now`."""

    __slots__ = ("latest", "on_first")

    def __init__(self) -> None:
        self.latest = -math.inf
        self.on_first: Callable[[float], None] | None = None  # told the first time: where time starts

    def on_batch(self, batch: Sequence[Sample]) -> None:
        newest = max((s.source_time for s in batch), default=-math.inf)
        if newest > self.latest:
            if self.latest == -math.inf and self.on_first is not None:
                self.on_first(min(s.source_time for s in batch))
            self.latest = newest

    def resume(self, at: float) -> None:
        """Time had reached `at` before a restart (a saved state): it goes on from there, never back
        to the re-played samples' time."""
        self.latest = max(self.latest, at)

    def __call__(self) -> float:
        return self.latest
