"""`parklink record`: a live run against real OPC UA and Modbus servers, written as the samples CSV
and read back: the same samples, the same Bad ones, the same KPIs as the live engine."""

from __future__ import annotations

import asyncio
import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from connectors.common.simulated_machine import SimulatedMachine
from connectors.modbus.simulator import ModbusSimulator
from connectors.opcua.simulator import OpcUaSimulator
from connectors.replay.samples import Row, parse_status, parse_time, parse_value, read_rows
from models import status
from models.sample import Quality, Sample
from orchestrator.cli import main
from orchestrator.config import load_config
from orchestrator.kpi.service import KpiService
from orchestrator.kpi.windows import Window
from orchestrator.record import Recorder, Recording, format_status, format_time, format_value
from orchestrator.registry import builtin_kinds
from orchestrator.replay import read_samples, replay
from tests.conftest import free_port, reachable

CONFIG = """\
park: {id: rec}
database: {url: "sqlite:///@DB@"}
asset_types:
  press:
    ideal_cycle_time: 0.2
    signals:
      state:       {role: state, type: uint16, binding: {table: holding, address: 0, unit_id: "{unit}"}}
      good_count:  {role: good_count, type: uint32, binding: {table: holding, address: 10, unit_id: "{unit}"}}
      energy: {role: energy, type: float32, unit: kWh,
               binding: {table: holding, address: 20, unit_id: "{unit}"}}
      temperature: {type: int16, unit: °C,
                    binding: {table: holding, address: 30, unit_id: "{unit}", scale: 0.1}}
  mill:
    ideal_cycle_time: 0.2
    signals:
      state:       {role: state, type: int32, binding: {address: "ns=2;s={machine}.State"}}
      good_count:  {role: good_count, type: uint32, binding: {address: "ns=2;s={machine}.GoodCount"}}
      scrap_count: {role: scrap_count, type: uint32, binding: {address: "ns=2;s={machine}.ScrapCount"}}
      energy:      {role: energy, type: float64, unit: kWh, binding: {address: "ns=2;s={machine}.EnergyKwh"}}
      speed:       {type: float64, unit: rpm, binding: {address: "ns=2;s={machine}.SpindleSpeed"}}
companies:
  - id: acme
    connections:
      plc: {kind: modbus, host: 127.0.0.1, port: @MODBUS@, poll_interval: 0.2, timeout: 0.5,
            reconnect_initial: 0.2, reconnect_max: 1.0}
      ua: {kind: opcua, endpoint: "opc.tcp://127.0.0.1:@OPCUA@/", publishing_interval: 100,
           sampling_interval: 50}
    sites:
      - id: s
        lines:
          - id: l
            assets:
              - {id: press-1, type: press, connection: plc, params: {unit: 1}}
              - {id: mill-1, type: mill, connection: ua, params: {machine: Mill1}}
"""
# The press alone, for the command line against a simulator process.
MODBUS_ONLY = """\
park: {id: rec}
database: {url: "sqlite:///@DB@"}
asset_types:
  press:
    ideal_cycle_time: 0.2
    signals:
      state:       {role: state, type: uint16, binding: {table: holding, address: 0, unit_id: "{unit}"}}
      good_count:  {role: good_count, type: uint32, binding: {table: holding, address: 10, unit_id: "{unit}"}}
companies:
  - id: acme
    connections:
      plc: {kind: modbus, host: 127.0.0.1, port: @MODBUS@, poll_interval: 0.2}
    sites:
      - {id: s, lines: [{id: l, assets: [{id: press-1, type: press, connection: plc, params: {unit: 1}}]}]}
"""
PRESS, MILL = "acme/s/l/press-1", "acme/s/l/mill-1"
PRU = 0.2  # the ideal cycle time of both types (s)
BUCKET = {3: "apt", 4: "aust", 1: "adet", 2: "adot", 0: "pdot"}  # demo_machine_state, by hand
TIME_FIELDS = ("apt", "aust", "adet", "adot", "pdot", "unknown")


@dataclass
class Servers:
    modbus: ModbusSimulator
    opcua: OpcUaSimulator
    config: Path


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[Servers]:
    """A real pymodbus server (one press) and a real asyncua server (one mill), both running."""
    # Seeds 0 and 2 stay RUNNING for minutes from their start: a few seconds make parts.
    modbus = ModbusSimulator("127.0.0.1", 0, [SimulatedMachine("press1", PRU, seed=0)], 0.1)
    opcua_port = free_port()
    opcua = OpcUaSimulator(
        f"opc.tcp://127.0.0.1:{opcua_port}/", [SimulatedMachine("Mill1", PRU, seed=2)], 0.1
    )
    await modbus.start()
    try:
        await opcua.start()
        config = tmp_path / "park.yaml"
        config.write_text(
            CONFIG.replace("@DB@", str(tmp_path / "rec.db"))
            .replace("@MODBUS@", str(modbus.port))
            .replace("@OPCUA@", str(opcua_port))
        )
        yield Servers(modbus, opcua, config)
    finally:
        await opcua.stop()
        await modbus.stop()


def recording(config: Path, out: Path) -> tuple[Recording, list[Sample]]:
    """A recording of `config` into `out`, and every sample its snapshot takes, as it takes them."""
    kinds = builtin_kinds()
    loaded = load_config(config, kinds)
    recorder = Recorder.open(loaded.park, out, flush_interval=0.2)
    rec = Recording(loaded, kinds, recorder, metrics_port=free_port(), http_port=free_port())
    seen: list[Sample] = []
    rec.runtime.snapshot.listeners.append(seen.extend)
    return rec, seen


async def until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {seconds:.0f} s")
        await asyncio.sleep(0.1)


def all_bad(samples: Iterable[Sample | None]) -> bool:
    return all(s is not None and s.quality == Quality.BAD for s in samples)


def rows_of(rows: list[Row], asset: str, name: str) -> list[Row]:
    return [r for r in rows if r.key == (asset, name)]


# -- encoding: every value kind and status reads back as documented ------------------------------


def test_values_statuses_and_times_read_back_as_written() -> None:
    for value in (
        None,
        True,
        False,
        0,
        -7,
        2**53,
        3.0,
        -0.0,
        0.1,
        1e20,
        1.5e-300,
        math.inf,
        -math.inf,
        "text",
    ):
        text, exact = format_value(value)
        assert exact and parse_value(text) == value and type(parse_value(text)) is type(value), value
    nan, exact = format_value(math.nan)
    assert exact and math.isnan(parse_value(nan))  # type: ignore[arg-type]
    assert format_value(b"\x00\xff") == ("0x00ff", False)
    assert format_value([1, 2.5]) == ("[1,2.5]", False)
    assert format_value({"a": 1, "raw": b"\x01"}) == ('{"a":1,"raw":"0x01"}', False)
    assert parse_value(format_value({"a": 1})[0]) == '{"a":1}'  # structures read back as JSON text
    codes = (status.GOOD, status.UNCERTAIN, status.BAD_NO_COMMUNICATION, status.BAD_TIMEOUT)
    sub_codes = (0x80310400, 0x40900000, 0x40000400, 0x00000480, 0xC0000000, 0x80AB0000)
    for code in (*codes, *sub_codes):
        assert parse_status(format_status(code)) == code, hex(code)
    assert format_status(status.BAD_NO_COMMUNICATION) == "BadNoCommunication"
    assert format_status(0x80310400) == "0x80310400"
    for t in (0.0, 1772431200.0, 1772431200.123456, 1772431200.1234567, 1e9 + 0.5):
        text = format_time(t)
        assert text.endswith("+00:00") and abs(parse_time(text) - t) <= 0.5e-6, text
    assert format_time(1772431200.25) == "2026-03-02T06:00:00.250000+00:00"


def test_a_state_value_re_sent_after_a_gap_replays_as_it_counted_live(tmp_path: Path) -> None:
    """OPC UA re-sends values after a reconnect stamped with when they last changed: live, the
    engine ends the UNKNOWN gap at the value's server time; the file puts it there, so the replay
    does the same (by hand: UNKNOWN from the Bad row at 110 to the re-sent value at 120)."""
    config = tmp_path / "park.yaml"
    config.write_text(CONFIG.replace("@DB@", "x.db").replace("@MODBUS@", "1").replace("@OPCUA@", "1"))
    park = load_config(config, builtin_kinds()).park
    state = next(s.index for s in park.signals if (s.asset.path, s.name) == (MILL, "state"))
    good = next(s.index for s in park.signals if (s.asset.path, s.name) == (MILL, "good_count"))
    base = 1772431200.0
    samples = [
        Sample(state, 3, status.GOOD, base + 100, base + 100),
        Sample(good, 10, status.GOOD, base + 100, base + 100),
        Sample(state, None, status.BAD_NO_COMMUNICATION, base + 110, base + 110),
        Sample(good, None, status.BAD_NO_COMMUNICATION, base + 110, base + 110),
        Sample(state, 3, status.GOOD, base + 50, base + 120),  # re-sent: changed at 50, sent at 120
        Sample(good, 10, status.GOOD, base + 100, base + 120),  # a counter keeps its own time
        Sample(state, 1, status.GOOD, base + 130, base + 130),
        Sample(good, 12, status.GOOD, base + 130, base + 130),
    ]
    out = tmp_path / "gap.csv"
    recorder = Recorder.open(park, out)
    recorder.on_batch(samples)
    asyncio.run(recorder.stop())
    assert recorder.counts.restamped == 1 and recorder.counts.bad == 2
    times = [r.time - base for r in read_rows(out)]
    assert times == [100, 100, 110, 110, 120, 100, 130, 130]
    live = KpiService(park, None).engine  # the engine `parklink run` feeds, fed as it was live
    live.feed(samples)
    done = replay(park, out)
    t0, t1 = base + 100, base + 140
    replayed = done.engine.elements(MILL, t0, t1, t1)
    assert asdict(replayed) == asdict(live.elements(MILL, t0, t1, t1))
    assert (replayed.apt, replayed.unknown, replayed.adet) == (20, 10, 10)
    assert replayed.gq + replayed.unattributed_gq == 2


# -- (1) a live run: the file holds what the snapshot saw ---------------------------------------


async def test_recorded_rows_are_the_samples_the_snapshot_saw(servers: Servers, tmp_path: Path) -> None:
    out = tmp_path / "shift.csv"
    rec, seen = recording(servers.config, out)
    park = rec.runtime.park
    await rec.start()
    try:
        await until(lambda: all(s is not None for s in rec.runtime.snapshot.latest), 20, "every signal read")
        await asyncio.sleep(2.0)
    finally:
        await rec.stop()
    rows = list(read_rows(out))
    assert len(rows) == len(seen) == rec.recorder.counts.samples > 0
    assert rec.recorder.counts.bad == 0 and rec.recorder.error is None
    ua = {s.index for s in park.signals if s.asset.path == MILL}
    for row, sample in zip(rows, seen, strict=True):
        ref = park.signals[sample.signal]
        assert row.key == (ref.asset.path, ref.name)
        assert row.value == sample.value and type(row.value) is type(sample.value), row
        assert row.status == sample.status
        if sample.signal in ua:  # OPC UA times are whole microseconds: exactly the same float
            assert row.time == sample.source_time, row
        else:
            assert abs(row.time - sample.source_time) <= 0.5e-6 + 1e-9, row
    assert {r.key for r in rows} == {(s.asset.path, s.name) for s in park.signals}
    # What the runtime's snapshot ended with is the file's last row of each signal.
    last = {r.key: r for r in rows}
    for ref in park.signals:
        latest = rec.runtime.snapshot.latest[ref.index]
        assert latest is not None
        row = last[(ref.asset.path, ref.name)]
        assert (row.value, row.status) == (latest.value, latest.status)
    # And the reader the KPI replay uses maps them back onto the same signals.
    assert [(s.signal, s.value, s.status) for s in read_samples(out, park)] == [
        (s.signal, s.value, s.status) for s in seen
    ]
    with out.open(newline="") as handle:
        assert next(csv.reader(handle)) == ["timestamp", "asset", "signal", "value", "quality"]


# -- (2) a connection loss: Bad rows that read back as Bad ---------------------------------------


@pytest.mark.parametrize("lost", ["opcua", "modbus"])
async def test_a_lost_server_is_recorded_as_bad_and_replays_as_unknown(
    servers: Servers, tmp_path: Path, lost: str
) -> None:
    out = tmp_path / "loss.csv"
    rec, _ = recording(servers.config, out)
    park = rec.runtime.park
    lost_asset, kept_asset = (MILL, PRESS) if lost == "opcua" else (PRESS, MILL)
    lost_signals = [s.index for s in park.signals if s.asset.path == lost_asset]
    latest = rec.runtime.snapshot.latest
    await rec.start()
    try:
        await until(lambda: all(s is not None for s in latest), 20, "every signal read")
        await asyncio.sleep(1.0)
        await (servers.opcua.stop() if lost == "opcua" else servers.modbus.stop())
        await until(lambda: all_bad(latest[i] for i in lost_signals), 20, f"the {lost} signals Bad")
        await asyncio.sleep(1.0)  # record some Bad time
    finally:
        await rec.stop()
    with out.open(newline="") as handle:
        raw = list(csv.DictReader(handle))
    bad_raw = [r for r in raw if r["quality"] != "Good"]
    assert bad_raw and {r["asset"] for r in bad_raw} == {lost_asset}  # the other server stayed Good
    assert {r["quality"] for r in bad_raw} == {"BadNoCommunication"}
    assert {r["value"] for r in bad_raw} == {""}  # no value: an empty cell
    assert {r["signal"] for r in bad_raw} == {s.name for s in park.signals if s.asset.path == lost_asset}
    assert rec.recorder.counts.bad == len(bad_raw)
    samples = list(read_samples(out, park))
    bad = [s for s in samples if s.quality == Quality.BAD]
    assert len(bad) == len(bad_raw)
    assert all(s.status == status.BAD_NO_COMMUNICATION and s.value is None for s in bad)
    assert all(s.quality == Quality.GOOD for s in samples if s.signal not in lost_signals)
    # Replayed, the lost asset's time after the first Bad state row is UNKNOWN (by hand: t_end - t_bad),
    # and the kept asset has no UNKNOWN time after its first state row.
    rows = list(read_rows(out))
    t_end = max(r.time for r in rows)
    states = rows_of(rows, lost_asset, "state")
    t_first = states[0].time
    t_bad = next(r.time for r in states if status.quality_of(r.status) == 0)
    assert t_bad > t_first
    done = replay(park, out)
    elements = done.engine.elements(lost_asset, t_first, t_end, t_end)
    assert elements.unknown == pytest.approx(t_end - t_bad, abs=1e-6)
    assert rec.runtime.kpi.engine.elements(lost_asset, t_first, t_end, t_end).unknown == pytest.approx(
        elements.unknown, abs=1e-5
    )
    kept_first = rows_of(rows, kept_asset, "state")[0].time
    assert done.engine.elements(kept_asset, kept_first, t_end, t_end).unknown == pytest.approx(0, abs=1e-6)


# -- (3) the recorded file through `parklink kpi` gives the live engine's elements ----------------


def by_hand(rows: list[Row], asset: str, t0: float, t1: float) -> dict[str, float]:
    """From the file's rows, of [t0, t1) with t0 before every row: time per element (UNKNOWN until
    the first state row, the last state holding to t1), and every good unit the counter shows."""
    states = rows_of(rows, asset, "state")
    assert all(r.status == status.GOOD for r in states)
    expected = dict.fromkeys(TIME_FIELDS, 0.0)
    expected["unknown"] = states[0].time - t0
    for row, nxt in zip(states, [*states[1:], None], strict=True):
        end = nxt.time if nxt else t1
        expected[BUCKET[int(row.value)]] += end - row.time  # type: ignore[arg-type]
    good = rows_of(rows, asset, "good_count")
    expected["counted"] = float(good[-1].value) - float(good[0].value)  # type: ignore[arg-type]
    return expected


async def test_recorded_shift_replays_to_the_live_kpi_elements(
    servers: Servers, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "shift.csv"
    rec, _ = recording(servers.config, out)
    await rec.start()
    try:
        await until(lambda: all(s is not None for s in rec.runtime.snapshot.latest), 20, "every signal read")
        await asyncio.sleep(3.0)
    finally:
        await rec.stop()
    live = rec.runtime.kpi.engine
    rows = list(read_rows(out))
    assert all(r.status == status.GOOD for r in rows)
    # A window on whole seconds around the whole recording, as `parklink kpi --from --to` takes it.
    t0 = math.floor(min(r.time for r in rows)) - 1.0
    t1 = math.ceil(max(r.time for r in rows)) + 1.0
    args = ["kpi", "--config", str(servers.config), "--samples", str(out), "--json"]
    assert main([*args, "--from", repr(t0), "--to", repr(t1)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["samples"] == len(rows)
    results = {(r["level"], r["scope"]): r["elements"] for r in printed["results"]}
    for asset in (PRESS, MILL):
        replayed = results[("asset", asset)]
        live_elements = asdict(live.window_elements(asset, Window("live", t0, t1), t1))
        assert replayed.keys() == live_elements.keys()
        for name, value in live_elements.items():  # times differ by < 1 µs (Modbus clock) at most
            assert replayed[name] == pytest.approx(value, abs=1e-5), (asset, name)
        hand = by_hand(rows, asset, t0, t1)
        assert hand["counted"] > 0, "the machine made parts during the recording"
        for name in TIME_FIELDS:
            assert replayed[name] == pytest.approx(hand[name], abs=1e-5), (asset, name)
        assert sum(replayed[name] for name in TIME_FIELDS) == pytest.approx(t1 - t0)
        # Every part the counter shows is counted: against observed time (GQ) or, for the part of
        # its first interval before the first state row, set apart (unattributed).
        assert replayed["gq"] + replayed["unattributed_gq"] == pytest.approx(hand["counted"])
        assert replayed["ideal_good_time"] == pytest.approx(replayed["gq"] * PRU)
    line = results[("line", "acme/s/l")]
    assert line["gq"] == pytest.approx(results[("asset", PRESS)]["gq"] + results[("asset", MILL)]["gq"])


# -- (4) the command line ----------------------------------------------------------------------


def test_cli_refuses_an_existing_file_and_a_foreign_one_to_append_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "park.yaml"
    config.write_text(
        CONFIG.replace("@DB@", str(tmp_path / "rec.db")).replace("@MODBUS@", "1").replace("@OPCUA@", "1")
    )
    out = tmp_path / "shift.csv"
    out.write_text("timestamp,asset,signal,value,quality\n")
    assert main(["record", str(config), "--out", str(out), "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert f"parklink record: {out} exists: pass --force to overwrite it or --append to add to it" in err
    assert out.read_text() == "timestamp,asset,signal,value,quality\n"  # untouched
    foreign = tmp_path / "other.csv"
    foreign.write_text("time,value\n1,2\n")
    assert main(["record", str(config), "--out", str(foreign), "--append", "--duration", "1"]) == 2
    assert "not a recording to append to" in capsys.readouterr().err
    assert foreign.read_text() == "time,value\n1,2\n"
    with pytest.raises(SystemExit) as exited:  # one or the other
        main(["record", str(config), "--out", str(out), "--append", "--force"])
    assert exited.value.code == 2
    assert not (tmp_path / "rec.db").exists(), "refused before anything started"
    # What --force opens: the old rows are gone, a fresh header is written.
    out.write_text(
        "timestamp,asset,signal,value,quality\n2026-03-02T06:00:00Z,acme/s/l/press-1,state,3,good\n"
    )
    forced = Recorder.open(load_config(config, builtin_kinds()).park, out, "overwrite")
    forced.on_batch([Sample(0, 2, status.GOOD, 1772431200.5, 1772431200.5)])
    asyncio.run(forced.stop())  # writes what it holds, closes the file
    assert forced.summary() == f"1 samples written to {out} (0 Bad, 0 Uncertain)"
    assert [(r.key, r.value) for r in read_rows(out)] == [((PRESS, "state"), 2)]


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_cli_records_until_ctrl_c_then_appends(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    modbus_port = free_port()
    config = tmp_path / "park.yaml"
    config.write_text(
        MODBUS_ONLY.replace("@DB@", str(tmp_path / "rec.db")).replace("@MODBUS@", str(modbus_port))
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def start(*args: str, name: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{name}.out").open("wb") as out, (tmp_path / f"{name}.err").open("wb") as err:
            process = subprocess.Popen([sys.executable, *args], cwd=tmp_path, stdout=out, stderr=err, env=env)
        processes.append(process)
        return process

    start("-m", "connectors.modbus.simulator", "--port", str(modbus_port), "--machines", "press1", name="sim")
    deadline = time.monotonic() + 20
    while not reachable("127.0.0.1", modbus_port):
        assert time.monotonic() < deadline, "the Modbus simulator did not listen"
        time.sleep(0.2)
    out = tmp_path / "shift.csv"
    ports = ["--metrics-port", str(free_port()), "--http-port", str(free_port())]
    record = start("-m", "orchestrator.cli", "record", str(config), "--out", str(out), *ports, name="rec")
    deadline = time.monotonic() + 30
    while not (out.exists() and len(out.read_text().splitlines()) > 20):  # flushed while running
        assert record.poll() is None, (tmp_path / "rec.err").read_text()[-2000:]
        assert time.monotonic() < deadline, "no rows flushed while recording"
        time.sleep(0.2)
    record.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop
    assert record.wait(timeout=20) == 0, (tmp_path / "rec.err").read_text()[-2000:]
    printed = (tmp_path / "rec.out").read_text()
    rows = list(read_rows(out))
    assert f"parklink record: {len(rows)} samples written to {out} (0 Bad, 0 Uncertain)" in printed
    assert "until Ctrl-C" in printed
    again = start(
        "-m",
        "orchestrator.cli",
        "record",
        str(config),
        "--out",
        str(out),
        "--append",
        "--duration",
        "1.5",
        *ports,
        name="again",
    )
    assert again.wait(timeout=40) == 0, (tmp_path / "again.err").read_text()[-2000:]
    appended = list(read_rows(out))
    assert len(appended) > len(rows) and appended[: len(rows)] == rows
    assert out.read_text().count("timestamp,asset,signal") == 1  # one header
    assert {r.key[0] for r in appended} == {PRESS}
    for process in processes:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
