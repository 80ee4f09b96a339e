"""Modbus TCP servers for the Modbus benchmarks, in a process of their own.

`python -m bench.modbus_server --devices 40 --mute 4`

Starts `--devices` pymodbus servers (one device each, unit 1, all 65,536 holding registers, where
register a holds a & 0xFFFF) and `--mute` listeners that accept TCP connections and read requests
but never answer (a dead gateway). Every port is picked by the OS; the process prints one JSON line
`{"devices": [...], "mute": [...]}` once all listen, and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

REGISTERS = 65536


async def _mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while await reader.read(4096):
            pass  # swallow every request, answer nothing
    finally:
        writer.close()


async def serve(devices: int, mute: int) -> None:
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    values = list(range(REGISTERS))
    servers = []
    ports: list[int] = []
    for _ in range(devices):
        device = SimDevice(id=1, simdata=[SimData(0, count=1, values=values, datatype=DataType.REGISTERS)])
        server = ModbusTcpServer([device], address=("127.0.0.1", 0))
        await server.serve_forever(background=True)
        servers.append(server)
        ports.append(int(server.transport.sockets[0].getsockname()[1]))  # type: ignore[attr-defined]
    listeners = [await asyncio.start_server(_mute, "127.0.0.1", 0) for _ in range(mute)]
    mute_ports = [int(s.sockets[0].getsockname()[1]) for s in listeners]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(json.dumps({"devices": ports, "mute": mute_ports}), flush=True)
    await stop.wait()
    for server in servers:
        server.close()
    for listener in listeners:
        listener.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.modbus_server", description=__doc__)
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--mute", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.devices, args.mute))


if __name__ == "__main__":
    main()
