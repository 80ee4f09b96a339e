"""parklink as a user runs it: the demo park, and a device killed and restarted under `parklink run`.

Everything runs as real processes on loopback: simulators (asyncua and pymodbus servers) and the
`parklink` command; the tests read only what Prometheus would scrape.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.exporters.test_prometheus import series

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Series:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return series(response.read().decode())


def wait_for(condition: Callable[[], Series | None], seconds: float, what: str) -> Series:
    """Poll `condition` until it returns metrics, or fail naming what never happened."""
    deadline = time.monotonic() + seconds
    last_error = ""
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result is not None:
                return result
        except OSError as exc:  # not listening yet
            last_error = str(exc)
        time.sleep(0.5)
    pytest.fail(f"{what} within {seconds:.0f} s {last_error}")


def by_name(metrics: Series, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: value for (metric, labels), value in metrics.items() if metric == name}


def start(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    """Run a command; its output goes to cwd/stdout.txt (read by the tests) and cwd/stderr.txt."""
    with (cwd / "stdout.txt").open("ab") as out, (cwd / "stderr.txt").open("ab") as err:
        return subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            stdout=out,
            stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def stop(process: subprocess.Popen[bytes], timeout: float = 10) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout=timeout)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


PARKLINK = ["-m", "orchestrator.cli"]


def test_demo_serves_live_metrics_of_three_companies(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    http_port = free_port()
    demo = start(
        [*PARKLINK, "demo", "--duration", "120", "--metrics-port", str(port), "--http-port", str(http_port)],
        tmp_path,
    )
    processes.append(demo)

    def all_up() -> Series | None:
        metrics = scrape(port)
        up = by_name(metrics, "parklink_connection_up")
        good = by_name(metrics, "parklink_good_count")
        companies = {dict(labels)["company"] for labels in good}
        return (
            metrics if len(up) == 6 and all(v == 1.0 for v in up.values()) and len(companies) >= 3 else None
        )

    first = wait_for(all_up, 60, "every demo connection up with good counts of 3 companies")
    energy_before = by_name(first, "parklink_energy_joules")
    assert len(energy_before) == 12
    time.sleep(3)
    energy_after = by_name(scrape(port), "parklink_energy_joules")
    changed = [labels for labels, value in energy_after.items() if value != energy_before.get(labels)]
    assert len(changed) >= 10, "energy counters should advance on (almost) every machine"

    def oee_at_every_level() -> Series | None:
        metrics = scrape(port)
        oee = by_name(metrics, "parklink_kpi_oee_ratio")
        levels = {dict(labels)["level"] for labels in oee}
        return metrics if {"asset", "line", "site", "company", "park"} <= levels else None

    kpis = wait_for(oee_at_every_level, 20, "live OEE per asset, line, site, company and park")
    shared = by_name(kpis, "parklink_kpi_availability_ratio")
    park_level = [labels for labels in shared if dict(labels)["level"] == "park"]
    assert park_level, "acme and bolt share availability: the park aggregate has it"
    # The demo prints a token per role; the park operator's sees only what companies share.
    printed = (tmp_path / "stdout.txt").read_text()
    token = next(
        line.split()[-1] for line in printed.splitlines() if line.strip().startswith("park operator")
    )
    request = urllib.request.Request(
        f"http://127.0.0.1:{http_port}/metrics/park", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        park_metrics = series(response.read().decode())
    park_oee = by_name(park_metrics, "parklink_kpi_oee_ratio")
    assert {dict(labels)["company"] for labels in park_oee} >= {"acme", "bolt", "corex"}
    corex_availability = [
        labels
        for labels in by_name(park_metrics, "parklink_kpi_availability_ratio")
        if ("company", "corex") in labels
    ]
    assert corex_availability == [], "corex shares OEE only"
    assert not by_name(park_metrics, "parklink_energy_joules"), "no raw signals in the park's metrics"
    demo.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop, exit code 0
    assert demo.wait(timeout=20) == 0, (tmp_path / "stderr.txt").read_text()[-2000:]
    assert (tmp_path / "parklink-demo.db").exists()


CONFIG = """\
park: {id: kill-test}
database: {url: "sqlite:///kill.db"}
asset_types:
  press:
    signals:
      good_count: {role: good_count, type: uint32, binding: {address: 10, unit_id: "{unit}"}}
  mill:
    signals:
      good_count: {role: good_count, type: uint32, binding: {address: "ns=2;s={machine}.GoodCount"}}
      energy: {role: energy, unit: kWh, binding: {address: "ns=2;s={machine}.EnergyKwh"}}
companies:
  - id: acme
    connections:
      plc: {kind: modbus, host: 127.0.0.1, port: MODBUS_PORT, poll_interval: 0.2, timeout: 0.5,
            reconnect_initial: 0.2, reconnect_max: 1.0}
      ua: {kind: opcua, endpoint: "opc.tcp://127.0.0.1:OPCUA_PORT/", publishing_interval: 200}
    sites:
      - id: s
        lines:
          - id: l
            assets:
              - {id: press-1, type: press, connection: plc, params: {unit: 1}}
              - {id: mill-1, type: mill, connection: ua, params: {machine: Mill1}}
"""


def test_killed_device_goes_down_alone_and_recovers(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    modbus_port, opcua_port, metrics_port = free_port(), free_port(), free_port()
    config = tmp_path / "park.yaml"
    config.write_text(
        textwrap.dedent(CONFIG)
        .replace("MODBUS_PORT", str(modbus_port))
        .replace("OPCUA_PORT", str(opcua_port))
    )
    modbus_args = ["-m", "connectors.modbus.simulator", "--port", str(modbus_port), "--machines", "press1"]
    plc = start(modbus_args, tmp_path)
    ua = start(
        [
            "-m",
            "connectors.opcua.simulator",
            "--endpoint",
            f"opc.tcp://127.0.0.1:{opcua_port}/",
            "--machines",
            "Mill1",
        ],
        tmp_path,
    )
    parklink = start(
        [*PARKLINK, "run", str(config), "--metrics-port", str(metrics_port), "--http-port", str(free_port())],
        tmp_path,
    )
    processes.extend([plc, ua, parklink])
    up_key = {
        "plc": frozenset({("company", "acme"), ("connection", "plc"), ("kind", "modbus")}),
        "ua": frozenset({("company", "acme"), ("connection", "ua"), ("kind", "opcua")}),
    }

    def state(plc_up: float, ua_up: float) -> Callable[[], Series | None]:
        def check() -> Series | None:
            metrics = scrape(metrics_port)
            up = by_name(metrics, "parklink_connection_up")
            return metrics if up.get(up_key["plc"]) == plc_up and up.get(up_key["ua"]) == ua_up else None

        return check

    wait_for(state(1.0, 1.0), 30, "both connections up")
    plc.kill()
    plc.wait(timeout=5)
    down = wait_for(state(0.0, 1.0), 15, "the Modbus connection down while OPC UA stays up")
    quality = by_name(down, "parklink_signal_quality")
    press_quality = [v for labels, v in quality.items() if dict(labels)["asset"] == "press-1"]
    assert press_quality == [0.0]
    ua_samples = by_name(down, "parklink_connection_samples_total")[up_key["ua"]]

    processes.append(start(modbus_args, tmp_path))
    recovered = wait_for(state(1.0, 1.0), 20, "the Modbus connection recovered without restarting parklink")
    assert by_name(recovered, "parklink_connection_reconnects_total")[up_key["plc"]] == 1.0
    assert by_name(recovered, "parklink_connection_samples_total")[up_key["ua"]] > ua_samples
    assert parklink.poll() is None
    assert stop(parklink) == 0
