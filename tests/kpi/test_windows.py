"""Windows: shifts across DST and midnight, breaks as planned down time, calendar hours and days."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from orchestrator.kpi import (
    ShiftCalendar,
    ShiftSpec,
    StateTimeline,
    TimeElement,
    Window,
    calendar_window,
    calendar_windows,
    overlay_breaks,
    rolling,
)
from tests.kpi.builders import at

H = 3600.0
BERLIN = "Europe/Berlin"


def night_calendar() -> ShiftCalendar:
    """Three shifts, the night one across midnight with a break after midnight."""
    return ShiftCalendar(
        BERLIN,
        [
            ShiftSpec("early", "06:00", "14:00", breaks=[("10:00", "10:15")], days=range(5)),
            ShiftSpec("late", "14:00", "22:00", days=["mon", "tue", "wed", "thu", "fri"]),
            ShiftSpec("night", "22:00", "06:00", breaks=[("02:00", "02:30")]),
        ],
    )


@pytest.mark.parametrize(
    ("night_of", "hours"),
    [
        ("2025-03-29", 7),  # clocks go forward on Sunday 30 March 2025, 02:00 → 03:00
        ("2025-10-25", 9),  # clocks go back on Sunday 26 October 2025, 03:00 → 02:00
        ("2025-06-14", 8),
    ],
)
def test_night_shift_across_dst_has_real_length(night_of: str, hours: int) -> None:
    """22:00–06:00 lasts 7 h / 9 h of real time on the DST nights (last Sundays of March, October)."""
    start = at(f"{night_of} 22:00")
    shifts = [w for w in night_calendar().windows(start, start + 1) if w.name.startswith("shift:night")]
    assert len(shifts) == 1
    night = shifts[0]
    assert night.name == f"shift:night:{night_of}"
    assert night.start == start
    assert night.seconds == hours * H
    assert sum(b - a for a, b in night.planned_breaks) == 30 * 60  # the 02:00 break survives DST


def test_running_machine_over_the_short_night() -> None:
    """A machine running all through the spring-forward night makes 7 h APT minus the break."""
    night = night_calendar().current(at("2025-03-30 01:00"))
    assert night is not None and night.name == "shift:night:2025-03-29"
    tl = StateTimeline()
    tl.feed(at("2025-03-29 21:00"), 3)
    d = overlay_breaks(lambda a, b: tl.elements_between(a, b, night.end), night, night.end)
    assert d[TimeElement.APT] == 6.5 * H
    assert d[TimeElement.PDOT] == 0.5 * H
    assert sum(d.values()) == 7 * H


def test_breaks_replace_machine_states_including_unknown() -> None:
    """Inside a break every second is PDOT, whatever the machine did; outside, the timeline."""
    early = night_calendar().current(at("2025-03-10 08:00"))
    assert early is not None and early.name == "shift:early:2025-03-10"
    assert early.planned_breaks == ((at("2025-03-10 10:00"), at("2025-03-10 10:15")),)
    tl = StateTimeline()
    tl.feed(at("2025-03-10 06:00"), 3)
    tl.feed(at("2025-03-10 10:05"), None, ok=False)  # switched off during the break
    tl.feed(at("2025-03-10 10:20"), 3)
    now = at("2025-03-10 12:00")  # mid-shift: the window is cut at now
    d = overlay_breaks(lambda a, b: tl.elements_between(a, b, now), early, now)
    assert d[TimeElement.PDOT] == 15 * 60
    assert d[TimeElement.UNKNOWN] == 5 * 60  # 10:15–10:20 only
    assert d[TimeElement.APT] == 6 * H - 20 * 60
    assert early.working_intervals(now) == [
        (early.start, early.planned_breaks[0][0]),
        (early.planned_breaks[0][1], now),
    ]


def test_shift_days_and_lookups() -> None:
    """Shifts run only on their days; `current` and `previous` find the right concrete shift."""
    cal = night_calendar()
    saturday = cal.windows(at("2025-03-15 00:00"), at("2025-03-16 00:00"))
    assert [w.name for w in saturday] == ["shift:night:2025-03-14", "shift:night:2025-03-15"]
    assert cal.current(at("2025-03-15 12:00")) is None  # no early shift on Saturday
    prev = cal.previous(at("2025-03-15 12:00"))
    assert prev is not None and prev.name == "shift:night:2025-03-14"
    monday = cal.windows(at("2025-03-17 00:00"), at("2025-03-18 00:00"))
    assert [w.name.split(":")[1] for w in monday] == ["night", "early", "late", "night"]


def test_invalid_shift_specs_are_rejected() -> None:
    """Bad times, breaks outside the shift, unknown weekdays and duplicate names are errors."""
    with pytest.raises(ValueError, match="wall-clock"):
        ShiftSpec("x", "6 am", "14:00")
    with pytest.raises(ValueError, match="not inside"):
        ShiftSpec("x", "06:00", "14:00", breaks=[("13:50", "14:10")])
    with pytest.raises(ValueError, match="weekday"):
        ShiftSpec("x", "06:00", "14:00", days=["someday"])
    with pytest.raises(ValueError, match="unique"):
        ShiftCalendar(BERLIN, [ShiftSpec("x", "06:00", "14:00"), ShiftSpec("x", "14:00", "22:00")])
    all_day = ShiftSpec("all-day", "06:00", "06:00").on(date(2025, 3, 10), ZoneInfo(BERLIN))
    assert all_day is not None and all_day.seconds == 24 * H


def test_calendar_days_and_hours_across_dst() -> None:
    """Local days are 23 h / 25 h on DST Sundays; the repeated autumn hour is two windows."""
    assert calendar_window("day", at("2025-03-30 12:00"), BERLIN).seconds == 23 * H
    assert calendar_window("day", at("2025-10-26 12:00"), BERLIN).seconds == 25 * H
    hours = calendar_windows("hour", at("2025-10-26 00:00"), at("2025-10-27 00:00"), BERLIN)
    assert len(hours) == 25
    assert [w.name for w in hours[2:4]] == ["hour:2025-10-26T02:00+02:00", "hour:2025-10-26T02:00+01:00"]
    assert hours[-1].end == at("2025-10-27 00:00")
    days = calendar_windows("day", at("2025-03-29 12:00"), at("2025-03-31 12:00"), BERLIN)
    assert [w.name for w in days] == ["day:2025-03-29", "day:2025-03-30", "day:2025-03-31"]


def test_rolling_window_and_break_clipping() -> None:
    """A rolling window ends at now; breaks are clipped to the window and merged."""
    w = rolling(1000.0, 600.0)
    assert (w.start, w.end, w.kind) == (400.0, 1000.0, "rolling")
    custom = Window("x", 0, 100, planned_breaks=((90, 120), (10, 20), (15, 30), (-5, 2)))
    assert custom.planned_breaks == ((0, 2), (10, 30), (90, 100))
    assert custom.break_seconds() == 32
    assert custom.break_seconds(now=95) == 27
    with pytest.raises(ValueError):
        Window("bad", 10, 0)
