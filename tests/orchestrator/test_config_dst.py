"""A break in a skipped DST hour is a warning of `parklink validate` and `parklink run`, not an error."""

from __future__ import annotations

import argparse
import functools
import logging
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from orchestrator import cli
from orchestrator.config import load_config
from orchestrator.registry import builtin_kinds
from tests.orchestrator.test_config import GOOD, write

KINDS = builtin_kinds()
TODAY = date(2026, 1, 1)
SHIFTS = """\
        timezone: {zone}
        shifts:
          - {{name: early, start: "06:00", end: "14:00"}}
          - name: night
            start: "22:00"
            end: "06:00"
            days: {days}
            breaks:
              - "04:00-04:30"
              - "02:50-03:10"
"""
ALL_DAYS = "[mon, tue, wed, thu, fri, sat, sun]"
EXPECTED = (
    "companies[0].sites[0].shifts[1].breaks[1]: break 02:50–03:10: 02:50 is skipped on "
    "2026-03-29, 2027-03-28, 2028-03-26 (Europe/Berlin, 02:00–03:00 does not exist); "
    "parklink takes 20 min ending at 03:10 (01:50–03:10) on those dates"
)


def park_with_night_shift(tmp_path: Path, zone: str = "Europe/Berlin", days: str = ALL_DAYS) -> Path:
    text = GOOD.replace("        timezone: Europe/Berlin\n", SHIFTS.format(zone=zone, days=days))
    return write(tmp_path, text)


def break_line(path: Path) -> int:
    """1-based line of the '02:50-03:10' item, counted in the file itself."""
    return path.read_text(encoding="utf-8").splitlines().index('              - "02:50-03:10"') + 1


def test_break_in_skipped_hour_is_a_warning_with_file_line_and_path(tmp_path: Path) -> None:
    path = park_with_night_shift(tmp_path)
    loaded = load_config(path, KINDS, today=TODAY)
    assert [str(w) for w in loaded.warnings] == [f"{path}:{break_line(path)}: {EXPECTED}"]


def test_validate_prints_the_warning_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = park_with_night_shift(tmp_path)
    monkeypatch.setattr(cli, "load_config", functools.partial(load_config, today=TODAY))
    assert cli.main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert f"{path}: valid:" in out
    assert err.splitlines() == [f"warning: {path}:{break_line(path)}: {EXPECTED}"]


@pytest.mark.parametrize(
    ("zone", "days"),
    [("UTC", ALL_DAYS), ("Asia/Tokyo", ALL_DAYS), ("Europe/Berlin", "[sun, mon, tue, wed, thu, fri]")],
    ids=["utc", "tokyo", "berlin-no-saturday-night"],
)
def test_no_warning_without_a_skipped_break(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], zone: str, days: str
) -> None:
    """No DST (UTC, Asia/Tokyo), or no night shift on the Saturday before Berlin's spring Sunday."""
    path = park_with_night_shift(tmp_path, zone, days)
    assert load_config(path, KINDS, today=TODAY).warnings == ()
    assert cli.main(["validate", str(path)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_run_logs_the_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`parklink run` starts all the same and logs each warning at WARNING."""

    class Runtime:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        async def run_until_stopped(self, duration: float | None) -> None:
            pass

    path = park_with_night_shift(tmp_path)
    monkeypatch.setattr(cli, "load_config", functools.partial(load_config, today=TODAY))
    monkeypatch.setattr("orchestrator.runtime.Runtime", Runtime)
    args = argparse.Namespace(config=path, role="all", metrics_port=None, http_port=None, duration=0.0)
    with caplog.at_level(logging.WARNING):
        assert cli._run(args) == 0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [f"{path}:{break_line(path)}: {EXPECTED}"]
