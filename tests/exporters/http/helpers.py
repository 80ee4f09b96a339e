"""A small park of four companies with different share policies, seeded with values, health and KPIs.

- acme shares oee, availability, effectiveness, quality at asset level (all windows);
- bolt shares every KPI at line level (its assets never reach the park);
- corex shares only OEE at asset level;
- dune shares nothing.
Every company's `temperature` holds a canary value: finding one outside its company is a leak.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine

from connectors.base import BoundSignal, ConnectorKind, LinkHealth
from models.sample import Sample
from models.status import BAD_NOT_WRITABLE, GOOD
from models.store import create_tables
from orchestrator.config import load_config
from orchestrator.kpi.elements import Elements
from orchestrator.kpi.results import ScopedResult, scoped_results
from orchestrator.kpi.service import save_results
from orchestrator.kpi.windows import Window, calendar_window
from orchestrator.runtime import Runtime
from orchestrator.sharing import park_view
from tests.fakes import FakeBinding, FakeConnection, FakeConnector

COMPANIES = ("acme", "bolt", "corex", "dune")
CANARY = {"acme": 111111.5, "bolt": 222222.5, "corex": 333333.5, "dune": 444444.5}
ERROR_CANARY = "canary-error-10.9.9.9"  # dune's connection error text: the park must never see it
SHARE = {
    "acme": "[{kpis: [oee, availability, effectiveness, quality], level: asset, windows: ALL}]",
    "bolt": "[{kpis: all, level: line, windows: ALL}]",
    "corex": "[{kpis: [oee], level: asset, windows: ALL}]",
    "dune": "[]",
}
KEY4 = frozenset({"oee", "availability", "effectiveness", "quality"})
# (apt seconds of 3600, produced, good) per company for an hour; distinct so values are distinct
PERFORMANCE = {"acme": (3000, 2700, 2600), "bolt": (2500, 2300, 2000), "corex": (2000, 1900, 1500)}
PERFORMANCE["dune"] = (1500, 1200, 900)

HEAD = """\
park: {id: riverside, name: Riverside Test Park}
kpi: {windows: [rolling_hour, hour, shift, day], benchmark_min_companies: MIN}
asset_types:
  press:
    ideal_cycle_time: 1.0
    signals:
      state: {role: state, binding: {address: s}}
      good_count: {role: good_count, binding: {address: g}}
      temperature: {unit: °C, binding: {address: t}}
      setpoint: {binding: {address: sp, writable: true}}
companies:
"""


def config_text(min_companies: int = 2) -> str:
    """The park's YAML."""
    out = HEAD.replace("MIN", str(min_companies))
    for company in COMPANIES:
        assets = ", ".join(f"{{id: {company}-m{i}, type: press, connection: plc}}" for i in (1, 2))
        lines = f"[{{id: l1, assets: [{assets}]}}]"
        site = (
            f"{{id: north, areas: [{{id: hall, lines: {lines}}}]}}"
            if company == "acme"
            else (f"{{id: main, lines: {lines}}}")
        )
        share = SHARE[company].replace("ALL", "[rolling_hour, hour, shift, day]")
        out += (
            f"  - {{id: {company}, name: {company.title()} Co, share: {share},\n"
            f"     connections: {{plc: {{kind: fake, interval: 0.2}}}}, sites: [{site}]}}\n"
        )
    return out


class WritingFakeConnector(FakeConnector):
    """The fake connector with the optional write ability; records what it was asked to write."""

    def __init__(self, conn: FakeConnection, signals: Sequence[BoundSignal], health: LinkHealth) -> None:
        super().__init__(conn, signals, health)
        self.writes: list[tuple[str, object]] = []

    async def write(self, signal: BoundSignal, value: object) -> int:
        if not signal.writable:
            return BAD_NOT_WRITABLE
        self.writes.append((signal.path, value))
        return GOOD


def _binding(raw: dict[str, object], _data_type: object) -> FakeBinding:
    return FakeBinding.model_validate(raw)


KIND = ConnectorKind("fake", FakeConnection, _binding, WritingFakeConnector)


def elements(company: str, scale: float = 1.0, seconds: float = 3600.0) -> Elements:
    """One asset's elements over a window of `seconds`, PRU 1 s."""
    apt, pq, gq = (v * scale * seconds / 3600 for v in PERFORMANCE[company])
    apt = min(apt, seconds)
    return Elements(apt=apt, adet=seconds - apt, pq=pq, gq=gq, sq=pq - gq, ideal_time=pq, ideal_good_time=gq)


def results_for(runtime: Runtime, kind: str, window: Window, scale: float = 1.0) -> list[ScopedResult]:
    """Every scope's results for one window."""
    pairs = [(a, elements(a.company, scale, window.end - window.start)) for a in runtime.park.assets]
    return scoped_results(pairs, kind, window)


def build_runtime(tmp_path: Path, min_companies: int = 2) -> Runtime:
    """The runtime of the test park (not started: no connectors run)."""
    path = tmp_path / "park.yaml"
    path.write_text(config_text(min_companies))
    kinds = {"fake": KIND}
    return Runtime(load_config(path, kinds), kinds)


def store_closed(db: Engine, results: Sequence[ScopedResult]) -> None:
    """Closed results stored exactly as the KPI service stores them."""
    save_results(db, results)


def seed(runtime: Runtime, db: Engine, now: float | None = None, hours: int = 24) -> None:
    """Values, health, current KPIs and a day of closed hour windows in `db`."""
    now = time.time() if now is None else now
    create_tables(db)
    runtime.engine = db
    runtime.kpi.db = db
    samples = []
    for s in runtime.park.signals:
        value = {"state": 3.0, "good_count": 100.0, "temperature": CANARY[s.asset.company], "setpoint": 5.0}
        samples.append(Sample(s.index, value[s.name], GOOD, now - 1, now - 1))
    runtime.snapshot.push(samples)
    for link in runtime.links:
        if link.ref.company == "dune":
            link.health.mark_down(ERROR_CANARY)
        else:
            link.health.mark_up()
            link.health.samples = 1234
    current = results_for(runtime, "rolling_hour", Window("rolling:1h", now - 3600, now, kind="rolling"))
    this_hour = calendar_window("hour", now, "UTC")
    current += results_for(runtime, "hour", Window(this_hour.name, this_hour.start, now, kind="hour"))
    closed: list[ScopedResult] = []
    for h in range(1, hours + 1):
        w = calendar_window("hour", this_hour.start - h * 3600, "UTC")
        closed += results_for(runtime, "hour", w, scale=0.85 + 0.15 * math.sin(h / 3))
    store_closed(db, closed)
    service = runtime.kpi
    service.current = current
    service.view = park_view(
        current, runtime.park.share, service.asset_types, runtime.park.kpi.benchmark_min_companies
    )


def allowed_kpis(company: str, level: str) -> frozenset[str]:
    """What the park may see of `company` at `level` (hard-coded from the policies above)."""
    if company == "acme":
        return KEY4
    if company == "bolt":
        return frozenset() if level == "asset" else frozenset({"*"})
    if company == "corex":
        return frozenset({"oee"})
    return frozenset()
