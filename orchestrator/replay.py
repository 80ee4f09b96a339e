"""Replay: KPIs from recorded samples, so an integrator can verify a mapping against a known shift.

The samples file is the recorded-samples CSV of `connectors/replay/samples.py` (header
`timestamp,asset,signal,value,quality`, one sample per row, any order).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from connectors.replay.samples import SampleFileError, parse_time, read_rows

__all__ = ["Replay", "ReplayError", "parse_time", "read_samples", "replay"]
from models.park import Park
from models.sample import Sample
from orchestrator.kpi.engine import KpiEngine
from orchestrator.kpi.results import ScopedResult
from orchestrator.kpi.service import KpiService
from orchestrator.kpi.windows import Window

BATCH = 4096
ReplayError = SampleFileError  # a sample file that cannot be read; names the file and the line


@dataclass(frozen=True)
class Replay:
    """A park's KPI engine fed with recorded samples."""

    service: KpiService
    samples: int
    first: float
    last: float

    @property
    def engine(self) -> KpiEngine:
        return self.service.engine

    def results(self, kind: str, start: float, end: float) -> list[ScopedResult]:
        """Results of every scope for windows of `kind` (custom: exactly [start, end))."""
        now = max(end, self.last)
        if kind == "custom":
            live = [a for a in self.service.engine.assets if not a.retired]
            groups = [(live, Window(f"custom:{start:.0f}-{end:.0f}", start, end))]
        else:
            ended = self.service.ended_windows(kind, start - 1.0, end)
            groups = [(assets, w) for assets, w in ended if w.start >= start]
        return self.service.results_for(groups, kind, now)


def read_samples(path: Path, park: Park) -> Iterator[Sample]:
    """The samples of a CSV file, mapped to the park's signal indices; ReplayError on bad rows."""
    index = {(s.asset.path, s.name): s.index for s in park.signals}
    for row in read_rows(path):
        if row.key not in index:
            raise ReplayError(f"{row.where}: no signal {row.key[1]!r} on asset {row.key[0]!r} in the config")
        yield Sample(index[row.key], row.value, row.status, row.time, row.time)


def replay(park: Park, path: Path) -> Replay:
    """Feed every sample of the file, in time order, into a fresh KPI engine."""
    samples = sorted(read_samples(path, park), key=lambda s: s.source_time)
    if not samples:
        raise ReplayError(f"{path}: no samples")
    service = KpiService(park, None, clock=lambda: samples[-1].source_time)
    for start in range(0, len(samples), BATCH):
        service.engine.feed(samples[start : start + BATCH])
    return Replay(service, len(samples), samples[0].source_time, samples[-1].source_time)
