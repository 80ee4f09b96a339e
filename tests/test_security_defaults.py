"""The safe defaults of docs/SECURITY.md that no other test proves on its own.

- every listening socket binds loopback unless the config says otherwise;
- no signal is writable unless its binding says `writable: true`;
- passwords (`${VAR}` from the environment: OPC UA, MQTT, the database URL) never appear in what
  `parklink validate` prints, in the logs of a running process, in link errors or in /metrics;
- an edge sends the hub only the results its company's policy shares;
- an OPC UA server certificate outside its validity is refused even from the trust folder.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import textwrap
import traceback
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy.exc import OperationalError

from connectors.modbus.binding import ModbusBinding
from connectors.opcua.config import OpcUaBinding
from connectors.opcua.security import (
    Pki,
    SecurityError,
    UntrustedCertificateError,
    check_server_certificate,
    thumbprint,
)
from exporters.http.settings import HttpSettings
from exporters.mqtt.client import Will
from exporters.mqtt.edge_feed import EdgeFeed
from exporters.mqtt.settings import MqttSettings
from models.assets import MetricsSettings
from orchestrator.cli import main
from orchestrator.config import load_config
from orchestrator.registry import builtin_kinds
from orchestrator.runtime import Runtime, bound_signals
from orchestrator.sharing import ParkView, shares
from tests.conftest import free_port
from tests.fakes import FAKE_KIND
from tests.orchestrator.hub.test_hub_messages import loaded, results_of

KINDS = builtin_kinds()
UA_SECRET = "ua-Pw-5f1c9e"  # distinctive: a substring match cannot be a coincidence
MQTT_SECRET = "mqtt-Pw-8d02b7"
DB_SECRET = "db-Pw-3a77e4"

MINIMAL = """\
park: {id: p}
database: {url: "sqlite:///DB"}
asset_types:
  m: {signals: {good_count: {role: good_count, binding: {address: a}}}}
companies:
  - id: acme
    connections: {ok: {kind: fake}}
    sites: [{id: s, lines: [{id: l, assets: [{id: a1, type: m, connection: ok}]}]}]
"""

WITH_SECRETS = """\
park: {id: p}
database: {url: "sqlite:///DB"}
mqtt:
  host: 127.0.0.1
  port: MQTT_PORT
  username: edge-acme
  password: ${TEST_MQTT_PASSWORD}
  store: {path: "QUEUE"}
  reconnect: {initial: 0.1, cap: 0.2}
asset_types:
  press:
    signals:
      state: {role: state, type: uint16, binding: {table: holding, address: 0}}
      speed: {type: uint16, binding: {table: holding, address: 5, writable: true}}
  mill:
    signals:
      state: {role: state, type: int32, binding: {address: "ns=2;s={machine}.State"}}
      target: {type: float64, binding: {address: "ns=2;s={machine}.Target", writable: true}}
companies:
  - id: acme
    connections:
      gw: {kind: modbus, host: 127.0.0.1, port: MODBUS_PORT, poll_interval: 0.2, timeout: 0.5}
      ua:
        kind: opcua
        endpoint: "opc.tcp://127.0.0.1:UA_PORT/"
        username: parklink
        password: ${TEST_UA_PASSWORD}
        timeout: 1
        reconnect_initial: 0.1
        reconnect_max: 0.2
    sites:
      - id: north
        lines:
          - id: l1
            assets:
              - {id: p1, type: press, connection: gw}
              - {id: m1, type: mill, connection: ua, params: {machine: Mill1}}
"""


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "park.yaml"
    text = textwrap.dedent(text).replace("sqlite:///DB", f"sqlite:///{tmp_path}/p.db")
    for name in ("MQTT_PORT", "MODBUS_PORT", "UA_PORT"):  # nothing listens there: every link fails
        text = text.replace(name, str(free_port()))
    path.write_text(text.replace("QUEUE", str(tmp_path / "queue.sqlite")), encoding="utf-8")
    return path


def secrets_in(text: str) -> list[str]:
    return [s for s in (UA_SECRET, MQTT_SECRET, DB_SECRET) if s in text]


def logged_text(record: logging.LogRecord) -> str:
    """A record as a handler would write it: the message and any traceback."""
    trace = "".join(traceback.format_exception(*record.exc_info)) if record.exc_info else ""
    return record.getMessage() + trace


# -- bind to loopback ---------------------------------------------------------------------------
def test_settings_listen_on_loopback_by_default() -> None:
    """The metrics server, the HTTP API and the broker address all default to 127.0.0.1."""
    assert MetricsSettings().host == "127.0.0.1"
    assert HttpSettings().host == "127.0.0.1"
    assert MqttSettings().host == "127.0.0.1"
    assert HttpSettings().full_metrics == "admin_token"  # /metrics of the app needs an admin token


async def test_a_config_without_addresses_binds_loopback_only(tmp_path: Path) -> None:
    """A config with no `metrics:` and no `http:` section: both sockets are bound to 127.0.0.1."""
    runtime = Runtime(
        load_config(write_config(tmp_path, MINIMAL), {"fake": FAKE_KIND}),
        {"fake": FAKE_KIND},
        metrics_port=free_port(),
        http_port=free_port(),
    )
    await runtime.start()
    try:
        assert runtime.metrics is not None and runtime.http is not None
        assert runtime.metrics.server.server_address[0] == "127.0.0.1"
        (sock,) = runtime.http.server.servers[0].sockets
        assert sock.getsockname()[0] == "127.0.0.1"
    finally:
        await runtime.stop()


# -- writes off ---------------------------------------------------------------------------------
def test_signals_are_read_only_unless_configured_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`writable` defaults to false in every binding; only `writable: true` makes a signal writable."""
    assert OpcUaBinding.model_validate({"address": "ns=2;s=x"}).writable is False
    assert ModbusBinding.model_validate({"address": 0}, context={"data_type": "uint16"}).writable is False
    monkeypatch.setenv("TEST_UA_PASSWORD", UA_SECRET)
    monkeypatch.setenv("TEST_MQTT_PASSWORD", MQTT_SECRET)
    park = load_config(write_config(tmp_path, WITH_SECRETS), KINDS).park
    writable = {s.path for ref in park.connections for s in bound_signals(park, ref) if s.writable}
    assert writable == {"acme/north/l1/p1/speed", "acme/north/l1/m1/target"}


# -- secrets never printed or logged ------------------------------------------------------------
def test_validate_never_prints_a_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`parklink validate` (and --explain) of a valid and of an invalid config: no password shown."""
    monkeypatch.setenv("TEST_UA_PASSWORD", UA_SECRET)
    monkeypatch.setenv("TEST_MQTT_PASSWORD", MQTT_SECRET)
    path = write_config(tmp_path, WITH_SECRETS)
    assert main(["validate", str(path)]) == 0
    assert main(["validate", "--explain", str(path)]) == 0
    out = capsys.readouterr()
    assert "valid" in out.out and "user 'parklink'" in out.out  # the identity is shown, not its password
    assert secrets_in(out.out + out.err) == []
    broken = path.read_text().replace("timeout: 1\n", "timeout: [1]\n")
    broken = broken.replace("username: edge-acme", "username: edge-acme\n  qos: 7")
    path.write_text(broken, encoding="utf-8")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr()
    assert "qos" in out.err and "timeout" in out.err  # the errors are about the neighbouring keys
    assert secrets_in(out.out + out.err) == []


async def test_a_running_process_never_logs_a_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """OPC UA, Modbus and MQTT links that keep failing: logs (INFO, parklink's DEBUG too), link errors
    and /metrics never carry the OPC UA or MQTT password."""
    monkeypatch.setenv("TEST_UA_PASSWORD", UA_SECRET)
    monkeypatch.setenv("TEST_MQTT_PASSWORD", MQTT_SECRET)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="parklink")
    loaded_config = load_config(write_config(tmp_path, WITH_SECRETS), KINDS)
    runtime = Runtime(loaded_config, KINDS, metrics_port=free_port(), http_port=free_port())
    await runtime.start()
    try:
        assert runtime.metrics is not None and runtime.mqtt is not None
        for _ in range(100):  # every link has failed at least once, the broker too
            links = [link.health for link in runtime.links] + [runtime.mqtt.health.link]
            if all(h.read_errors >= 1 or h.last_error for h in links):
                break
            await asyncio.sleep(0.05)
        errors = [h.last_error for h in links]
        assert all(errors), errors  # the failures happened, so their texts were written
        url = f"http://127.0.0.1:{runtime.metrics.port}/metrics"
        metrics = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
    finally:
        await runtime.stop()
    logged = "\n".join(logged_text(record) for record in caplog.records)
    assert "connection" in logged.lower() or "connect" in logged.lower()  # the failures were logged
    assert secrets_in(logged) == [] and secrets_in("\n".join(errors)) == [] and secrets_in(metrics) == []


async def test_the_database_password_is_not_in_start_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """PARKLINK_DATABASE_URL with a password, the database unreachable: the error names the server,
    not the password (neither in the exception and its traceback nor in the logs)."""
    port = free_port()
    monkeypatch.setenv("PARKLINK_DATABASE_URL", f"postgresql://parklink:{DB_SECRET}@127.0.0.1:{port}/x")
    caplog.set_level(logging.DEBUG)
    runtime = Runtime(
        load_config(write_config(tmp_path, MINIMAL), {"fake": FAKE_KIND}),
        {"fake": FAKE_KIND},
        metrics_port=free_port(),
        http_port=free_port(),
    )
    try:
        with pytest.raises(OperationalError) as caught:
            await runtime.start()
    finally:
        await runtime.stop()
    text = "".join(traceback.format_exception(caught.value))
    assert f"port {port}" in text  # the error says where it could not connect
    assert secrets_in(text) == [] and secrets_in(caplog.text) == []


# -- sharing at the edge ------------------------------------------------------------------------
class Publisher:
    """What EdgeFeed uses of an MqttPublisher; records what would go to the broker."""

    def __init__(self) -> None:
        self.settings = MqttSettings(topic_prefix="uns")
        self.sparkplug = None
        self.client_id = "edge-1"
        self.will: Will | None = None
        self.births: Any = None
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def publish(self, topic: str, payload: dict[str, Any], retain: bool = False) -> None:
        self.sent.append((topic, payload))


def test_an_edge_sends_only_what_its_policy_shares(tmp_path: Path) -> None:
    """Results of every level go in; out come only those the company's policy shares (bolt: company
    level), on the company's own results topic; a closed batch with nothing shared sends nothing."""
    park = loaded(tmp_path, ("acme", "bolt", "corex")).park
    publisher = Publisher()
    feed = EdgeFeed(publisher, park)  # type: ignore[arg-type]  # a stand-in publisher
    results = results_of(park, "bolt")  # asset, line, site, company levels of a day window
    unshared = [r for r in results if not shares(r, park.share)]
    assert unshared and len(unshared) < len(results)  # the policy has something to filter
    feed.on_results("current", results, ParkView(), 5000.0)
    sent = {topic: payload for topic, payload in publisher.sent}
    bolt = sent["uns/harbour/bolt/_edge/results"]["results"]
    assert [r["level"] for r in bolt] == ["company"] and bolt[0]["scope"] == "bolt"
    assert sent["uns/harbour/acme/_edge/results"]["results"] == []  # no result of acme was given
    publisher.sent.clear()
    feed.on_results("closed", unshared, ParkView(), 5000.0)
    assert publisher.sent == []  # nothing shared: nothing leaves the plant


# -- OPC UA server certificates -----------------------------------------------------------------
def certificate(name: str, days: tuple[int, int]) -> x509.Certificate:
    """A self-signed certificate valid from now + days[0] to now + days[1]."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=days[0]))
        .not_valid_after(now + dt.timedelta(days=days[1]))
        .sign(key, hashes.SHA256())
    )


def test_server_certificates_need_the_trust_folder_and_their_validity(tmp_path: Path) -> None:
    """Trusted and current: accepted. Not in the folder: refused with its thumbprint, a copy kept in
    rejected/. In the folder but expired: refused all the same."""
    pki = Pki(tmp_path, tmp_path / "trusted")
    pki.trusted.mkdir()
    good, stranger, expired = (
        certificate("plc-1", (-1, 30)),
        certificate("plc-2", (-1, 30)),
        certificate("plc-3", (-30, -1)),
    )
    for trusted in (good, expired):
        (pki.trusted / f"{thumbprint(trusted)}.der").write_bytes(trusted.public_bytes(Encoding.DER))
    check_server_certificate(good, pki)
    with pytest.raises(UntrustedCertificateError, match=thumbprint(stranger)) as refused:
        check_server_certificate(stranger, pki)
    assert refused.value.thumbprint == thumbprint(stranger)
    assert (pki.rejected / f"{thumbprint(stranger)}.der").read_bytes() == stranger.public_bytes(Encoding.DER)
    with pytest.raises(SecurityError, match="outside its validity"):
        check_server_certificate(expired, pki)
