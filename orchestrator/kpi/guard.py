"""The guard before anything is shared: physically impossible results are flagged `suspect`.

Effectiveness above 1 means the PRU is too generous (STANDARDS.md §1.5 pitfall 2), so it is never
clamped; far above 1 (`kpi.max_effectiveness`, 1.5 by default) it means a counter or mapping error
(a register reset read as a wrap, another machine's counter, a PRU in ms taken for s). A part
above its whole (OEE, availability, quality above 1: more ideal time than planned time, more good
units than units) and a negative element are impossible whatever the PRU.

A suspect result is kept, stored, exported and shown flagged, so its own company sees it and fixes
the cause; it never reaches the park view nor a benchmark (`orchestrator.sharing.park_view`), and
the edge feed does not send it. A rollup sums its assets' elements, so a scope holding a suspect
asset is suspect too, even when its sums look plausible: one wrong machine in a line of ten still
skews the line.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from models.assets import KpiSettings
from orchestrator.kpi.elements import FIELDS, field_values
from orchestrator.kpi.formulas import KpiResult
from orchestrator.kpi.rollup import AssetPath, scopes_of

if TYPE_CHECKING:
    from orchestrator.kpi.results import ScopedResult

TOLERANCE = 1e-9  # float noise of sums and quotients, never a reason
DEFAULT_MAX_EFFECTIVENESS: float = KpiSettings.model_fields["max_effectiveness"].default
AT_MOST_ONE = ("availability", "quality", "quality_weighted", "oee", "scrap_ratio", "rework_ratio")
"""KPIs that are a part over its whole: above 1 only when the inputs are wrong."""
MAX_NAMED = 10  # suspect assets named in a rollup's reasons; the rest are counted


def _shown(value: float, bound: float) -> str:
    """The shortest rounding (2 decimals or more) that still shows `value` above `bound`."""
    for digits in range(2, 10):
        text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
        if float(text) > bound:
            return text
    return repr(value)


def suspect_reasons(
    result: KpiResult, max_effectiveness: float = DEFAULT_MAX_EFFECTIVENESS
) -> tuple[str, ...]:
    """Why `result` cannot be true, e.g. ("effectiveness 4.25 > 1.5", "oee 2.83 > 1"); () if plausible."""
    reasons: list[str] = []
    effectiveness = result.effectiveness
    if effectiveness is not None and effectiveness > max_effectiveness + TOLERANCE:
        reasons.append(f"effectiveness {_shown(effectiveness, max_effectiveness)} > {max_effectiveness:g}")
    for name in AT_MOST_ONE:
        value = getattr(result, name)
        if value is not None and value > 1 + TOLERANCE:
            reasons.append(f"{name} {_shown(value, 1.0)} > 1")
    values: tuple[float, ...] = field_values(result.elements)  # every field, new ones included
    if min(values) < -TOLERANCE or not math.isfinite(sum(values)):  # else: the common case, done
        for name, value in zip(FIELDS, values, strict=True):
            if not math.isfinite(value):
                reasons.append(f"non-finite element {name} = {value}")
            elif value < -TOLERANCE:
                reasons.append(f"negative element {name} = {value:g}")
    return tuple(reasons)


def _merged(first: Sequence[str], more: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*first, *more]))


def flag(
    results: Iterable[ScopedResult], max_effectiveness: float = DEFAULT_MAX_EFFECTIVENESS
) -> list[ScopedResult]:
    """`results` with their `suspect` reasons: each one's own check, then for a rollup scope
    "contains suspect asset <path>" for every suspect asset of the same window among `results`.

    Reasons a result already carries (stored ones) are kept, so flagging twice changes nothing.
    """
    items = list(results)
    own = [_merged(r.suspect, suspect_reasons(r.result, max_effectiveness)) for r in items]
    holders: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    for r, reasons in zip(items, own, strict=True):
        if r.level == "asset" and reasons:
            for scope in scopes_of(AssetPath(*r.names))[:-1]:
                holders[(r.window_kind, r.window_label, scope.level, scope.path)].add(r.scope)
    out: list[ScopedResult] = []
    for r, reasons in zip(items, own, strict=True):
        assets = sorted(holders.get((r.window_kind, r.window_label, r.level, r.scope), ()))
        contained = [f"contains suspect asset {path}" for path in assets[:MAX_NAMED]]
        if len(assets) > MAX_NAMED:
            contained.append(f"and {len(assets) - MAX_NAMED} more suspect assets")
        suspect = _merged(reasons, contained)
        out.append(r if suspect == r.suspect else replace(r, suspect=suspect))
    return out


class SuspectLog:
    """One WARNING per asset when it becomes suspect, not one per update or per window.

    An asset is logged again only after an update in which none of its windows was suspect.
    """

    def __init__(self, logger: logging.Logger, where: str = "") -> None:
        self._log, self._where = logger, where
        self._logged: set[str] = set()

    def update(self, results: Iterable[ScopedResult], *, forget: bool = True) -> None:
        """Log the assets newly suspect in `results`; with `forget` (results of every current
        window), assets not suspect in any of them count as clean again."""
        now: dict[str, ScopedResult] = {}
        for r in results:
            if r.level == "asset" and r.suspect:
                now.setdefault(r.scope, r)
        for path, r in now.items():
            if path not in self._logged:
                self._logged.add(path)
                self._log.warning(
                    "%sKPI result of %s is suspect in %s (%s): stored and shown flagged, never shared",
                    self._where,
                    path,
                    r.window_label,
                    "; ".join(r.suspect),
                )
        if forget:
            self._logged &= now.keys()

    @property
    def logged(self) -> frozenset[str]:
        """The asset paths logged as suspect and not clean since."""
        return frozenset(self._logged)
