"""Serving the app inside the runtime's asyncio loop: uvicorn's `Server.serve()` as a task.

The runtime owns SIGINT/SIGTERM (`Runtime.run_until_stopped`); uvicorn would otherwise install its
own handlers while serving and re-raise the signal after shutdown, after the runtime has already
removed its handlers, turning a clean stop into a KeyboardInterrupt. The socket is bound here, not
by uvicorn: uvicorn answers a bind error with `sys.exit`, and a SystemExit escaping a task stops
the whole event loop, connectors included; a plain OSError to the caller is what a port in use is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import uvicorn

from exporters.http.app import create_app
from exporters.http.context import Context
from exporters.http.settings import HttpSettings

if TYPE_CHECKING:
    from exporters.http.context import Served

log = logging.getLogger("parklink.http")
STOP_SECONDS = 5.0


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # see module doc: signals are the runtime's


@dataclass
class HttpServer:
    """A running app; `await stop()` closes it."""

    server: uvicorn.Server
    task: asyncio.Task[None]
    context: Context

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        sockets = self.server.servers[0].sockets if self.server.servers else []
        return int(sockets[0].getsockname()[1]) if sockets else 0

    def refresh(self) -> None:
        """Re-read the served park (a hub's park changes when an edge announces a new model)."""
        self.context.refresh()

    async def stop(self) -> None:
        """Stop accepting, let open requests finish (bounded), then end the task."""
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), STOP_SECONDS)
        except TimeoutError:
            self.server.force_exit = True
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


def _bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on host:port; raises OSError (port in use, unknown host)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


async def _run(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit:  # uvicorn's answer to a startup failure must not end the runtime's loop
        log.error("HTTP server failed to start")


async def serve(
    runtime: Served, host: str | None = None, port: int | None = None, settings: HttpSettings | None = None
) -> HttpServer:
    """Start the API and dashboard on host:port (default: the settings', 127.0.0.1:8080) in this loop."""
    settings = settings or HttpSettings()
    changes = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = settings.model_copy(update=changes) if changes else settings
    app = create_app(runtime, settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,  # one line per request is noise at scrape rates; writes are audited instead
        lifespan="off",
        timeout_graceful_shutdown=int(STOP_SECONDS) - 1,
        server_header=False,
    )
    sock = _bind(settings.host, settings.port)
    server = _Server(config)
    task = asyncio.create_task(_run(server, sock), name="http")
    while not server.started:
        if task.done():
            sock.close()
            raise OSError(f"HTTP server did not start on {settings.host}:{settings.port}")
        await asyncio.sleep(0.02)
    running = HttpServer(server, task, app.state.parklink)
    log.info("API and dashboard on http://%s:%d/dashboard", settings.host, running.port)
    return running
