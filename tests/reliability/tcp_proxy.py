"""A loopback TCP proxy that makes a healthy server slow or hung, for the device fault tests.

Client → server bytes pass at once. Server → client bytes are delivered `delay` seconds after they
arrive, in order; with `hold` set they are dropped instead (a server that accepts connections and
reads requests but never answers). Both may change at any time.
"""

from __future__ import annotations

import asyncio
import contextlib


class DelayProxy:
    """Listens on 127.0.0.1 and forwards each connection to 127.0.0.1:`target_port`."""

    def __init__(self, target_port: int, delay: float = 0.0, port: int = 0) -> None:
        self.target_port = target_port
        self.delay = delay
        self.hold = False
        self.port = port  # 0: a free one, known after start()
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and cut every connection (both sides)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()  # the pumps see the end and each connection's task finishes
        if self._tasks:
            _, late = await asyncio.wait(list(self._tasks), timeout=2)
            for task in late:
                task.cancel()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        self._writers.add(client_writer)
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.transport.abort()
            self._writers.discard(client_writer)
            self._tasks.discard(task)
            return
        self._writers.add(server_writer)
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        pumps = [
            asyncio.create_task(self._pump(client_reader, server_writer)),
            asyncio.create_task(self._delayed_read(server_reader, queue)),
            asyncio.create_task(self._delayed_write(queue, client_writer)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for writer in (client_writer, server_writer):
                writer.transport.abort()
                self._writers.discard(writer)
            self._tasks.discard(task)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()

    async def _delayed_read(
        self, reader: asyncio.StreamReader, queue: asyncio.Queue[tuple[float, bytes]]
    ) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if not self.hold:
                    queue.put_nowait((loop.time() + self.delay, data))

    @staticmethod
    async def _delayed_write(queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ConnectionError):
            while True:
                at, data = await queue.get()
                await asyncio.sleep(max(0.0, at - loop.time()))
                writer.write(data)
                await writer.drain()
