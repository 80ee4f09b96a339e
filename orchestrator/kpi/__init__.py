"""The KPI engine: ISO 22400-2 time elements and KPIs, pure computation (no I/O, no clock).

    engine = KpiEngine(park, state_map=DEMO_MACHINE_STATE)
    engine.feed(batch)                                   # O(1) per sample, from Snapshot listeners
    shift = ShiftCalendar("Europe/Berlin", [ShiftSpec("early", "06:00", "14:00")]).current(now)
    per_asset = [(a, engine.window_elements(a, shift, now)) for a in engine.assets]
    kpis = rollup_results(per_asset)                     # asset → line → site → company → park

See README.md in this folder for the model, the formulas with their sources and the pitfalls handled.
"""

from orchestrator.kpi.counters import CounterTracker, Cumulative
from orchestrator.kpi.elements import EMPTY, UP_ELEMENTS, Elements, TimeElement
from orchestrator.kpi.engine import KpiEngine
from orchestrator.kpi.formulas import KpiResult, compute, ratio
from orchestrator.kpi.rollup import (
    LEVELS,
    AssetLike,
    AssetPath,
    Level,
    Scope,
    rollup,
    rollup_results,
    scopes_of,
    total,
)
from orchestrator.kpi.state_maps import DEMO_MACHINE_STATE, MACHINE_TOOL, MACHINERY, READY_MAPS, StateMap
from orchestrator.kpi.timeline import FailureStats, StateTimeline
from orchestrator.kpi.windows import (
    ShiftCalendar,
    ShiftSpec,
    Window,
    calendar_window,
    calendar_windows,
    overlay_breaks,
    rolling,
)

__all__ = [
    "DEMO_MACHINE_STATE",
    "EMPTY",
    "LEVELS",
    "MACHINERY",
    "MACHINE_TOOL",
    "READY_MAPS",
    "UP_ELEMENTS",
    "AssetLike",
    "AssetPath",
    "CounterTracker",
    "Cumulative",
    "Elements",
    "FailureStats",
    "KpiEngine",
    "KpiResult",
    "Level",
    "Scope",
    "ShiftCalendar",
    "ShiftSpec",
    "StateMap",
    "StateTimeline",
    "TimeElement",
    "Window",
    "calendar_window",
    "calendar_windows",
    "compute",
    "overlay_breaks",
    "ratio",
    "rolling",
    "rollup",
    "rollup_results",
    "scopes_of",
    "total",
]
