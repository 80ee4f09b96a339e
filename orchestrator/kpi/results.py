"""KPI results placed in the hierarchy and in time: what jobs compute and exporters read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from models.park import AssetRef
from orchestrator.kpi.elements import Elements
from orchestrator.kpi.formulas import KpiResult, compute
from orchestrator.kpi.guard import DEFAULT_MAX_EFFECTIVENESS, flag
from orchestrator.kpi.rollup import Level, rollup, scopes_of
from orchestrator.kpi.windows import Window

# company, site, area, line, asset of a scope ("" where the scope is above that level)
Names = tuple[str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class ScopedResult:
    """The KPIs of one scope (asset … park) over one window.

    `suspect` says why the result is physically impossible (orchestrator/kpi/guard.py), () when it
    is plausible: a suspect result is stored and shown flagged, and never shared.
    """

    level: Level
    scope: str  # "" for the park, else "company/site[/area]/line/asset" down to the level
    names: Names
    window_kind: str  # rolling_hour, hour, day, shift
    window_label: str  # e.g. "day:2026-11-22", "shift:early:2026-11-22", "rolling:3600s"
    start: float
    end: float
    result: KpiResult
    suspect: tuple[str, ...] = ()

    @property
    def company(self) -> str:
        return self.names[0]


def _names(asset: AssetRef, level: Level) -> Names:
    depth = {"park": 0, "company": 1, "site": 2, "area": 3, "line": 4, "asset": 5}[level]
    parts = (asset.company, asset.site, asset.area, asset.line, asset.asset)
    return tuple(p if i < depth else "" for i, p in enumerate(parts))  # type: ignore[return-value]


def scoped_results(
    per_asset: Iterable[tuple[AssetRef, Elements]],
    kind: str,
    window: Window,
    max_effectiveness: float = DEFAULT_MAX_EFFECTIVENESS,
) -> list[ScopedResult]:
    """Roll one window's per-asset elements up every level (sum, then divide) into results,
    flagged by the guard (`kpi.max_effectiveness`: pass the park's own setting)."""
    pairs = list(per_asset)
    sample_asset: dict[tuple[str, str], AssetRef] = {}
    for asset, _ in pairs:
        for level, path in _paths(asset):
            sample_asset.setdefault((level, path), asset)
    out: list[ScopedResult] = []
    for scope, elements in rollup(pairs).items():
        asset = sample_asset[(scope.level, scope.path)]
        out.append(
            ScopedResult(
                scope.level,
                scope.path,
                _names(asset, scope.level),
                kind,
                window.name,
                window.start,
                window.end,
                compute(elements),
            )
        )
    return flag(out, max_effectiveness)


def _paths(asset: AssetRef) -> list[tuple[str, str]]:
    return [(s.level, s.path) for s in scopes_of(asset)]
