"""Serving a registry over HTTP (prometheus_client's WSGI server in its own thread)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server


@dataclass
class MetricsServer:
    """A running /metrics endpoint; `stop()` closes the socket."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve `registry` on host:port (port 0 picks a free one). Loopback is the safe default."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, thread)
