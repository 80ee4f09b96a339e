"""Breaks across a DST change keep their wall-clock length; shifts keep their elapsed length.

Expected instants are written by hand in UTC: Europe/Berlin is UTC+1 (CET) in winter and UTC+2
(CEST) in summer; clocks go 02:00 → 03:00 on 2026-03-29 and 03:00 → 02:00 on 2026-10-25.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.kpi import ShiftCalendar, ShiftSpec, StateTimeline, TimeElement, overlay_breaks
from orchestrator.kpi.dst import Gap, skipped_breaks, skipped_hours

H = 3600.0
BERLIN = ZoneInfo("Europe/Berlin")
SPRING = date(2026, 3, 28)  # the night shift starting this Saturday loses an hour
AUTUMN = date(2026, 10, 24)  # … and this one gains one


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> float:
    """POSIX seconds of a UTC wall time."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


def night(*breaks: tuple[str, str], start: str = "22:00", end: str = "06:00") -> ShiftSpec:
    return ShiftSpec("night", start, end, breaks=breaks)


def test_break_on_the_repeated_night_lasts_its_wall_length() -> None:
    """02:50–03:10 on 2026-10-25 is the second 02:50 (CET) to 03:10 CET: 20 min, not 80."""
    window = night(("02:50", "03:10")).on(AUTUMN, BERLIN)
    assert window is not None
    assert window.planned_breaks == ((utc(2026, 10, 25, 1, 50), utc(2026, 10, 25, 2, 10)),)
    assert window.break_seconds() == 1200
    assert (window.start, window.end) == (utc(2026, 10, 24, 20, 0), utc(2026, 10, 25, 5, 0))
    assert window.seconds == 9 * H  # the shift itself keeps its real length


def test_break_on_the_skipped_night_lasts_its_wall_length() -> None:
    """02:50 does not exist on 2026-03-29: the break is the 20 min ending at 03:10 CEST (01:10 UTC)."""
    window = night(("02:50", "03:10")).on(SPRING, BERLIN)
    assert window is not None
    assert window.planned_breaks == ((utc(2026, 3, 29, 0, 50), utc(2026, 3, 29, 1, 10)),)
    assert window.break_seconds() == 1200
    assert (window.start, window.end) == (utc(2026, 3, 28, 21, 0), utc(2026, 3, 29, 4, 0))
    assert window.seconds == 7 * H


def test_break_on_an_ordinary_night_is_unchanged() -> None:
    """In summer (CEST) 02:50–03:10 is 00:50–01:10 UTC, exactly as written."""
    window = night(("02:50", "03:10")).on(date(2026, 6, 13), BERLIN)
    assert window is not None
    assert window.planned_breaks == ((utc(2026, 6, 14, 0, 50), utc(2026, 6, 14, 1, 10)),)
    assert window.seconds == 8 * H


@pytest.mark.parametrize(
    ("spec", "day", "zone", "expected"),
    [
        # Wholly in the repeated hour: its first occurrence (CEST), as before.
        (
            night(("02:10", "02:40")),
            AUTUMN,
            "Europe/Berlin",
            (utc(2026, 10, 25, 0, 10), utc(2026, 10, 25, 0, 40)),
        ),
        # Ending exactly at 03:00: 03:00 CET on the repeated night, 03:00 CEST on the skipped one.
        (
            night(("02:30", "03:00")),
            AUTUMN,
            "Europe/Berlin",
            (utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 2, 0)),
        ),
        (
            night(("02:30", "03:00")),
            SPRING,
            "Europe/Berlin",
            (utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 0)),
        ),
        # Ending before the change: untouched.
        (
            night(("01:30", "02:30")),
            AUTUMN,
            "Europe/Berlin",
            (utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 0, 30)),
        ),
        # Across midnight, in Berlin (no change at midnight) and in Santiago, whose clocks change at
        # midnight: 2026-04-05 00:00 −03 → 2026-04-04 23:00 −04; 2026-09-06 00:00 −04 → 01:00 −03.
        (
            night(("23:50", "00:10")),
            AUTUMN,
            "Europe/Berlin",
            (utc(2026, 10, 24, 21, 50), utc(2026, 10, 24, 22, 10)),
        ),
        (
            night(("23:50", "00:10"), start="18:00", end="02:00"),
            date(2026, 4, 4),
            "America/Santiago",
            (utc(2026, 4, 5, 3, 50), utc(2026, 4, 5, 4, 10)),
        ),
        (
            night(("23:50", "00:10"), start="18:00", end="02:00"),
            date(2026, 9, 5),
            "America/Santiago",
            (utc(2026, 9, 6, 3, 50), utc(2026, 9, 6, 4, 10)),
        ),
        # At the very end of a night shift (05:30 CET = 04:30 UTC on the long night).
        (
            night(("05:30", "06:00")),
            AUTUMN,
            "Europe/Berlin",
            (utc(2026, 10, 25, 4, 30), utc(2026, 10, 25, 5, 0)),
        ),
        # A shift ending at 03:00 with its break last: both end exactly with the shift.
        (
            night(("02:30", "03:00"), end="03:00"),
            AUTUMN,
            "Europe/Berlin",
            (utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 2, 0)),
        ),
        (
            night(("02:30", "03:00"), end="03:00"),
            SPRING,
            "Europe/Berlin",
            (utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 0)),
        ),
        # New York, 2026-03-08 02:00 EST (−05) → 03:00 EDT (−04): 03:10 EDT is 07:10 UTC.
        (
            night(("02:50", "03:10")),
            date(2026, 3, 7),
            "America/New_York",
            (utc(2026, 3, 8, 6, 50), utc(2026, 3, 8, 7, 10)),
        ),
    ],
    ids=[
        "in-repeated-hour",
        "ends-at-03-autumn",
        "ends-at-03-spring",
        "before-the-change",
        "across-midnight",
        "santiago-midnight-autumn",
        "santiago-midnight-spring",
        "end-of-night-shift",
        "end-of-shift-at-03-autumn",
        "end-of-shift-at-03-spring",
        "new-york-spring",
    ],
)
def test_break_edge_cases(spec: ShiftSpec, day: date, zone: str, expected: tuple[float, float]) -> None:
    """Each break is its wall length ending at its end wall time, and stays inside its shift."""
    window = spec.on(day, ZoneInfo(zone))
    assert window is not None
    assert window.planned_breaks == (expected,)
    assert window.start <= expected[0] and expected[1] <= window.end


@pytest.mark.parametrize(
    ("start", "hours"),
    [(utc(2026, 3, 28, 21), 7), (utc(2026, 10, 24, 20), 9)],  # 22:00 CET, 22:00 CEST
)
def test_pdot_of_a_dst_night_is_the_break(start: float, hours: int) -> None:
    """A machine running all night: PDOT is 1200 s on both nights, APT the rest of the 7 h / 9 h."""
    calendar = ShiftCalendar("Europe/Berlin", [night(("02:50", "03:10"))])
    (window,) = calendar.windows(start, start + 1)
    assert window.start == start
    tl = StateTimeline()
    tl.feed(start - H, 3)
    d = overlay_breaks(lambda a, b: tl.elements_between(a, b, window.end), window, window.end)
    assert window.seconds == hours * H
    assert window.break_seconds() == 1200
    assert d[TimeElement.PDOT] == 1200
    assert d[TimeElement.APT] == hours * H - 1200
    assert sum(d.values()) == hours * H


# DST Sundays 2026–2028; a shift starting at noon on the day before or on it covers each night.
_CHANGES = {
    "Europe/Berlin": ["2026-03-29", "2026-10-25", "2027-03-28", "2027-10-31", "2028-03-26", "2028-10-29"],
    "America/New_York": ["2026-03-08", "2026-11-01", "2027-03-14", "2027-11-07", "2028-03-12", "2028-11-05"],
}
_NEAR_CHANGES = [
    (zone, date.fromisoformat(d) - timedelta(days=back))
    for zone, ds in _CHANGES.items()
    for d in ds
    for back in (0, 1)
]


@given(
    st.one_of(
        st.sampled_from(_NEAR_CHANGES),
        st.tuples(st.sampled_from(sorted(_CHANGES)), st.dates(date(2026, 1, 1), date(2028, 12, 31))),
    ),
    st.one_of(st.integers(12 * 60, 16 * 60), st.integers(0, 24 * 60 - 1)),  # minutes after noon
    st.integers(1, 120),
)
def test_a_break_lasts_its_wall_clock_length(
    zone_day: tuple[str, date], after_noon: int, minutes: int
) -> None:
    """Any break of 1–120 min on any date 2026–2028, DST nights included, lasts exactly that long."""
    zone, day = zone_day
    after_noon = min(after_noon, 24 * 60 - minutes)  # inside the 12:00–12:00 shift
    first = 12 * 60 + after_noon
    last = first + minutes
    wall = [f"{m // 60 % 24:02d}:{m % 60:02d}" for m in (first, last)]
    window = ShiftSpec("day", "12:00", "12:00", breaks=[(wall[0], wall[1])]).on(day, ZoneInfo(zone))
    assert window is not None
    assert window.break_seconds() == minutes * 60


def test_skipped_hours_from_the_offsets() -> None:
    """Berlin and New York skip 02:00–03:00 each spring; UTC and Tokyo never skip an hour."""
    assert skipped_hours("Europe/Berlin", date(2026, 1, 1)) == (
        Gap(datetime(2026, 3, 29, 2), datetime(2026, 3, 29, 3)),
        Gap(datetime(2027, 3, 28, 2), datetime(2027, 3, 28, 3)),
        Gap(datetime(2028, 3, 26, 2), datetime(2028, 3, 26, 3)),
    )
    assert [g.start.date() for g in skipped_hours("America/New_York", date(2026, 6, 1), years=2)] == [
        date(2027, 3, 14),
        date(2028, 3, 12),
    ]
    assert skipped_hours("Australia/Lord_Howe", date(2026, 1, 1), years=1)[0].text == "02:00–02:30"
    assert skipped_hours("UTC", date(2026, 1, 1)) == ()
    assert skipped_hours("Asia/Tokyo", date(2026, 1, 1)) == ()


def test_skipped_breaks_name_dates_and_outcome() -> None:
    """Only breaks with a wall time in a gap, on a day the shift runs, are reported."""
    spec = night(("04:00", "04:30"), ("02:50", "03:10"), ("02:10", "02:40"))
    found = skipped_breaks(spec, "Europe/Berlin", date(2026, 1, 1), years=2)
    assert [(s.index, s.walls, s.dates) for s in found] == [
        (1, ("02:50",), (date(2026, 3, 29), date(2027, 3, 28))),
        (2, ("02:10", "02:40"), (date(2026, 3, 29), date(2027, 3, 28))),
    ]
    assert found[0].message(spec, "Europe/Berlin") == (
        "break 02:50–03:10: 02:50 is skipped on 2026-03-29, 2027-03-28 (Europe/Berlin, 02:00–03:00 "
        "does not exist); parklink takes 20 min ending at 03:10 (01:50–03:10) on those dates"
    )
    # Wholly in the gap: both ends resolve one hour later on the clock, 30 min long.
    assert found[1].instead == "takes 30 min ending at 03:40 (03:10–03:40)"
    weekdays = ShiftSpec("night", "22:00", "06:00", breaks=[("02:50", "03:10")], days=range(5))
    assert skipped_breaks(weekdays, "Europe/Berlin", date(2026, 1, 1)) == []  # never on Saturday night
    assert skipped_breaks(spec, "Asia/Tokyo", date(2026, 1, 1)) == []
    # A break ending or starting at the jump itself (02:00 is the instant 03:00 is): no warning.
    at_the_jump = night(("01:30", "02:00"), ("02:00", "02:20"))
    assert [s.index for s in skipped_breaks(at_the_jump, "Europe/Berlin", date(2026, 1, 1), years=2)] == [1]
