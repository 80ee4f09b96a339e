"""An asyncua server with N Double variables that change as fast as the server manages (≤ every 100 ms).

Run as a separate process so that the server's CPU does not mix with the measured client's:
`python -m bench.opcua_server --port P --nodes 10000`. Prints READY when it serves.
Node ids: ns=2;s=Bench.T00000 … under folders of 100 (asyncua adding is O(N²) per folder).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import time
from datetime import UTC, datetime
from typing import Any

from asyncua import ua
from asyncua.server.server import Server


async def serve(port: int, nodes: int, period: float) -> None:
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/bench/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace("urn:parklink:bench")

    def node_id(name: str) -> ua.NodeId:
        return ua.NodeId.from_string(f"ns={idx};s={name}")

    root = await server.nodes.objects.add_folder(node_id("Bench"), "Bench")
    variables = []
    for start in range(0, nodes, 100):
        folder = await root.add_folder(node_id(f"Bench.F{start // 100:04d}"), f"F{start // 100:04d}")
        for i in range(start, min(start + 100, nodes)):
            variables.append(await folder.add_variable(node_id(f"Bench.T{i:05d}"), f"T{i:05d}", 0.0))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        print("READY", flush=True)
        value = 0.0
        while not stop.is_set():
            started = time.monotonic()
            value += 1.0
            now = datetime.now(UTC)
            new: Any = ua.DataValue  # asyncua's stubs want its DateTime alias for datetimes
            dv = new(ua.Variant(value, ua.VariantType.Double), SourceTimestamp=now, ServerTimestamp=now)
            for n, var in enumerate(variables):
                await server.write_attribute_value(var.nodeid, dv)
                if n % 200 == 199:
                    await asyncio.sleep(0)  # let the server answer publish requests mid-round
            await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--period", type=float, default=0.1)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.nodes, args.period))


if __name__ == "__main__":
    main()
