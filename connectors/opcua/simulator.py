"""An OPC UA server exposing simulated machines, for demos and tests.

Address space (namespace `urn:parklink:demo`, registered first so it is ns=2):

    Objects/2:Machines/2:<name>/            ns=2;s=<name>
        State, ItemState, OperationMode     Int32 (MachineState, OPC 40001-1 MachineryItemState,
                                            MachineryOperationMode)
        GoodCount, ScrapCount               UInt32
        EnergyKwh, Temperature, SpindleSpeed Double (kWh, °C, rpm)
        TargetSpeed                         Double, the one writable variable
        Identification/                     as in OPC 40001-1 MachineIdentificationType:
                                            Manufacturer, Model (LocalizedText), SerialNumber,
                                            ProductInstanceUri (String), YearOfConstruction (UInt16)

Every variable's node id is `ns=2;s=<name>.<Var>` (`<name>.Identification.<Prop>` for the
identification). Run standalone: `python -m connectors.opcua.simulator --endpoint
opc.tcp://127.0.0.1:4840/ --machines mill1,mill2 [--seed N]`; stops cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from asyncua import ua
from asyncua.common.node import Node
from asyncua.server.server import Server
from asyncua.ua.attribute_ids import AttributeIds

from connectors.common.simulated_machine import SimulatedMachine
from connectors.opcua.codec import make_node_id

NAMESPACE_URI = "urn:parklink:demo"
_YIELD_EVERY = 300  # writes never suspend: let client requests in now and then

_VARIABLES: tuple[tuple[str, ua.VariantType, Callable[[SimulatedMachine], object]], ...] = (
    ("State", ua.VariantType.Int32, lambda m: int(m.state)),
    ("ItemState", ua.VariantType.Int32, lambda m: int(m.item_state)),
    ("OperationMode", ua.VariantType.Int32, lambda m: int(m.operation_mode)),
    ("GoodCount", ua.VariantType.UInt32, lambda m: m.good_count),
    ("ScrapCount", ua.VariantType.UInt32, lambda m: m.scrap_count),
    ("EnergyKwh", ua.VariantType.Double, lambda m: m.energy_kwh),
    ("Temperature", ua.VariantType.Double, lambda m: m.temperature_c),
    ("SpindleSpeed", ua.VariantType.Double, lambda m: m.spindle_speed_rpm),
)


_DESCRIPTIONS = {
    "State": "machine state: 0 planned stop, 1 down, 2 idle, 3 running, 4 setup",
    "ItemState": "OPC 40001-1 MachineryItemState: "
    "0 NotAvailable, 1 OutOfService, 2 NotExecuting, 3 Executing",
    "OperationMode": "OPC 40001-1 MachineryOperationMode: 0 None, 1 Maintenance, 2 Setup, 3 Processing",
    "GoodCount": "good parts since start",
    "ScrapCount": "scrap parts since start",
    "EnergyKwh": "energy meter, kWh",
    "Temperature": "spindle temperature, °C",
    "SpindleSpeed": "spindle speed, rpm",
    "TargetSpeed": "spindle speed set point, rpm",
}


async def _describe(node: Node, name: str) -> None:
    text = ua.LocalizedText(_DESCRIPTIONS[name])
    await node.write_attribute(
        AttributeIds.Description, ua.DataValue(ua.Variant(text, ua.VariantType.LocalizedText))
    )


def _data_value(variant: ua.Variant, stamp: datetime) -> ua.DataValue:
    """A DataValue stamped on both clocks (write_attribute_value does not stamp for us)."""
    new: Any = ua.DataValue
    return cast(ua.DataValue, new(variant, SourceTimestamp=stamp, ServerTimestamp=stamp))


class OpcUaSimulator:
    """An asyncua server whose variables follow `SimulatedMachine`s, stepped by wall-clock time."""

    def __init__(self, endpoint: str, machines: Sequence[SimulatedMachine], update_interval: float = 0.5):
        self.endpoint = endpoint
        self.machines = list(machines)
        self.update_interval = update_interval
        self._server: Server | None = None
        self._task: asyncio.Task[None] | None = None
        # Per machine: (node id, variant type, getter) of each variable that follows the machine.
        self._vars: list[list[tuple[ua.NodeId, ua.VariantType, Callable[[SimulatedMachine], object]]]] = []
        self._last: dict[ua.NodeId, object] = {}

    @property
    def server(self) -> Server:
        """The running asyncua server (for tests that inspect sessions)."""
        if self._server is None:
            raise RuntimeError("simulator not started")
        return self._server

    async def start(self) -> None:
        """Build the address space, bind the endpoint and start updating values."""
        for name in ("asyncua.server", "asyncua.common", "asyncua.crypto"):
            logging.getLogger(name).setLevel(logging.ERROR)  # startup warnings that mean nothing here
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("parklink demo machines")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        idx = await server.register_namespace(NAMESPACE_URI)
        folder = await server.nodes.objects.add_folder(
            make_node_id("Machines", idx), ua.QualifiedName("Machines", idx)
        )
        now = time.time()
        self._vars, self._last = [], {}
        for number, machine in enumerate(self.machines, start=1):
            machine.step(now)
            self._vars.append(await self._add_machine(folder, idx, machine, number))
        await server.start()
        self._server = server
        self._task = asyncio.create_task(self._update_loop(), name="opcua-simulator")

    async def _add_machine(
        self, folder: Node, idx: int, machine: SimulatedMachine, number: int
    ) -> list[tuple[ua.NodeId, ua.VariantType, Callable[[SimulatedMachine], object]]]:
        name = machine.name
        obj = await folder.add_object(make_node_id(name, idx), ua.QualifiedName(name, idx))
        variables = []
        for var, vtype, getter in _VARIABLES:
            node_id = make_node_id(f"{name}.{var}", idx)
            value = getter(machine)
            node = await obj.add_variable(node_id, ua.QualifiedName(var, idx), ua.Variant(value, vtype))
            await _describe(node, var)
            self._last[node_id] = value
            variables.append((node_id, vtype, getter))
        target = await obj.add_variable(
            make_node_id(f"{name}.TargetSpeed", idx),
            ua.QualifiedName("TargetSpeed", idx),
            3000.0,
            ua.VariantType.Double,
        )
        await target.set_writable()
        await _describe(target, "TargetSpeed")
        ident = await obj.add_folder(
            make_node_id(f"{name}.Identification", idx), ua.QualifiedName("Identification", idx)
        )
        for prop, value, vtype in (
            ("Manufacturer", ua.LocalizedText("parklink demo works"), ua.VariantType.LocalizedText),
            ("SerialNumber", f"SN-{number:05d}", ua.VariantType.String),
            ("ProductInstanceUri", f"urn:parklink:demo:machine:{name}", ua.VariantType.String),
            ("Model", ua.LocalizedText("PL-CNC 3X"), ua.VariantType.LocalizedText),
            ("YearOfConstruction", 2019 + number % 5, ua.VariantType.UInt16),
        ):
            node_id = make_node_id(f"{name}.Identification.{prop}", idx)
            await ident.add_property(node_id, ua.QualifiedName(prop, idx), value, vtype)
        return variables

    async def _update_loop(self) -> None:
        while True:
            await asyncio.sleep(self.update_interval)
            await self.update(time.time())

    async def update(self, now: float) -> int:
        """Step every machine to `now` and write the variables that changed; returns how many."""
        server = self._server
        assert server is not None
        stamp = datetime.fromtimestamp(now, UTC)
        writes = 0
        for machine, variables in zip(self.machines, self._vars, strict=True):
            machine.step(now)
            for node_id, vtype, getter in variables:
                value = getter(machine)
                if self._last.get(node_id) == value:
                    continue
                self._last[node_id] = value
                dv = _data_value(ua.Variant(value, vtype), stamp)
                await server.write_attribute_value(node_id, dv)
                writes += 1
                if writes % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        return writes

    async def stop(self) -> None:
        """Stop updating and close the server (clients see their connections drop)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._server is not None:
            await self._server.stop()
            self._server = None


async def _serve(endpoint: str, names: list[str], seed: int, update_interval: float) -> None:
    machines = [SimulatedMachine(name, seed=seed + i) for i, name in enumerate(names)]
    simulator = OpcUaSimulator(endpoint, machines, update_interval)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await simulator.start()
    print(f"opcua simulator listening on {endpoint}", flush=True)  # tests wait for this line
    try:
        await stop.wait()
    finally:
        await simulator.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point: serve simulated machines until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description="OPC UA server with simulated machines")
    parser.add_argument("--endpoint", default="opc.tcp://127.0.0.1:4840/", help="endpoint URL to bind")
    parser.add_argument("--machines", default="mill1,mill2", help="comma-separated machine names")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the first machine")
    parser.add_argument("--update-interval", type=float, default=0.5, help="seconds between updates")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.machines.split(",") if n.strip()]
    if not names:
        parser.error("--machines needs at least one name")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    asyncio.run(_serve(args.endpoint, names, args.seed, args.update_interval))


if __name__ == "__main__":
    main()
