"""The fault campaign: a session-wide recorder, written to build/campaign.json and printed at the end.

Each session overwrites the file with the rows of the tests it ran (`pytest tests/reliability` for
the whole campaign).
"""

from __future__ import annotations

from typing import Protocol

import pytest

from tests.reliability.campaign import CAMPAIGN, Row

CAMPAIGN_FILE = ("build", "campaign.json")


class Recorder(Protocol):
    """What the `record` fixture is: adds one campaign row."""

    def __call__(self, fault: str, tried: int, survived: int, lost: int, note: str = "") -> Row: ...


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Recorder:
    """`record(fault, tried, survived, lost, note="")` adds a campaign row named after this test."""

    def add(fault: str, tried: int, survived: int, lost: int, note: str = "") -> Row:
        return CAMPAIGN.record(fault, tried, survived, lost, note, request.node.nodeid)

    return add


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the rows recorded in this session (none recorded: nothing written)."""
    if CAMPAIGN.rows:
        CAMPAIGN.write(session.config.rootpath.joinpath(*CAMPAIGN_FILE))


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """The campaign table, after the test results."""
    if not CAMPAIGN.rows:
        return
    terminalreporter.section("fault campaign: tried / survived / lost")
    terminalreporter.write_line(CAMPAIGN.table())
    terminalreporter.write_line(f"written to {config.rootpath.joinpath(*CAMPAIGN_FILE)}")
