"""Shared fixtures: free loopback ports, the real PostgreSQL and Mosquitto on 127.0.0.1."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Protocol

import pytest
from sqlalchemy import Engine

from models.store import make_engine
from tests.reliability.campaign import CAMPAIGN, Row

POSTGRES_URL = os.environ.get("PARKLINK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI") == "true"


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need_server(name: str, host: str, port: int) -> None:
    """Skip when a real server is absent, except in CI where its absence is a failure."""
    if reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message}, and CI=true requires it")
    pytest.skip(reason=f"{message}; start it to run this test")


@pytest.fixture
def postgres_engine() -> Iterator[Engine]:
    """An engine on the real PostgreSQL, with parklink's tables dropped before and after."""
    from sqlmodel import SQLModel

    need_server("PostgreSQL", "127.0.0.1", 5432)
    engine = make_engine(POSTGRES_URL)
    SQLModel.metadata.drop_all(engine)
    yield engine
    SQLModel.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[Engine]:
    """Each persistence test runs on SQLite (a temp file) and on the real PostgreSQL."""
    if request.param == "sqlite":
        sqlite = make_engine(f"sqlite:///{tmp_path}/parklink.db")
        yield sqlite
        sqlite.dispose()
    else:
        yield request.getfixturevalue("postgres_engine")


# -- the fault campaign: a session-wide record, written to build/campaign.json -------------------
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
