"""KPI windows in POSIX seconds: rolling, calendar (hour, day) and shifts from a site calendar.

Wall-clock times are turned into instants with `zoneinfo` in the site's time zone, so a window
has its real elapsed length: the 22:00–06:00 shift is 7 h on the night clocks go forward and 9 h
on the night they go back; a day is 23 h or 25 h. A wall time that does not exist (in the hour
skipped in spring) resolves as Python does for `fold=0`, i.e. one hour later on the clock; an
ambiguous one (the repeated hour in autumn) is its first occurrence.

Breaks are the exception: a break keeps its wall-clock length (end − start on the clock), because
"02:50–03:10" means a 20-minute pause, not 80 min (autumn) or none (spring). It ends at its end
wall time resolved as above and starts that length earlier: on the repeated night 02:50–03:10 runs
from the second 02:50 to 03:10; on the skipped night it is the 20 min before 03:10 (from 01:50).
A break with a wall time in a skipped hour is a `parklink validate` warning (dst.py).

Planned breaks of a shift are planned down time (PDOT): `overlay_breaks` replaces whatever the
machine did inside a break with PDOT, including UNKNOWN (machines switched off over lunch lose no
coverage). Counters are not overlaid: parts made during a break still count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from orchestrator.kpi.elements import TimeElement

Interval = tuple[float, float]
_DAY = 86400
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Window:
    """One concrete window [start, end) in POSIX seconds, with planned breaks inside it."""

    name: str
    start: float
    end: float
    planned_breaks: tuple[Interval, ...] = ()
    kind: str = "custom"  # "rolling", "hour", "day", "shift" or "custom"

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"window {self.name!r} ends before it starts")
        object.__setattr__(self, "planned_breaks", _merge(self.planned_breaks, self.start, self.end))

    @property
    def seconds(self) -> float:
        """Elapsed length in real seconds."""
        return self.end - self.start

    def working_intervals(self, now: float = math.inf) -> list[Interval]:
        """The parts of [start, min(end, now)) outside the planned breaks."""
        end = min(self.end, now)
        out: list[Interval] = []
        cursor = self.start
        for b_start, b_end in self.planned_breaks:
            if b_start >= end:
                break
            if b_start > cursor:
                out.append((cursor, b_start))
            cursor = max(cursor, b_end)
        if cursor < end:
            out.append((cursor, end))
        return out

    def break_seconds(self, now: float = math.inf) -> float:
        """Planned break time in [start, min(end, now))."""
        end = min(self.end, now)
        return sum(max(0.0, min(b, end) - a) for a, b in self.planned_breaks)


def _merge(breaks: Iterable[Interval], start: float, end: float) -> tuple[Interval, ...]:
    clipped = sorted((max(a, start), min(b, end)) for a, b in breaks)
    merged: list[Interval] = []
    for a, b in clipped:
        if b <= a:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return tuple(merged)


def overlay_breaks(
    durations: Callable[[float, float], Mapping[TimeElement, float]], window: Window, now: float
) -> dict[TimeElement, float]:
    """Durations over the window up to `now`, with its planned breaks counted as PDOT.

    `durations(a, b)` gives the seconds per element in [a, b), e.g. a timeline's `elements_between`.
    """
    out = dict.fromkeys(TimeElement, 0.0)
    for a, b in window.working_intervals(now):
        for element, seconds in durations(a, b).items():
            out[element] += seconds
    out[TimeElement.PDOT] += window.break_seconds(now)
    return out


def rolling(now: float, seconds: float, name: str | None = None) -> Window:
    """The window of `seconds` ending at `now`."""
    return Window(name or f"rolling:{seconds:g}s", now - seconds, now, kind="rolling")


CalendarKind = Literal["hour", "day"]


def calendar_window(kind: CalendarKind, t: float, timezone: str) -> Window:
    """The local hour or day holding instant `t`."""
    tz = ZoneInfo(timezone)
    local = datetime.fromtimestamp(t, tz)
    if kind == "day":
        day = local.date()
        start = _instant(day, time(0), tz)
        return Window(
            f"day:{day.isoformat()}", start, _instant(day + timedelta(days=1), time(0), tz), kind="day"
        )
    # Keeps `fold`, so the repeated autumn hour is two distinct windows. Hours are 3600 s: exact in
    # every zone whose offsets change by whole hours.
    hour = local.replace(minute=0, second=0, microsecond=0)
    start = hour.timestamp()
    return Window(f"hour:{hour.isoformat(timespec='minutes')}", start, start + 3600, kind="hour")


def calendar_windows(kind: CalendarKind, start: float, end: float, timezone: str) -> list[Window]:
    """The local hours or days overlapping [start, end), in order."""
    out: list[Window] = []
    t = start
    while t < end:
        window = calendar_window(kind, t, timezone)
        out.append(window)
        t = window.end
    return out


def _instant(day: date, wall: time, tz: ZoneInfo) -> float:
    return datetime.combine(day, wall, tzinfo=tz).timestamp()


def _parse_time(text: str, where: str) -> time:
    try:
        return time.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {text!r} is not a wall-clock time like '06:00'") from None


def _seconds(wall: time) -> int:
    return wall.hour * 3600 + wall.minute * 60 + wall.second


def _weekday(day: int | str, where: str) -> int:
    if isinstance(day, int) and 0 <= day <= 6:
        return day
    if isinstance(day, str) and day[:3].lower() in _WEEKDAYS:
        return _WEEKDAYS.index(day[:3].lower())
    raise ValueError(f"{where}: {day!r} is not a weekday (0 = Monday … 6 = Sunday, or 'mon' … 'sun')")


@dataclass(frozen=True)
class ShiftSpec:
    """A recurring shift in wall-clock time; `days` are the weekdays it *starts* on (Monday = 0).

    `end` at or before `start` means the shift ends the next day (22:00–06:00); equal means 24 h.
    Breaks are wall-clock pairs inside the shift and may fall after midnight; across a DST change
    a break keeps its wall-clock length (`break_on`), while the shift keeps its elapsed length.
    """

    name: str
    start: str
    end: str
    breaks: Sequence[tuple[str, str]] = ()
    days: Iterable[int | str] = tuple(range(7))
    # Derived: wall times with a day offset from the shift's start date.
    _start: time = field(init=False, repr=False)
    _end: tuple[int, time] = field(init=False, repr=False)
    _breaks: tuple[tuple[tuple[int, time], tuple[int, time]], ...] = field(init=False, repr=False)
    _days: frozenset[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        where = f"shift {self.name!r}"
        start = _parse_time(self.start, where)
        end = _parse_time(self.end, where)
        s0 = _seconds(start)
        length = (_seconds(end) - s0) % _DAY or _DAY

        def offset(wall: time, floor: int) -> int:  # seconds after the shift start, ≥ floor
            rel = (_seconds(wall) - s0) % _DAY
            return rel + _DAY if rel < floor else rel

        breaks = []
        for b_start_text, b_end_text in self.breaks:
            b_start = _parse_time(b_start_text, where)
            b_end = _parse_time(b_end_text, where)
            rel_start = offset(b_start, 0)
            rel_end = offset(b_end, rel_start + 1)
            if rel_end > length:
                raise ValueError(
                    f"{where}: break {b_start_text}–{b_end_text} is not inside {self.start}–{self.end}"
                )
            breaks.append(((int(s0 + rel_start >= _DAY), b_start), (int(s0 + rel_end >= _DAY), b_end)))
        days = frozenset(_weekday(d, where) for d in self.days)
        object.__setattr__(self, "breaks", tuple((a, b) for a, b in self.breaks))
        object.__setattr__(self, "days", tuple(sorted(days)))
        object.__setattr__(self, "_start", start)
        object.__setattr__(self, "_end", (int(s0 + length >= _DAY), end))
        object.__setattr__(self, "_breaks", tuple(breaks))
        object.__setattr__(self, "_days", days)

    def on(self, day: date, tz: ZoneInfo) -> Window | None:
        """The concrete shift starting on local date `day`, or None when it does not run that day."""
        if day.weekday() not in self._days:
            return None
        start = _instant(day, self._start, tz)
        end_offset, end_wall = self._end
        end = _instant(day + timedelta(days=end_offset), end_wall, tz)
        breaks = tuple(self.break_on(day, index, tz) for index in range(len(self._breaks)))
        return Window(f"shift:{self.name}:{day.isoformat()}", start, end, breaks, kind="shift")

    def break_on(self, day: date, index: int, tz: ZoneInfo) -> Interval:
        """Break `index` of the shift starting on `day`, before clipping to the shift.

        It ends at its end wall time and lasts its wall-clock length. That is its resolved start
        too, unless a DST change falls inside or at the edge of the break: then the elapsed time
        would be the wall length ± the change (80 min or none for 02:50–03:10), not the pause meant.
        """
        _, (db, b) = self._breaks[index]
        end = _instant(day + timedelta(days=db), b, tz)
        return end - self.break_length(index), end

    def break_length(self, index: int) -> int:
        """Wall-clock length of break `index` in seconds (end − start on the clock)."""
        (da, a), (db, b) = self._breaks[index]
        return (db - da) * _DAY + _seconds(b) - _seconds(a)

    @property
    def break_walls(self) -> tuple[tuple[tuple[int, time], tuple[int, time]], ...]:
        """Each break's start and end as (days after the shift's start date, wall time)."""
        return self._breaks


class ShiftCalendar:
    """A site's shifts in its time zone, materialised into concrete windows for any interval."""

    def __init__(self, timezone: str, shifts: Sequence[ShiftSpec]) -> None:
        self.timezone = timezone
        self.tz = ZoneInfo(timezone)
        self.shifts = tuple(shifts)
        names = [s.name for s in self.shifts]
        if len(set(names)) != len(names):
            raise ValueError(f"shift calendar ({timezone}): shift names must be unique, got {names}")

    def windows(self, start: float, end: float) -> list[Window]:
        """Every shift overlapping [start, end), ordered by start."""
        first = datetime.fromtimestamp(start, self.tz).date() - timedelta(days=1)
        last = datetime.fromtimestamp(end, self.tz).date()
        out: list[Window] = []
        day = first
        while day <= last:
            for spec in self.shifts:
                window = spec.on(day, self.tz)
                if window is not None and window.end > start and window.start < end:
                    out.append(window)
            day += timedelta(days=1)
        out.sort(key=lambda w: (w.start, w.end))
        return out

    def current(self, t: float) -> Window | None:
        """The shift running at instant `t` (the earliest-started one if shifts overlap)."""
        running = [w for w in self.windows(t, t + 1e-6) if w.start <= t < w.end]
        return running[0] if running else None

    def previous(self, t: float) -> Window | None:
        """The last shift that ended at or before `t`, looking back up to eight days."""
        done = [w for w in self.windows(t - 8 * _DAY, t) if w.end <= t]
        return max(done, key=lambda w: w.end) if done else None
