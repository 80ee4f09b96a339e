"""TLS to a private Mosquitto with a throwaway CA: verified connection; a wrong CA or host name refused."""

from __future__ import annotations

import asyncio
import getpass
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporters.mqtt.publisher import MqttPublisher
from exporters.mqtt.subscriber import MqttSubscriber
from models.park import Park
from models.sample import Sample
from models.status import GOOD
from tests.conftest import IN_CI
from tests.exporters.mqtt.conftest import PrivateBroker, settings_for


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory: Path, name: str, san: str = "DNS:localhost,IP:127.0.0.1") -> None:
    """A CA (`<name>-ca.pem`) and a server certificate for `san` (default 127.0.0.1) signed by it."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", f"{name}-ca.key", "-out", f"{name}-ca.pem", "-days", "1",
            "-subj", f"/CN={name} test CA", cwd=directory)  # fmt: skip
    openssl("req", *ec, "-keyout", f"{name}-server.key", "-out", f"{name}-server.csr",
            "-subj", "/CN=localhost", cwd=directory)  # fmt: skip
    (directory / f"{name}-san.txt").write_text(f"subjectAltName={san}\n")
    openssl("x509", "-req", "-in", f"{name}-server.csr", "-CA", f"{name}-ca.pem", "-CAkey", f"{name}-ca.key",
            "-CAcreateserial", "-out", f"{name}-server.pem", "-days", "1", "-extfile", f"{name}-san.txt",
            cwd=directory)  # fmt: skip


def need_tools() -> None:
    missing = [tool for tool in ("mosquitto", "openssl") if shutil.which(tool) is None]
    if missing:
        message = f"{' and '.join(missing)} not installed"
        if IN_CI:
            pytest.fail(f"{message}, and CI=true requires it")
        pytest.skip(reason=f"{message}; install it to run this test")


def tls_only(tmp_path: Path, name: str) -> PrivateBroker:
    """A private Mosquitto serving TLS only with the server certificate of CA `name`, started."""
    broker = PrivateBroker(tmp_path)
    broker.config.write_text(
        f"listener {broker.port} 127.0.0.1\n"
        "allow_anonymous true\n"
        f"cafile {tmp_path}/{name}-ca.pem\n"
        f"certfile {tmp_path}/{name}-server.pem\n"
        f"keyfile {tmp_path}/{name}-server.key\n"
        f"user {getpass.getuser()}\n"
    )
    broker.start()
    return broker


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A private Mosquitto serving TLS only, with a certificate of the 'park' CA."""
    need_tools()
    make_ca(tmp_path, "park")
    make_ca(tmp_path, "other")
    broker = tls_only(tmp_path, "park")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def misnamed_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A TLS-only Mosquitto on 127.0.0.1 whose certificate (of a trusted CA) names another host."""
    need_tools()
    make_ca(tmp_path, "misnamed", san="DNS:broker.invalid")
    broker = tls_only(tmp_path, "misnamed")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.mark.mqtt
async def test_tls_verified(tls_broker: PrivateBroker, park: Park, tmp_path: Path) -> None:
    """With the right CA the publisher connects over TLS and a subscriber receives its messages."""
    settings = settings_for(tls_broker.port, tmp_path, tls={"ca_file": str(tmp_path / "park-ca.pem")})
    publisher = MqttPublisher(settings, park)
    async with MqttSubscriber(settings) as sub:
        task = asyncio.create_task(publisher.run())
        try:
            publisher.on_batch([Sample(1, 5.5, GOOD, 1.0, 1.0)])
            got = await sub.collect(lambda m: len(m) >= 1, within=10)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            publisher.close()
    assert got and json.loads(got[0].payload)["value"] == 5.5


@pytest.mark.mqtt
async def test_tls_wrong_ca_refused(tls_broker: PrivateBroker, park: Park, tmp_path: Path) -> None:
    """A broker certificate from another CA is refused: the link stays down, the reason names it."""
    settings = settings_for(tls_broker.port, tmp_path, tls={"ca_file": str(tmp_path / "other-ca.pem")})
    publisher = MqttPublisher(settings, park)
    task = asyncio.create_task(publisher.run())
    try:
        for _ in range(200):
            if publisher.health.link.last_error:
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        publisher.close()
    assert not publisher.health.link.up
    assert "certificate" in publisher.health.link.last_error.lower()


async def _first_error(publisher: MqttPublisher) -> None:
    """Run the publisher until its link reports an error (at most 4 s)."""
    task = asyncio.create_task(publisher.run())
    try:
        for _ in range(200):
            if publisher.health.link.last_error:
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        publisher.close()


@pytest.mark.mqtt
async def test_tls_host_name_checked_unless_insecure(
    misnamed_broker: PrivateBroker, park: Park, tmp_path: Path
) -> None:
    """A broker certificate from the trusted CA but for another host name is refused by default;
    `insecure: true` skips only that check (the chain is still verified) and connects."""
    ca = str(tmp_path / "misnamed-ca.pem")
    strict = MqttPublisher(settings_for(misnamed_broker.port, tmp_path, tls={"ca_file": ca}), park)
    await _first_error(strict)
    assert not strict.health.link.up and strict.health.link.last_error
    assert "mismatch" in strict.health.link.last_error  # "IP address mismatch, certificate is not valid for…"
    loose = settings_for(misnamed_broker.port, tmp_path, tls={"ca_file": ca, "insecure": True})
    publisher = MqttPublisher(loose, park)
    async with MqttSubscriber(loose) as sub:
        task = asyncio.create_task(publisher.run())
        try:
            publisher.on_batch([Sample(1, 6.5, GOOD, 1.0, 1.0)])
            got = await sub.collect(lambda m: len(m) >= 1, within=10)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            publisher.close()
    assert got and json.loads(got[0].payload)["value"] == 6.5
