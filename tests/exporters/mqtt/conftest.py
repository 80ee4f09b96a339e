"""Fixtures: a small park, settings isolated per test on the shared Mosquitto, a private Mosquitto."""

from __future__ import annotations

import getpass
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporters.mqtt.settings import MqttSettings
from models.assets import DataType
from models.park import AssetRef, Park, SignalRef
from tests.conftest import IN_CI, free_port, need_server

HOST, PORT = "127.0.0.1", 1883

# (name, data type) of every asset's signals, in index order per asset
SIGNALS: list[tuple[str, DataType]] = [("state", "int16"), ("temperature", "float64"), ("good", "uint32")]


def make_park(assets: int = 2) -> Park:
    """Park 'p', company acme, site north; asset m0 sits in area 'hall', the others directly on the site."""
    refs = [
        AssetRef("acme", "north", "hall" if i == 0 else "", "l1", f"m{i}", f"Machine {i}", "t", "c", None)
        for i in range(assets)
    ]
    signals = [
        SignalRef(i * len(SIGNALS) + j, ref, name, None, "", data_type, None)
        for i, ref in enumerate(refs)
        for j, (name, data_type) in enumerate(SIGNALS)
    ]
    return Park("p", "Park", {"acme": "Acme"}, {("acme", "north"): "UTC"}, refs, signals, [])


@pytest.fixture
def park() -> Park:
    return make_park()


def settings_for(port: int, tmp_path: Path, **overrides: Any) -> MqttSettings:
    """Settings with a prefix, group and client id of their own, so parallel runs never cross."""
    token = secrets.token_hex(4)
    raw: dict[str, Any] = {
        "host": HOST,
        "port": port,
        "topic_prefix": f"pltest-{token}",
        "retain": False,  # nothing left behind on the shared broker
        "client_id": f"pltest-{token}",
        "flush_interval": 0.02,
        "keepalive": 5,
        "store": {"path": str(tmp_path / f"queue-{token}.sqlite")},
        "reconnect": {"initial": 0.05, "cap": 0.3},
        "sparkplug": {"group_id": f"g-{token}", "edge_node_id": "edge1", "publish_interval": 0.02},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return MqttSettings.model_validate(raw)


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
