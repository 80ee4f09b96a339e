"""`parklink demo`: simulators for every connection of the demo park, and parklink against them.

The park is `demo_park.yaml` (also `examples/demo-park.yaml`). Each connection gets the simulator
of its kind, serving the machines (assets) bound to it, on the loopback address of the config.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from connectors.base import ConnectorKind, Simulator
from connectors.common.simulated_machine import SimulatedMachine
from models.park import AssetRef, ConnectionRef, Park
from orchestrator.config import LoadedConfig, load_config
from orchestrator.runtime import Runtime

DEMO_PARK = Path(__file__).with_name("demo_park.yaml")
log = logging.getLogger("parklink.demo")


def machines_for(park: Park, connection: ConnectionRef) -> list[tuple[AssetRef, SimulatedMachine]]:
    """One simulated machine per asset on the connection, seeded by its path (repeatable runs)."""
    assets = [a for a in park.assets if a.company == connection.company and a.connection == connection.id]
    if connection.kind == "modbus":  # the simulator serves machine i as unit id i + 1
        assets.sort(key=lambda a: int(a.params.get("unit", 0)))
    return [
        (
            asset,
            SimulatedMachine(
                name=str(asset.params.get("machine", asset.asset)),
                ideal_cycle_time=asset.ideal_cycle_time or 2.0,
                seed=zlib.crc32(asset.path.encode()),
            ),
        )
        for asset in assets
    ]


def simulator_for(kind: ConnectorKind, park: Park, connection: ConnectionRef) -> Simulator:
    """The device side of one connection."""
    if kind.simulate is None:
        raise ValueError(f"connector kind {kind.name!r} has no simulator")
    return kind.simulate(connection.settings, [machine for _, machine in machines_for(park, connection)])


async def run_demo(
    kinds: Mapping[str, ConnectorKind],
    config_path: Path = DEMO_PARK,
    metrics_port: int | None = None,
    duration: float | None = None,
    http_port: int | None = None,
) -> None:
    """Start the simulated park, run parklink against it, stop everything at the end."""
    loaded: LoadedConfig = load_config(config_path, kinds)
    simulators: Sequence[Simulator] = [
        simulator_for(kinds[c.kind], loaded.park, c) for c in loaded.park.connections
    ]
    await asyncio.gather(*(sim.start() for sim in simulators))
    log.info("simulated park up: %d devices", len(simulators))
    runtime = Runtime(loaded, kinds, metrics_port=metrics_port, http_port=http_port)
    try:
        await runtime.run_until_stopped(duration, started=_print_welcome)
    finally:
        await asyncio.gather(*(sim.stop() for sim in simulators), return_exceptions=True)


def _print_welcome(runtime: Runtime) -> None:
    """The URLs to open and one demo token per role (created fresh for this run)."""
    from exporters.http.tokens import demo_tokens

    assert runtime.engine is not None and runtime.metrics is not None and runtime.http is not None
    http = f"http://{runtime.loaded.http.host}:{runtime.http.port}"
    lines = [
        "",
        "parklink demo is running:",
        f"  dashboard   {http}/dashboard   (log in with a token below)",
        f"  API         {http}/api/v1/docs",
        f"  metrics     http://127.0.0.1:{runtime.metrics.port}/metrics   (everything, loopback only)",
        f"              {http}/metrics/park   (only what companies share; bearer = the park operator token)",
        "  tokens (shown once; stored hashed):",
    ]
    lines += [f"    {role:<16} {token}" for role, token in demo_tokens(runtime.engine, runtime.park).items()]
    print("\n".join(lines) + "\n", flush=True)
