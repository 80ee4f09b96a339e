"""`parklink kpi` on recorded samples: the issue's PLC-restart and wrap cases, through a config
file and a CSV as an integrator would run them; counter settings validated with their key path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli import main

CONFIG = """\
park: {id: p}
asset_types:
  press:
    ideal_cycle_time: 1.0
    signals:
      state: {role: state, type: uint16, binding: {table: holding, address: 0}}
      good_count: {role: good_count, type: COUNT_TYPE, binding: {table: holding, address: 10}EXTRA}
companies:
  - id: acme
    connections:
      gw: {kind: modbus, host: 127.0.0.1, port: 1502}
    sites:
      - id: north
        timezone: UTC
        lines:
          - id: l1
            assets:
              - {id: p1, type: press, connection: gw}
"""


def write_case(
    tmp_path: Path, rows: list[tuple[int, int]], count_type: str, extra: str = ""
) -> tuple[Path, Path]:
    """A config and a CSV: running throughout, the good counter read at the given (t, value)."""
    config = tmp_path / "park.yaml"
    config.write_text(CONFIG.replace("COUNT_TYPE", count_type).replace("EXTRA", extra))
    samples = tmp_path / "samples.csv"
    lines = ["timestamp,asset,signal,value,quality", "0,acme/north/l1/p1,state,3,good"]
    lines += [f"{t},acme/north/l1/p1,good_count,{v},good" for t, v in rows]
    samples.write_text("\n".join(lines) + "\n")
    return config, samples


def kpi_json(capsys: pytest.CaptureFixture[str], config: Path, samples: Path, end: int) -> dict[str, object]:
    code = main(
        ["kpi", "--config", str(config), "--samples", str(samples), "--from", "0", "--to", str(end), "--json"]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    (asset,) = [r for r in out["results"] if r["level"] == "asset"]
    return dict(asset)


def test_uint16_plc_restart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """40,000 → 43,000 over 3,000 s, restart to 0, → 2,500 over 2,500 s: 5,500 parts (not 28,036),
    E = 5,500 / 5,510 at PRU 1 s and every second running."""
    rows = [(t, 40_000 + t) for t in range(0, 3001, 10)] + [(3010 + t, t) for t in range(0, 2501, 10)]
    result = kpi_json(capsys, *write_case(tmp_path, rows, "uint16"), end=5510)
    assert result["elements"]["gq"] == 5_500  # type: ignore[index]
    assert result["effectiveness"] == pytest.approx(5_500 / 5_510)
    assert result["suspect"] == []


def test_uint32_drop_to_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """3,000,016,321 → 0 → 600: 600 + 600 parts, OEE 1200/1201 (not 51,387)."""
    rows = [(t, 3_000_015_721 + t) for t in range(0, 601)] + [(601 + t, t) for t in range(0, 601)]
    result = kpi_json(capsys, *write_case(tmp_path, rows, "uint32"), end=1201)
    assert result["elements"]["gq"] == 1_200  # type: ignore[index]
    assert result["oee"] == pytest.approx(1200 / 1201)


def test_explicit_rollover_of_a_six_digit_counter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """rollover 1,000,000: 999,000 + 1 part/s for 2,000 s wraps to 1,000 and counts 2,000."""
    rows = [(t, (999_000 + t) % 1_000_000) for t in range(0, 2001, 5)]
    result = kpi_json(capsys, *write_case(tmp_path, rows, "uint32", ", rollover: 1000000"), end=2000)
    assert result["elements"]["gq"] == 2_000  # type: ignore[index]


def test_counter_settings_only_on_counters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "park.yaml"
    config.write_text(
        CONFIG.replace("COUNT_TYPE", "uint16")
        .replace("EXTRA", "")
        .replace(
            "binding: {table: holding, address: 0}}", "binding: {table: holding, address: 0}, max_rate: 2}"
        )
    )
    assert main(["validate", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"{config}:6: asset_types.press.signals.state" in err
    assert "max_rate and rollover apply to counters" in err


def test_table_marks_a_suspect_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """PRU 1 s but 3 parts a second: E = 3 > 1.5, OEE 3 > 1; the table says so on the row."""
    rows = [(t, 3 * t) for t in range(0, 601, 10)]
    config, samples = write_case(tmp_path, rows, "uint32")
    assert (
        main(["kpi", "--config", str(config), "--samples", str(samples), "--from", "0", "--to", "600"]) == 0
    )
    out = capsys.readouterr().out
    asset_row = next(line for line in out.splitlines() if "acme/north/l1/p1" in line)
    assert "suspect: effectiveness 3 > 1.5; oee 3 > 1" in asset_row
