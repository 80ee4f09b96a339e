"""Skipped wall-clock hours of a time zone, and the shift breaks with a wall time inside one.

A break whose start or end does not exist on some night (02:50 when clocks jump from 02:00 to
03:00) cannot mean what it says there: windows.py gives it its wall-clock length ending at its end
wall time, and `parklink validate` warns, so that the change is never silent.

zoneinfo has no transition API, so gaps are found from the offsets: `utcoffset` is sampled once a
day from a reference date and each forward jump is bisected to the second. The reference date is
passed in (not read from the clock) so that results are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from orchestrator.kpi.windows import ShiftSpec

_DAY = 86400


@dataclass(frozen=True, slots=True)
class Gap:
    """Local wall times [start, end) that do not exist: the clock jumps from `start` to `end`."""

    start: datetime  # naive, local
    end: datetime

    @property
    def text(self) -> str:
        """'02:00–03:00'."""
        return f"{self.start:%H:%M}–{self.end:%H:%M}"

    def __contains__(self, wall: datetime) -> bool:
        # The jump's own wall time (02:00) is the same instant as its end (03:00): no ambiguity.
        return self.start < wall < self.end


@cache
def skipped_hours(timezone: str, since: date, years: int = 3) -> tuple[Gap, ...]:
    """The gaps of `timezone` in the `years` after `since`, in order (none for UTC, Asia/Tokyo)."""
    tz = ZoneInfo(timezone)

    def offset(t: int) -> timedelta:
        value = datetime.fromtimestamp(t, tz).utcoffset()
        assert value is not None  # a ZoneInfo always has one
        return value

    first = int(datetime.combine(since, time(0), tzinfo=UTC).timestamp())
    gaps: list[Gap] = []
    for day in range(round(years * 365.25)):
        lo, hi = first + day * _DAY, first + (day + 1) * _DAY
        before, after = offset(lo), offset(hi)
        if after <= before:
            continue  # no change, or clocks go back (a repeated hour, which every wall time has)
        while hi - lo > 1:  # assumes one change per day, as in every zone of the tz database
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if offset(mid) == before else (lo, mid)
        jump = datetime.fromtimestamp(hi, UTC).replace(tzinfo=None)
        gaps.append(Gap(jump + before, jump + after))
    return tuple(gaps)


@dataclass(frozen=True, slots=True)
class SkippedBreak:
    """A break of a shift with a wall time that does not exist on `dates` (grouped by outcome)."""

    index: int  # into the shift's breaks
    walls: tuple[str, ...]  # the wall times that do not exist, e.g. ('02:50',)
    dates: tuple[date, ...]  # local dates of those wall times
    gap: str  # '02:00–03:00'
    instead: str  # what the shift counts as the break on those dates

    def message(self, spec: ShiftSpec, timezone: str) -> str:
        """The validation warning: which wall time, when, why, and what parklink does instead."""
        start, end = spec.breaks[self.index]
        walls = " and ".join(self.walls)
        dates = ", ".join(d.isoformat() for d in self.dates)
        return (
            f"break {start}–{end}: {walls} {'is' if len(self.walls) == 1 else 'are'} skipped on "
            f"{dates} ({timezone}, {self.gap} does not exist); parklink {self.instead} on those dates"
        )


def skipped_breaks(spec: ShiftSpec, timezone: str, since: date, years: int = 3) -> list[SkippedBreak]:
    """The breaks of `spec` with a start or end in a gap of `timezone` on a day the shift runs."""
    tz = ZoneInfo(timezone)
    found: dict[
        tuple[int, tuple[str, ...], str, str], list[date]
    ] = {}  # (index, walls, gap, instead) → dates
    for gap in skipped_hours(timezone, since, years):
        days = sorted({gap.start.date(), gap.end.date()})
        for index, ends in enumerate(spec.break_walls):
            # The shift start dates that put an end of this break inside the gap, and which ends.
            hits: dict[date, list[str]] = {}
            for offset, wall in ends:
                for day in days:
                    if datetime.combine(day, wall) in gap:
                        hits.setdefault(day - timedelta(days=offset), []).append(f"{wall:%H:%M}")
            for shift_day, walls in sorted(hits.items()):
                window = spec.on(shift_day, tz)
                if window is None:
                    continue  # the shift does not run that day
                a, b = spec.break_on(shift_day, index, tz)
                a, b = max(a, window.start), min(b, window.end)
                key = (index, tuple(walls), gap.text, _describe(a, b, tz))
                found.setdefault(key, []).append(gap.start.date())
    return [
        SkippedBreak(index, walls, tuple(dates), gap_text, instead)
        for (index, walls, gap_text, instead), dates in sorted(found.items(), key=_by_break_then_date)
    ]


def _by_break_then_date(item: tuple[tuple[int, tuple[str, ...], str, str], list[date]]) -> tuple[int, date]:
    return item[0][0], item[1][0]


def _describe(start: float, end: float, tz: ZoneInfo) -> str:
    if end <= start:
        return "counts no break (it lies outside the shift as resolved)"
    a, b = datetime.fromtimestamp(start, tz), datetime.fromtimestamp(end, tz)
    return f"takes {(end - start) / 60:g} min ending at {b:%H:%M} ({a:%H:%M}–{b:%H:%M})"
