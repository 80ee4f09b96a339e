"""`parklink kpi`: KPIs from recorded samples, checked against hand-computed figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ARGS = [
    "kpi",
    "--config",
    str(EXAMPLES / "replay-two-machines.yaml"),
    "--samples",
    str(EXAMPLES / "replay-two-machines.csv"),
    "--from",
    "2026-03-02T06:00:00Z",
    "--to",
    "2026-03-02T14:00:00Z",
]


def run_json(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[tuple[str, str], dict[str, object]]:
    assert main([*ARGS, "--json", *extra]) == 0
    out = json.loads(capsys.readouterr().out)
    return {(r["level"], r["scope"]): r for r in out["results"]}


@pytest.mark.parametrize("window", ["custom", "shift"])
def test_multi_machine_line_oee_is_0_583_not_the_mean(
    capsys: pytest.CaptureFixture[str], window: str
) -> None:
    results = run_json(capsys, "--window", window)
    m1, m2 = results[("asset", "acme/north/line-1/m1")], results[("asset", "acme/north/line-1/m2")]
    line = results[("line", "acme/north/line-1")]
    assert m1["oee"] == pytest.approx(340 / 480)
    assert m2["oee"] == pytest.approx(400 * 0.2 / 240)
    assert line["oee"] == pytest.approx(0.5833, abs=1e-4)
    assert line["oee"] != pytest.approx((340 / 480 + 80 / 240) / 2, abs=1e-3)  # 0.521, the wrong mean
    assert line["quality_weighted"] == pytest.approx(420 / (350 * 1.0 + 500 * 0.2))
    assert m2["elements"]["gq"] == 400  # type: ignore[index]  # across the 16-bit wrap
    assert results[("park", "replay-demo")]["oee"] == pytest.approx(line["oee"])


def test_table_output_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(ARGS) == 0
    table = capsys.readouterr().out
    assert "acme/north/line-1/m1" in table and "0.7083" in table
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "timestamp,asset,signal,value,quality\n2026-03-02T06:00:00Z,acme/north/line-1/m9,state,3,good\n"
    )
    assert main([*ARGS[:4], str(bad), *ARGS[5:]]) == 2
    assert f"{bad}:2: no signal 'state' on asset 'acme/north/line-1/m9'" in capsys.readouterr().err
    bad.write_text(
        "timestamp,asset,signal,value,quality\n2026-03-02T06:00:00,acme/north/line-1/m1,state,3,good\n"
    )
    assert main([*ARGS[:4], str(bad), *ARGS[5:]]) == 2
    assert "has no UTC offset" in capsys.readouterr().err
