"""Cross-company publication: the one place where sharing policies are enforced.

Everything the park sees (the park view in the API, `/metrics/park`, park MQTT topics, park
benchmarks) is built by `park_view` from computed results and the companies' `share` policies.
A company shares nothing by default. A policy names KPIs, the finest level published (asset, line,
site or company; coarser levels of the same company are then published too) and the windows.

- Company-scope and finer results appear with only the KPIs their company shares.
- The park aggregate of a KPI sums the elements of the companies that share that KPI for that
  window, then divides (ISO 22400 aggregation, never a mean of ratios); it carries how many
  companies contributed. A company that does not share a KPI never contributes to it.
- Benchmarks per asset type (median, quartiles, best) use asset-level results of companies that
  share the KPI at asset level, and exist only when at least `k` companies contribute; they never
  name a company.
- A suspect result (physically impossible, `orchestrator/kpi/guard.py`) is never published: not
  as a scope, not in a park aggregate (a company with a suspect asset is suspect itself, so it drops
  out of the aggregates of that window), not in a benchmark.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from models.assets import SharePolicy
from orchestrator.kpi.elements import Elements
from orchestrator.kpi.formulas import compute
from orchestrator.kpi.results import Names, ScopedResult

# Scope levels from finest to coarsest; an area sits between line and site.
_RANK = {"asset": 0, "line": 1, "area": 1.5, "site": 2, "company": 3}
# KPIs where lower is better (for "best" in benchmarks).
LOWER_IS_BETTER = frozenset(
    {"setup_rate", "scrap_ratio", "rework_ratio", "mttr", "energy_per_unit", "energy_per_good_unit"}
)


@dataclass(frozen=True, slots=True)
class PublishedKpis:
    """What one scope publishes for one window: only the KPIs its company's policy allows."""

    level: str
    scope: str
    names: Names
    window_kind: str
    window_label: str
    start: float
    end: float
    kpis: dict[str, float | None]
    companies: int = 1  # contributors (park aggregates)


@dataclass(frozen=True, slots=True)
class Benchmark:
    """The spread of one KPI across the assets of one type, over companies that share it."""

    asset_type: str
    kpi: str
    window_kind: str
    window_label: str
    median: float
    q1: float
    q3: float
    best: float
    assets: int
    companies: int


@dataclass(frozen=True)
class ParkView:
    """Everything a park operator may see."""

    scopes: list[PublishedKpis] = field(default_factory=list)
    park: list[PublishedKpis] = field(default_factory=list)
    benchmarks: list[Benchmark] = field(default_factory=list)


def shared_kpis(policies: Sequence[SharePolicy], level: str, window_kind: str) -> frozenset[str] | None:
    """The KPI names a company publishes at `level` for `window_kind`; None means all of them."""
    names: set[str] = set()
    for policy in policies:
        if window_kind not in policy.windows or _RANK.get(level, -1) < _RANK[policy.level]:
            continue
        if policy.kpis == "all":
            return None
        names.update(policy.kpis)
    return frozenset(names)


def shares(result: ScopedResult, share: Mapping[str, Sequence[SharePolicy]]) -> bool:
    """Whether the result's company publishes anything of it (its level and window) to the park."""
    if result.level == "park":
        return False
    allowed = shared_kpis(share.get(result.company, ()), result.level, result.window_kind)
    return allowed is None or bool(allowed)


def _filter(kpis: Mapping[str, float | None], allowed: frozenset[str] | None) -> dict[str, float | None]:
    return dict(kpis) if allowed is None else {k: v for k, v in kpis.items() if k in allowed}


def park_view(
    results: Iterable[ScopedResult],
    share: Mapping[str, Sequence[SharePolicy]],
    asset_types: Mapping[str, str],
    min_companies: int = 3,
) -> ParkView:
    """Apply every company's policy to `results` (any windows, any levels); see the module doc.

    `asset_types` maps an asset scope path to its type (for benchmarks).
    """
    scopes: list[PublishedKpis] = []
    company_elements: dict[tuple[str, str], list[tuple[str, Elements, ScopedResult]]] = defaultdict(list)
    asset_values: dict[tuple[str, str, str, str], list[tuple[str, float]]] = defaultdict(list)
    for r in results:
        if r.level == "park":
            continue  # the park aggregate is rebuilt below from what companies share
        if r.suspect:
            continue  # impossible numbers are the company's to fix, never the park's to see
        policies = share.get(r.company, ())
        allowed = shared_kpis(policies, r.level, r.window_kind)
        kpis = _filter(r.result.kpis(), allowed)
        if not kpis:
            continue
        scopes.append(
            PublishedKpis(r.level, r.scope, r.names, r.window_kind, r.window_label, r.start, r.end, kpis)
        )
        if r.level == "company":
            company_elements[(r.window_kind, r.window_label)].append((r.company, r.result.elements, r))
        if r.level == "asset" and r.scope in asset_types:
            for name, value in kpis.items():
                if value is not None:
                    key = (asset_types[r.scope], name, r.window_kind, r.window_label)
                    asset_values[key].append((r.company, value))
    return ParkView(
        scopes, _park_aggregates(company_elements, share), _benchmarks(asset_values, min_companies)
    )


def _park_aggregates(
    company_elements: Mapping[tuple[str, str], list[tuple[str, Elements, ScopedResult]]],
    share: Mapping[str, Sequence[SharePolicy]],
) -> list[PublishedKpis]:
    out: list[PublishedKpis] = []
    for (kind, label), entries in company_elements.items():
        by_kpi: dict[str, list[Elements]] = defaultdict(list)
        # In company order: a float sum depends on its order, and a hub receives companies in any.
        for company, elements, _ in sorted(entries, key=lambda entry: entry[0]):
            allowed = shared_kpis(share.get(company, ()), "company", kind)
            for name in compute(elements).kpis() if allowed is None else allowed:
                by_kpi[name].append(elements)
        kpis: dict[str, float | None] = {}
        contributors = 0
        for name, parts in by_kpi.items():
            total = parts[0]
            for more in parts[1:]:
                total = total + more
            kpis[name] = getattr(compute(total), name)
            contributors = max(contributors, len(parts))
        first = entries[0][2]
        out.append(
            PublishedKpis(
                "park", "", ("", "", "", "", ""), kind, label, first.start, first.end, kpis, contributors
            )
        )
    return out


def _benchmarks(
    asset_values: Mapping[tuple[str, str, str, str], list[tuple[str, float]]], min_companies: int
) -> list[Benchmark]:
    out: list[Benchmark] = []
    for (asset_type, name, kind, label), values in asset_values.items():
        companies = len({company for company, _ in values})
        if companies < min_companies:
            continue  # too few companies: a benchmark could be traced back to one of them
        numbers = sorted(v for _, v in values)
        q1, median, q3 = _quartiles(numbers)
        best = numbers[0] if name in LOWER_IS_BETTER else numbers[-1]
        out.append(Benchmark(asset_type, name, kind, label, median, q1, q3, best, len(numbers), companies))
    return out


def _quartiles(numbers: list[float]) -> tuple[float, float, float]:
    if len(numbers) == 1:
        return numbers[0], numbers[0], numbers[0]
    q1, median, q3 = statistics.quantiles(numbers, n=4, method="inclusive")
    return q1, median, q3
