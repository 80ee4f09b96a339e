"""The benchmark suite keeps working: its table, one tiny benchmark through the runner, failures, the page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import suite
from bench.growth import growth, overall
from bench.report import render
from bench.suite import Bench, run_one


def test_list_names_every_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    assert suite.main(["--list"]) == 0
    out = capsys.readouterr().out
    for bench in suite.BENCHMARKS:
        assert bench.name in out
    names = [b.name for b in suite.BENCHMARKS]
    assert len(names) == len(set(names))
    mqtt = [b for b in suite.BENCHMARKS if b.module == "bench.mqtt_e2e"]
    assert {"uns_json", "sparkplug"} <= {
        b.args[b.args.index("--payload") + 1] if "--payload" in b.args else "uns_json" for b in mqtt
    }


def test_runner_records_results_and_failures_and_renders_the_page(tmp_path: Path) -> None:
    tiny = Bench("opcua_decode", "bench.opcua_decode", "decode", ("--items", "50", "--repeat", "1"), None, 60)
    record = run_one(tiny, quick=False, results=tmp_path)
    assert record["status"] == "ok", record
    assert record["result"]["items"] == 50
    assert record["command"] == "python -m bench.opcua_decode --items 50 --repeat 1"
    (tmp_path / "opcua_decode.json").write_text(json.dumps(record))

    bad = Bench("modbus", "bench.opcua_decode", "bad", ("--items", "many"), None, 60)
    failed = run_one(bad, quick=False, results=tmp_path)
    assert failed["status"] == "failed" and "invalid literal" in failed["error"]
    (tmp_path / "modbus.json").write_text(json.dumps(failed))

    missing = Bench("mqtt_e2e", "bench.no_such_module", "x", (), (), 5, optional=True)
    absent = run_one(missing, quick=False, results=tmp_path)
    assert absent["status"] == "not present"

    page = render(tmp_path)
    assert "failed: ValueError: invalid literal" in page  # the modbus section says why, the page is written
    assert "*not run yet*" in page  # benchmarks without a stored result
    assert "| 50 |" in page  # the decode table from the tiny run


def test_a_benchmark_over_its_time_limit_is_stopped_and_reported(tmp_path: Path) -> None:
    slow = Bench("scale", "bench.scale", "slow", ("--signals", "100000"), None, timeout=1)
    record = run_one(slow, quick=False, results=tmp_path)
    assert record["status"] == "failed" and record["error"] == "timed out after 1 s"


def test_growth_verdicts() -> None:
    steps = growth({1000: 1.0, 10000: 10.5, 100000: 160.0})
    assert [s["verdict"] for s in steps] == ["linear", "superlinear"]
    assert overall(steps) == "linear, then superlinear"
    assert overall(growth({1000: 1.0, 10000: 3.0})) == "sublinear"
    assert growth({1000: 1.0}) == []
