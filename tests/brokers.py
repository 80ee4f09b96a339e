"""Brokers for tests: the shared Mosquitto on 127.0.0.1:1883, or a private one to stop and start."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI, free_port, need_server

HOST, PORT = "127.0.0.1", 1883


@pytest.fixture
def broker() -> int:
    """The shared Mosquitto on 127.0.0.1:1883 (skip when absent, fail in CI)."""
    need_server("Mosquitto", HOST, PORT)
    return PORT


class PrivateBroker:
    """A Mosquitto of our own on a free port, to stop and start for outages.

    Persistence is on, so a subscriber's persistent session (and the QoS 1 messages queued for it)
    survives a broker restart: the test can then count every message end to end.
    """

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.config = workdir / f"mosquitto-{self.port}.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            f"persistence_file mosquitto-{self.port}.db\n"
            "max_queued_messages 0\n"
            # Started as root, mosquitto would switch to user 'mosquitto' and fail to save in tmp_path.
            f"user {getpass.getuser()}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.workdir / f"mosquitto-{self.port}.log").open("ab")
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((HOST, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"private mosquitto did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # SIGTERM: mosquitto saves its persistence file on the way out
            self.process.wait(timeout=5)
            self.process = None


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A private Mosquitto (started); stopped at the end whatever happens."""
    if shutil.which("mosquitto") is None:
        message = "the mosquitto executable is not installed"
        if IN_CI:
            pytest.fail(f"{message}, and CI=true requires it")
        pytest.skip(reason=f"{message}; install it to run this test")
    broker = PrivateBroker(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
