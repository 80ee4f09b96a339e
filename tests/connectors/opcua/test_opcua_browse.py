"""`parklink browse`: from a server's address space to a config that loads and streams."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from opcua_helpers import free_port, running

from connectors.common.simulated_machine import SimulatedMachine
from connectors.opcua import browse
from connectors.opcua.simulator import OpcUaSimulator
from models.status import GOOD
from orchestrator.config import load_config
from orchestrator.registry import builtin_kinds
from orchestrator.runtime import bound_signals

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sim() -> AsyncIterator[OpcUaSimulator]:
    machines = [SimulatedMachine(name, seed=i) for i, name in enumerate(("mill1", "Mill 2"))]
    simulator = OpcUaSimulator(f"opc.tcp://127.0.0.1:{free_port()}/", machines, update_interval=0.2)
    await simulator.start()
    yield simulator
    await simulator.stop()


async def _browse(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    browse.add_arguments(parser)
    code = await browse.run(parser.parse_args(list(argv)))
    out, err = capsys.readouterr()
    return code, out, err


def _config(endpoint: str, asset_types: dict[str, Any], type_name: str) -> dict[str, Any]:
    return {
        "park": {"id": "test"},
        "asset_types": asset_types,
        "companies": [
            {
                "id": "acme",
                "connections": {"plc": {"kind": "opcua", "endpoint": endpoint, "publishing_interval": 100}},
                "sites": [
                    {
                        "id": "s1",
                        "lines": [
                            {"id": "l1", "assets": [{"id": "m1", "type": type_name, "connection": "plc"}]}
                        ],
                    }
                ],
            }
        ],
    }


async def test_browse_to_working_config(
    sim: OpcUaSimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The printed snippet parses, loads as a config with the registered kinds, and streams Good data."""
    code, out, _ = await _browse(capsys, sim.endpoint, "--root", "/2:Machines/2:mill1", "--name", "cnc_mill")
    assert code == 0
    snippet = yaml.safe_load(out)
    signals = snippet["asset_types"]["cnc_mill"]["signals"]
    assert len(signals) == 9 + 5  # the machine's variables and its Identification
    assert signals["state"] == {
        "type": "int32",
        "description": "machine state: 0 planned stop, 1 down, 2 idle, 3 running, 4 setup",
        "binding": {"address": "nsu=urn:parklink:demo;s=mill1.State"},
    }
    assert signals["temperature"]["type"] == "float64" and signals["good_count"]["type"] == "uint32"
    assert signals["identification_serial_number"]["type"] == "string"
    assert signals["identification_manufacturer"]["type"] == "string"  # LocalizedText, carried as its text
    assert signals["identification_year_of_construction"]["type"] == "uint16"
    assert "# /2:Machines/2:mill1/2:TargetSpeed · float64 · read/write" in out
    assert "# /2:Machines/2:mill1/2:State · int32 · read" in out
    assert "ns=2: urn:parklink:demo" in out

    path = tmp_path / "park.yaml"
    path.write_text(yaml.safe_dump(_config(sim.endpoint, snippet["asset_types"], "cnc_mill")))
    park = load_config(path, builtin_kinds()).park
    (ref,) = park.connections
    bound = bound_signals(park, ref)
    assert len(bound) == len(signals)
    async with running(ref.settings, bound) as (_, sink, health):
        await sink.until(lambda: health.up and len(sink.latest()) == len(bound), 10, "every browsed signal")
    assert {s.status for s in sink.latest().values()} == {GOOD}


async def test_browse_filter_depth_and_names(sim: OpcUaSimulator, capsys: pytest.CaptureFixture[str]) -> None:
    """The glob matches browse paths with or without namespace indexes; depth bounds the walk."""
    code, out, _ = await _browse(capsys, sim.endpoint, "--filter", "*/State")
    assert code == 0
    signals = yaml.safe_load(out)["asset_types"]["browsed"]["signals"]
    assert sorted(signals) == ["machines_mill1_state", "machines_mill_2_state"]
    assert signals["machines_mill_2_state"]["binding"]["address"] == "nsu=urn:parklink:demo;s=Mill 2.State"
    code, out, _ = await _browse(capsys, sim.endpoint, "--filter", "/2:Machines/2:Mill 2/2:Identification/*")
    assert len(yaml.safe_load(out)["asset_types"]["browsed"]["signals"]) == 5
    code, out, _ = await _browse(
        capsys, sim.endpoint, "--depth", "2"
    )  # Objects/Machines/<machine>: no variables
    assert code == 0 and yaml.safe_load(out)["asset_types"]["browsed"]["signals"] == {}
    code, out, _ = await _browse(
        capsys, sim.endpoint, "--root", "i=2253", "--depth", "1", "--filter", "*Status"
    )
    assert yaml.safe_load(out)["asset_types"]["browsed"]["signals"]["server_status"] == {
        "type": "variant",
        "binding": {"address": "i=2256"},
    }


async def test_browse_errors(sim: OpcUaSimulator, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown root or an unreachable server: a message on stderr and a non-zero exit code."""
    code, out, err = await _browse(capsys, sim.endpoint, "--root", "/2:Machines/2:nope")
    assert code == 2 and out == "" and "not found (BadNoMatch)" in err
    code, out, err = await _browse(capsys, f"opc.tcp://127.0.0.1:{free_port()}/", "--timeout", "1")
    assert code == 1 and out == "" and "cannot connect" in err
