"""Planned breaks of a site as instants, for the failure statistics of its assets' timelines.

A failure, a time between failures and a time to repair are about *unplanned* time (IEC 60050-191
as used by ISO 22400-2): a machine stopped for a planned break has not failed, and a break is not
time it ran nor time it was being repaired. Windows overlay breaks as PDOT (windows.py); the
timeline, which keeps its failure sums online as samples arrive, asks this class instead.

Breaks come from the site's `ShiftCalendar`, materialised one UTC day at a time and cached.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict

from orchestrator.kpi.windows import Interval, ShiftCalendar

_DAY = 86400.0
_CACHED_DAYS = 16


class PlannedBreaks:
    """The planned breaks of one shift calendar: `overlap(a, b)` and `contains(t)`."""

    __slots__ = ("_calendar", "_days")

    def __init__(self, calendar: ShiftCalendar) -> None:
        self._calendar = calendar
        self._days: OrderedDict[int, tuple[list[float], list[float]]] = OrderedDict()

    def _day(self, day: int) -> tuple[list[float], list[float]]:
        """(starts, ends) of the merged breaks inside UTC day `day`, clipped to it."""
        cached = self._days.get(day)
        if cached is not None:
            self._days.move_to_end(day)
            return cached
        lo, hi = day * _DAY, (day + 1) * _DAY
        spans: list[Interval] = sorted(
            (max(a, lo), min(b, hi))
            for window in self._calendar.windows(lo, hi)
            for a, b in window.planned_breaks
            if b > lo and a < hi
        )
        starts: list[float] = []
        ends: list[float] = []
        for a, b in spans:
            if starts and a <= ends[-1]:
                ends[-1] = max(ends[-1], b)
            else:
                starts.append(a)
                ends.append(b)
        self._days[day] = (starts, ends)
        if len(self._days) > _CACHED_DAYS:
            self._days.popitem(last=False)
        return starts, ends

    def contains(self, t: float) -> bool:
        """Whether instant `t` lies inside a planned break."""
        starts, ends = self._day(int(t // _DAY))
        i = bisect_right(starts, t) - 1
        return i >= 0 and t < ends[i]

    def overlap(self, a: float, b: float) -> float:
        """Seconds of planned break inside [a, b)."""
        if b <= a:
            return 0.0
        total = 0.0
        for day in range(int(a // _DAY), int(b // _DAY) + 1):
            starts, ends = self._day(day)
            for s, e in zip(starts, ends, strict=True):
                if e <= a:
                    continue
                if s >= b:
                    break
                total += min(e, b) - max(s, a)
        return total
