"""`serve`: uvicorn inside the running loop on a real port, a clean stop, a port in use."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from exporters.http import serve
from tests.conftest import free_port
from tests.exporters.http.conftest import Park, bearer


async def test_serve_answers_and_stops_cleanly(sqlite_park: Park) -> None:
    server = await serve(sqlite_park.runtime, "127.0.0.1", 0)
    try:
        assert server.port > 0
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            me = await client.get("/api/v1/me", headers=bearer(sqlite_park.tokens["park"]))
            assert me.status_code == 200 and me.json()["role"] == "park"
            assert "server" not in me.headers  # no version banner
            with pytest.raises(OSError):
                await serve(sqlite_park.runtime, "127.0.0.1", server.port)  # in use: an error, loop intact
    finally:
        started = time.monotonic()
        await server.stop()
        assert time.monotonic() - started < 5
    assert server.task.done()
    port = free_port()
    again = await serve(sqlite_park.runtime, "127.0.0.1", port)  # the port is free again
    await again.stop()
    await asyncio.sleep(0)
