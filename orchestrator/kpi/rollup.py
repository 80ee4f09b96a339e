"""Rollups asset → line → (area) → site → company → park: sum the elements, then divide.

Never average ratios (STANDARDS.md §1.5, OEECOACH, FABRICO). Summing the elements makes the
aggregate OEE the PBT-weighted mean of the assets' OEE, availability the PBT-weighted and
effectiveness the APT-weighted mean; MTBF and MTTR roll up as total time over total count.

Assets without counters (`Elements.uncounted`) make the quantity KPIs of every scope above them
None; leave them out of the mapping for an OEE rollup if an availability-only asset should not
block it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, NamedTuple, Protocol, TypeVar

from orchestrator.kpi.elements import EMPTY, Elements
from orchestrator.kpi.formulas import KpiResult, compute

Level = Literal["park", "company", "site", "area", "line", "asset"]
LEVELS: tuple[Level, ...] = ("park", "company", "site", "area", "line", "asset")


class AssetLike(Protocol):
    """Anything with the ISA-95 path of an asset: `models.park.AssetRef`, `AssetPath`."""

    @property
    def company(self) -> str: ...
    @property
    def site(self) -> str: ...
    @property
    def area(self) -> str: ...
    @property
    def line(self) -> str: ...
    @property
    def asset(self) -> str: ...


A = TypeVar("A", bound=AssetLike)


class AssetPath(NamedTuple):
    """An asset's place without the rest of AssetRef (e.g. KPIs received from an edge over MQTT)."""

    company: str
    site: str
    area: str  # "" when the line sits directly under the site
    line: str
    asset: str


class Scope(NamedTuple):
    """One node of the hierarchy: its level and its path ("" for the park; as `AssetRef.path`)."""

    level: Level
    path: str


def scopes_of(asset: AssetLike) -> list[Scope]:
    """The scopes an asset counts in, from the park down to itself (no area scope without area)."""
    parts: list[tuple[Level, str]] = [("company", asset.company), ("site", asset.site)]
    parts += [("area", asset.area), ("line", asset.line), ("asset", asset.asset)]
    out = [Scope("park", "")]
    path: list[str] = []
    for level, name in parts:
        if not name:
            continue
        path.append(name)
        out.append(Scope(level, "/".join(path)))
    return out


def total(items: Iterable[Elements]) -> Elements:
    """The field-wise sum of any number of Elements."""
    out = EMPTY
    for e in items:
        out = out + e
    return out


def rollup(
    items: Mapping[A, Elements] | Iterable[tuple[A, Elements]],
    levels: Iterable[Level] = LEVELS,
) -> dict[Scope, Elements]:
    """Summed elements for every scope at the given levels that has at least one asset.

    `items` are (asset, elements) pairs, or a mapping keyed by something hashable such as
    `AssetPath` (`AssetRef` holds a params dict, so it cannot be a key).
    """
    wanted = frozenset(levels)
    pairs = items.items() if isinstance(items, Mapping) else items
    out: dict[Scope, Elements] = {}
    for asset, elements in pairs:
        for scope in scopes_of(asset):
            if scope.level in wanted:
                previous = out.get(scope)
                out[scope] = elements if previous is None else previous + elements
    return out


def rollup_results(
    items: Mapping[A, Elements] | Iterable[tuple[A, Elements]],
    levels: Iterable[Level] = LEVELS,
) -> dict[Scope, KpiResult]:
    """KPIs for every scope, each computed from that scope's summed elements."""
    return {scope: compute(elements) for scope, elements in rollup(items, levels).items()}
