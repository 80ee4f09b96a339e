"""A Modbus server that serves SimulatedMachines, one per unit id, for the demo and the tests.

It speaks every transport the connector does: Modbus TCP, RTU over TCP (as a serial gateway
would), and RTU on a serial line (a `VirtualSerialLine`, two bridged ptys, stands in for the cable).

Register layout of every unit (0-based wire addresses; holding registers 0-199 all exist, unused
ones read 0, so reads may bridge gaps):

    HR 0       state (MachineState code)            HR 10-11  good count, uint32 ABCD
    HR 1       MachineryItemState                   HR 12-13  scrap count, uint32 ABCD
    HR 2       MachineryOperationMode               HR 20-21  energy, float32 ABCD, kWh
    HR 30      temperature, int16, 0.1 °C           HR 100    target speed, uint16, written by clients
    IR 0-1     spindle speed, float32 CDAB (word-swapped), rpm
    coil 0     running flag

Registers are encoded with pymodbus' own converter, independent of parklink's codec, so the
integration tests check our decoder against a second implementation. Unit ids without a machine
answer exception 11 (gateway target failed to respond) over TCP, and nothing on a serial line. Run
it as a process with `python -m connectors.modbus.simulator --port 5020 --machines press1,press2`.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import signal
import time
from collections.abc import Sequence

from pymodbus.client import ModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.base import ModbusBaseServer
from pymodbus.simulator import DataType, SimData, SimDevice

from connectors.common.simulated_machine import MachineState, SimulatedMachine
from connectors.modbus.faults import quiet_pymodbus
from connectors.modbus.serialline import VirtualSerialLine

_DESCRIPTION = (
    "Modbus server (TCP, RTU over TCP, or RTU on a virtual serial line) serving simulated machines."
)
HOLDING_SIZE = 200
_DT = ModbusTcpClient.DATATYPE
_FC_HOLDING, _FC_INPUT, _FC_COILS = 16, 4, 15  # function codes that address each table in the store
_READ_FC = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}
_WRITE_FC = {"coil": 15, "discrete": 2, "holding": 16, "input": 4}


def machine_registers(machine: SimulatedMachine) -> tuple[list[int], list[int], list[bool]]:
    """Holding registers 0-30, input registers 0-1 and coil 0 of one machine."""
    conv = ModbusTcpClient.convert_to_registers
    holding = [0] * 31
    holding[0:3] = [int(machine.state), int(machine.item_state), int(machine.operation_mode)]
    holding[10:12] = conv(machine.good_count, _DT.UINT32)
    holding[12:14] = conv(machine.scrap_count, _DT.UINT32)
    holding[20:22] = conv(machine.energy_kwh, _DT.FLOAT32)
    holding[30:31] = conv(max(-32768, min(32767, round(machine.temperature_c * 10))), _DT.INT16)
    inputs = conv(machine.spindle_speed_rpm, _DT.FLOAT32, word_order="little")
    return holding, inputs, [machine.state == MachineState.RUNNING]


class ModbusSimulator:
    """Serves `machines`; machine i is unit id i+1.

    `transport` is "tcp" (host:port), "rtu_over_tcp" (host:port, RTU frames) or "rtu": then the
    simulator lays its own virtual serial line; clients open `serial_port` (a symlink there if one
    was given, else the pty's path).

    Fault hooks for tests:
    - `fail_units` answer every request with exception `fail_code` (default 4, device failure);
    - `silent_units` never answer (a dead device on a bus, or a lost gateway target);
    - `response_delay` delays every answer (seconds);
    - `drop_connections()` closes every client connection now (TCP); `drop_after = n` does it when
      the n-th request from now arrives, leaving that request unanswered;
    - on "rtu", `line.connected = False` unplugs the cable.
    `requests` counts the requests the machines served.
    """

    def __init__(
        self,
        host: str,
        port: int,
        machines: Sequence[SimulatedMachine],
        update_interval: float = 0.5,
        *,
        transport: str = "tcp",
        serial_port: str | None = None,
        baudrate: int = 19200,
        parity: str = "N",
        stopbits: int = 1,
    ) -> None:
        if transport not in ("tcp", "rtu_over_tcp", "rtu"):
            raise ValueError(f"unknown transport {transport!r}")
        self.host, self.port = host, port
        self.machines = list(machines)
        self.update_interval = update_interval
        self.transport = transport
        self.serial_port = serial_port
        self._serial = {"baudrate": baudrate, "parity": parity, "stopbits": stopbits}
        self.line: VirtualSerialLine | None = None
        self.fail_units: set[int] = set()
        self.fail_code: int = int(ExcCodes.DEVICE_FAILURE)
        self.silent_units: set[int] = set()
        self.response_delay: float = 0.0
        self.drop_after: int | None = None
        self.requests = 0
        self._server: ModbusBaseServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._updating = False

    async def start(self) -> None:
        """Listen (port 0 picks a free port, then `port` holds it) and start updating the machines."""
        quiet_pymodbus()
        devices = [self._device(unit) for unit in range(1, len(self.machines) + 1)]
        devices.append(self._device(0))  # id 0 = every other unit id
        server: ModbusBaseServer
        if self.transport == "rtu":
            self.line = VirtualSerialLine(self.serial_port)
            await self.line.open()
            self.serial_port = self.line.client_port
            server = ModbusSerialServer(
                devices,
                port=self.line.device_port,
                framer=FramerType.RTU,
                ignore_missing_devices=True,
                reconnect_delay=0,
                **self._serial,  # type: ignore[arg-type]
            )
        else:
            framer = FramerType.RTU if self.transport == "rtu_over_tcp" else FramerType.SOCKET
            server = ModbusTcpServer(
                devices, address=(self.host, self.port), framer=framer, ignore_missing_devices=True
            )
        self._server = server
        try:
            await server.serve_forever(background=True)
        except BaseException:
            await self.stop()
            raise
        sockets = getattr(server.transport, "sockets", None)  # an asyncio.Server when listening on TCP
        if self.port == 0 and sockets:
            self.port = int(sockets[0].getsockname()[1])
        await self.update(time.time())
        self._task = asyncio.create_task(self._update_loop(), name="modbus-simulator-update")

    async def stop(self) -> None:
        """Stop updating, close every client connection and the listener (and the serial line)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])  # unlike `await task`, never swallows our own cancellation
        server, self._server = self._server, None
        if server is not None:
            server.close()  # closes the listener and every client connection
        line, self.line = self.line, None
        if line is not None:
            line.close()

    def drop_connections(self) -> int:
        """Close every client connection (the listener stays); returns how many were open."""
        if self._server is None:
            return 0
        connections = list(self._server.active_connections.values())
        for connection in connections:
            connection.close()
        return len(connections)

    async def update(self, now: float) -> None:
        """Advance every machine to `now` and write its registers."""
        if self._server is None:
            return
        self._updating = True  # the store calls our action hook for these writes too: let them pass
        try:
            for unit, machine in enumerate(self.machines, 1):
                machine.step(now)
                holding, inputs, coils = machine_registers(machine)
                await self._server.async_setValues(unit, _FC_HOLDING, 0, holding)
                await self._server.async_setValues(unit, _FC_INPUT, 0, inputs)
                await self._server.async_setValues(unit, _FC_COILS, 0, coils)
        finally:
            self._updating = False

    async def read(self, table: str, unit: int, address: int, count: int = 1) -> list[int]:
        """Current values of a table ("holding", "input", "coil", "discrete"), e.g. to check a write."""
        if self._server is None:
            raise RuntimeError("simulator not running")
        return [int(v) for v in await self._server.async_getValues(unit, _READ_FC[table], address, count)]

    async def write(self, table: str, unit: int, address: int, values: Sequence[int]) -> None:
        """Set values of a table directly, bypassing the fault hooks (e.g. to plant a bad string)."""
        if self._server is None:
            raise RuntimeError("simulator not running")
        bits = table in ("coil", "discrete")
        data: list[int] | list[bool] = [bool(v) for v in values] if bits else list(values)
        self._updating = True
        try:
            await self._server.async_setValues(unit, _WRITE_FC[table], address, data)
        finally:
            self._updating = False

    async def _update_loop(self) -> None:
        while True:
            await asyncio.sleep(self.update_interval)
            await self.update(time.time())

    def _device(self, unit: int) -> SimDevice:
        return SimDevice(
            id=unit,
            simdata=(
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                [SimData(0, count=HOLDING_SIZE, values=0, datatype=DataType.REGISTERS)],
                [SimData(0, count=16, values=0, datatype=DataType.REGISTERS)],
            ),
            action=functools.partial(self._action, unit),
        )

    async def _action(
        self,
        unit: int,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if self._updating:
            return None
        self.requests += 1
        if self.drop_after is not None:
            self.drop_after -= 1
            if self.drop_after <= 0:
                self.drop_after = None
                self.drop_connections()
                raise NoSuchIdException("connection dropped")  # with ignore_missing_devices: no answer
        if unit in self.silent_units or (unit == 0 and self.transport == "rtu"):
            raise NoSuchIdException(f"unit {unit} is silent")  # a serial bus has no one to say so
        if unit == 0:
            return ExcCodes.GATEWAY_NO_RESPONSE
        if self.response_delay:
            await asyncio.sleep(self.response_delay)
        return ExcCodes(self.fail_code) if unit in self.fail_units else None


async def _serve(args: argparse.Namespace) -> None:
    names = [n for n in args.machines.split(",") if n]
    machines = [SimulatedMachine(name, seed=args.seed + i) for i, name in enumerate(names)]
    sim = ModbusSimulator(
        args.host,
        args.port,
        machines,
        args.update_interval,
        transport=args.transport,
        serial_port=args.serial_port,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await sim.start()
    where = f"serial port {sim.serial_port}" if args.transport == "rtu" else f"{args.host}:{sim.port}"
    print(f"modbus simulator ({args.transport}) listening on {where}, units 1..{len(machines)}", flush=True)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point: serve machines until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m connectors.modbus.simulator", description=_DESCRIPTION)
    parser.add_argument("--transport", choices=["tcp", "rtu_over_tcp", "rtu"], default="tcp")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5020, help="TCP port; 0 picks a free one")
    parser.add_argument(
        "--serial-port", default=None, help="rtu: path of a symlink to the client end of the virtual line"
    )
    parser.add_argument("--machines", default="press1", help="comma-separated names; the i-th is unit i")
    parser.add_argument("--seed", type=int, default=0, help="machine i gets seed + i")
    parser.add_argument("--update-interval", type=float, default=0.5, help="seconds between machine steps")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
