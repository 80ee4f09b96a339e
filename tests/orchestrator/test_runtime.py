"""The runtime end to end with a fake connector: metrics served, crash isolation, clean stop."""

from __future__ import annotations

import asyncio
import textwrap
import time
import urllib.request
from pathlib import Path

from orchestrator.config import load_config
from orchestrator.runtime import Runtime
from tests.conftest import free_port
from tests.exporters.test_prometheus import key, series
from tests.fakes import FAKE_KIND

CONFIG = """\
park: {id: p}
database: {url: "sqlite:///DB"}
asset_types:
  m: {signals: {good_count: {role: good_count, binding: {address: a}}}}
companies:
  - id: acme
    connections: {ok: {kind: fake}, broken: {kind: fake, fail: true}}
    sites:
      - id: s
        lines:
          - id: l
            assets:
              - {id: a1, type: m, connection: ok}
              - {id: a2, type: m, connection: broken}
"""


async def fetch(url: str) -> str:
    def get() -> str:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    return await asyncio.to_thread(get)


async def test_runtime_serves_metrics_isolates_crashes_and_stops(tmp_path: Path) -> None:
    path = tmp_path / "park.yaml"
    path.write_text(textwrap.dedent(CONFIG).replace("DB", str(tmp_path / "p.db")))
    runtime = Runtime(
        load_config(path, {"fake": FAKE_KIND}),
        {"fake": FAKE_KIND},
        metrics_port=free_port(),
        http_port=free_port(),
    )
    await runtime.start()
    try:
        await asyncio.sleep(0.5)
        assert runtime.metrics is not None
        text = await fetch(f"http://127.0.0.1:{runtime.metrics.port}/metrics")
        got = series(text)
        assert got[key("parklink_connection_up", company="acme", connection="ok", kind="fake")] == 1.0
        assert got[key("parklink_connection_up", company="acme", connection="broken", kind="fake")] == 0.0
        assert key("parklink_good_count", company="acme", site="s", line="l", asset="a1") in got
        ok, broken = runtime.links
        assert ok.health.samples >= 5
        assert broken.health.read_errors >= 1
        first = runtime.snapshot.latest[0]
        await asyncio.sleep(0.2)
        later = runtime.snapshot.latest[0]
        assert first is not None and later is not None and later.value > first.value  # type: ignore[operator]
    finally:
        started = time.monotonic()
        await runtime.stop()
        assert time.monotonic() - started < 5
    assert all(link.connector.closed for link in runtime.links)  # type: ignore[attr-defined]
