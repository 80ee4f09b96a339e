"""KPIs as Prometheus metrics: ISO 22400 elements as counters, KPIs as gauges per window and scope.

Elements are exposed as counters per asset (`parklink_kpi_production_seconds_total`, …) so that
PromQL aggregates them the ISO way, summing elements then dividing, never averaging ratios:
`sum(rate(…ideal_good_seconds_total)) / sum(rate(…planned_busy_seconds_total))` is OEE.
KPI gauges (`parklink_kpi_oee_ratio`, …) carry `level`, the hierarchy names and `window`;
`parklink_kpi_suspect` (same labels) is 1 where the guard found the result physically impossible
(orchestrator/kpi/guard.py), else 0. The park view has none: it never publishes a suspect result.

Three views, one collector: `full` (a park administrator's: every company's own results, and
park-level figures only as sharing policies publish them), `park` (only what the park view
publishes, plus benchmarks) and `company` (one company's own results).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.kpi.service import KpiService, KpiSource

PREFIX = "parklink_kpi"
SCOPE_LABELS = ["level", "company", "site", "area", "line", "asset", "window", "shift"]
ASSET_LABELS = ["company", "site", "line", "asset"]

# KPI → (metric name, factor to base units)
KPI_METRICS: dict[str, tuple[str, float]] = {
    "availability": ("availability_ratio", 1.0),
    "effectiveness": ("effectiveness_ratio", 1.0),
    "quality": ("quality_ratio", 1.0),
    "quality_weighted": ("quality_weighted_ratio", 1.0),
    "oee": ("oee_ratio", 1.0),
    "nee": ("nee_ratio", 1.0),
    "technical_efficiency": ("technical_efficiency_ratio", 1.0),
    "utilization_efficiency": ("utilization_efficiency_ratio", 1.0),
    "allocation_efficiency": ("allocation_efficiency_ratio", 1.0),
    "setup_rate": ("setup_rate_ratio", 1.0),
    "scrap_ratio": ("scrap_ratio", 1.0),
    "rework_ratio": ("rework_ratio", 1.0),
    "throughput_per_hour": ("throughput_units_per_second", 1 / 3600),
    "mtbf": ("mtbf_seconds", 1.0),
    "mttr": ("mttr_seconds", 1.0),
    "energy_per_unit": ("energy_per_unit_joules", 3.6e6),
    "energy_per_good_unit": ("energy_per_good_unit_joules", 3.6e6),
    "coverage": ("coverage_ratio", 1.0),
}

# Elements field → (counter name, help)
ELEMENT_COUNTERS: dict[str, tuple[str, str]] = {
    "apt": ("production_seconds", "Actual production time APT"),
    "aust": ("setup_seconds", "Actual setup time AUST"),
    "adet": ("delay_seconds", "Delay / unplanned stop during an order ADET"),
    "adot": ("no_order_seconds", "Down time without an order ADOT"),
    "pdot": ("planned_down_seconds", "Planned down time PDOT"),
    "unknown": ("unknown_seconds", "Time without valid data (not counted in PBT)"),
    "pbt": ("planned_busy_seconds", "Planned busy time PBT = APT + AUST + ADET + ADOT (OEE denominator)"),
    "pq": ("produced_units", "Produced quantity PQ"),
    "gq": ("good_units", "Good quantity GQ"),
    "unattributed_pq": (
        "unattributed_units",
        "Units counted across UNKNOWN time (communication loss): not in PQ, never set against observed time",
    ),
    "sq": ("scrap_units", "Scrap quantity SQ"),
    "rq": ("rework_units", "Rework quantity RQ"),
    "ideal_time": ("ideal_seconds", "Ideal time of produced units, sum of PRU·PQ"),
    "ideal_good_time": ("ideal_good_seconds", "Ideal time of good units, sum of PRU·GQ (OEE numerator)"),
    "failures": ("failures", "Failures (entries into delay from production or setup)"),
}

View = Literal["full", "park", "company"]


@dataclass(frozen=True)
class _Row:
    level: str
    names: tuple[str, str, str, str, str]
    window: str
    shift: str  # the shift's name for shift windows, else "": sites in different shifts stay apart
    kpis: dict[str, float | None]
    suspect: bool = False


def shift_name(window_label: str) -> str:
    """'early' of 'shift:early:2026-03-02'; '' for other windows (bounded: the configured names)."""
    kind, _, rest = window_label.partition(":")
    return rest.rpartition(":")[0] if kind == "shift" else ""


class KpiCollector(Collector):
    """The KPI metrics of one view of a park (see module doc)."""

    def __init__(self, service: KpiSource, view: View = "full", company: str | None = None) -> None:
        if (view == "company") != (company is not None):
            raise ValueError("a company view needs the company, and only it")
        self._service, self._view, self._company = service, view, company

    def describe(self) -> Iterable[Metric]:
        return []

    def _rows(self) -> Iterator[_Row]:
        service = self._service
        if self._view == "park":
            published = [*service.view.scopes, *service.view.park]
            yield from (
                _Row(p.level, p.names, p.window_kind, shift_name(p.window_label), p.kpis) for p in published
            )
            return
        for r in service.current:
            if r.level == "park" or (self._company is not None and r.company != self._company):
                continue
            shift = shift_name(r.window_label)
            yield _Row(r.level, r.names, r.window_kind, shift, r.result.kpis(), bool(r.suspect))
        if self._view == "full":
            yield from (
                _Row(p.level, p.names, p.window_kind, shift_name(p.window_label), p.kpis)
                for p in service.view.park
            )

    def collect(self) -> Iterable[Metric]:
        gauges = {
            kpi: GaugeMetricFamily(
                f"{PREFIX}_{name}", f"ISO 22400 {kpi} per scope and window", labels=SCOPE_LABELS
            )
            for kpi, (name, _) in KPI_METRICS.items()
        }
        suspect = GaugeMetricFamily(
            f"{PREFIX}_suspect",
            "1 if the result is physically impossible (never shared; reasons in the API), else 0",
            labels=SCOPE_LABELS,
        )
        for row in self._rows():
            labels = [row.level, *row.names, row.window, row.shift]
            for kpi, value in row.kpis.items():
                if value is not None and kpi in gauges:
                    gauges[kpi].add_metric(labels, value * KPI_METRICS[kpi][1])
            suspect.add_metric(labels, 1.0 if row.suspect else 0.0)
        yield from gauges.values()
        if self._view != "park":
            yield suspect
        if self._view == "park":
            yield from self._benchmarks()
        else:
            yield from self._counters()
        if self._view == "full":
            cost = CounterMetricFamily(
                f"{PREFIX}_job_seconds", "Wall time spent in KPI jobs on the event loop"
            )
            cost.add_metric([], self._service.job_seconds)
            yield cost
            if isinstance(self._service, KpiService):
                yield from self._database(self._service)

    @staticmethod
    def _database(service: KpiService) -> Iterable[Metric]:
        pending = GaugeMetricFamily(
            f"{PREFIX}_results_pending", "Closed KPI results waiting in memory for the database"
        )
        pending.add_metric([], float(service.results_pending))
        errors = CounterMetricFamily(
            f"{PREFIX}_db_errors", "Failed database writes of the KPI jobs (results, state, retention)"
        )
        errors.add_metric([], float(service.db_errors))
        yield from (pending, errors)

    def _counters(self) -> Iterable[Metric]:
        families = {
            field: CounterMetricFamily(
                f"{PREFIX}_{name}", f"{text}, since parklink started", labels=ASSET_LABELS
            )
            for field, (name, text) in ELEMENT_COUNTERS.items()
        }
        energy = CounterMetricFamily(
            f"{PREFIX}_energy_joules", "Energy used, since parklink started", labels=ASSET_LABELS
        )
        refs = {a.path: a for a in self._service.park.assets}
        for path, elements in self._service.cumulative.items():
            asset = refs[path]
            if self._company is not None and asset.company != self._company:
                continue
            labels = [asset.company, asset.site, asset.line, asset.asset]
            for field, family in families.items():
                family.add_metric(labels, float(getattr(elements, field)))
            energy.add_metric(labels, elements.energy * 3.6e6)  # the engine keeps kWh
        yield from families.values()
        yield energy

    def _benchmarks(self) -> Iterable[Metric]:
        labels = ["asset_type", "kpi", "window", "shift", "stat"]
        family = GaugeMetricFamily(
            "parklink_park_benchmark",
            "Spread of a KPI across assets of one type (≥ k companies)",
            labels=labels,
        )
        companies = GaugeMetricFamily(
            "parklink_park_benchmark_companies", "Companies contributing to a benchmark", labels=labels[:4]
        )
        for b in self._service.view.benchmarks:
            factor = KPI_METRICS.get(b.kpi, ("", 1.0))[1]
            shift = shift_name(b.window_label)
            for stat, value in (("median", b.median), ("q1", b.q1), ("q3", b.q3), ("best", b.best)):
                family.add_metric([b.asset_type, b.kpi, b.window_kind, shift, stat], value * factor)
            companies.add_metric([b.asset_type, b.kpi, b.window_kind, shift], float(b.companies))
        yield family
        yield companies
