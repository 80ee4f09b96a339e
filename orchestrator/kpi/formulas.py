"""ISO 22400-2 KPIs from summed time elements and quantities (STANDARDS.md §1.2).

Source keys as in STANDARDS.md §7: ONT (the ISO 22400-2 ontology, hsu-aut), PVM (IDTA 02066),
KPI-C, PTC, MT. Rules:
- Every ratio is a quotient of sums; a zero (or negative) denominator gives None, never NaN or inf.
- Effectiveness is not clamped: above 1 means the PRU is too generous (§1.5 pitfall 2).
- Quantity KPIs are None when a summed asset has no good/total counter (`uncounted`), and
  ideal-time KPIs when units were produced with no PRU known (`unpriced_pq`): a missing input is
  not a zero.
- The multiplicative form A·E·Q reproduces OEE = Σ(PRU·GQ)/PBT in rollups only with the
  ideal-time-weighted quality Σ(PRU·GQ)/Σ(PRU·PQ) (§1.5); `quality` (GQ/PQ) is the count ratio.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from orchestrator.kpi.elements import Elements


@dataclass(frozen=True, slots=True)
class KpiResult:
    """The KPIs of one work unit or one rollup scope over one window; None where undefined."""

    availability: float | None
    effectiveness: float | None
    quality: float | None
    quality_weighted: float | None
    oee: float | None
    nee: float | None
    technical_efficiency: float | None
    utilization_efficiency: float | None
    allocation_efficiency: float | None
    setup_rate: float | None
    scrap_ratio: float | None
    rework_ratio: float | None
    throughput_per_hour: float | None
    mtbf: float | None
    mttr: float | None
    energy_per_unit: float | None
    energy_per_good_unit: float | None
    coverage: float | None
    elements: Elements

    def kpis(self) -> dict[str, float | None]:
        """The KPI values by name, without the elements."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "elements"}

    def as_dict(self) -> dict[str, object]:
        """KPIs plus the elements as plain dicts (JSON-able)."""
        out: dict[str, object] = dict(self.kpis())
        out["elements"] = asdict(self.elements)
        return out


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator; None when the denominator is not positive or the result not finite."""
    if not denominator > 0:
        return None
    value = numerator / denominator
    return value if math.isfinite(value) else None


def compute(e: Elements) -> KpiResult:
    """All KPIs of one set of elements."""
    counted = e.uncounted == 0
    priced = counted and e.unpriced_pq == 0
    pbt, apt, aupt, aubt = e.pbt, e.apt, e.aupt, e.aubt
    oee = ratio(e.ideal_good_time, pbt) if priced else None
    return KpiResult(
        # ONT, KPI-C: APT / PBT.
        availability=ratio(apt, pbt),
        # ONT: PRU·PQ / APT, summed as Σ PRU·PQ so several PRUs add up. Not clamped.
        effectiveness=ratio(e.ideal_time, apt) if priced else None,
        # ONT: GQ / PQ.
        quality=ratio(e.gq, e.pq) if counted else None,
        # Derived (§1.5): Σ(PRU·GQ) / Σ(PRU·PQ), the Q for which A·E·Q = OEE across products.
        quality_weighted=ratio(e.ideal_good_time, e.ideal_time) if priced else None,
        # ONT: A × E × Q = PRU·GQ / PBT.
        oee=oee,
        # ONT: AUPT / PBT × E × Q (setup is not a loss) = AUPT·Σ(PRU·GQ) / (PBT·APT).
        nee=_nee(aupt, pbt, apt, e.ideal_good_time) if priced else None,
        # ONT, PTC: APT / (APT + ADET).
        technical_efficiency=ratio(apt, apt + e.adet),
        # ONT: APT / AUBT and AUBT / PBT.
        utilization_efficiency=ratio(apt, aubt),
        allocation_efficiency=ratio(aubt, pbt),
        # ONT: AUST / AUPT.
        setup_rate=ratio(e.aust, aupt),
        # ONT, PTC: SQ / PQ and RQ / PQ.
        scrap_ratio=ratio(e.sq, e.pq) if counted else None,
        rework_ratio=ratio(e.rq, e.pq) if counted else None,
        # Not ISO's throughput rate (PQ / AOET, per order; §1.5 pitfall 3): units per observed hour.
        throughput_per_hour=ratio(e.pq * 3600.0, e.observed_seconds) if counted else None,
        # ONT (IEC 60050-191): mean TBF and mean TTR, one sample per failure / completed repair.
        mtbf=ratio(e.tbf_seconds, e.failures),
        mttr=ratio(e.repair_time, e.repairs),
        # ONT "comprehensive energy consumption": energy / PQ. Per good unit charges the energy of
        # scrap to the good parts, which is what a plant pays for.
        energy_per_unit=ratio(e.energy, e.pq) if counted else None,
        energy_per_good_unit=ratio(e.energy, e.gq) if counted else None,
        coverage=e.coverage,
        elements=e,
    )


def _nee(aupt: float, pbt: float, apt: float, ideal_good: float) -> float | None:
    if not (pbt > 0 and apt > 0):
        return None  # E is undefined without production time
    return ratio(aupt * ideal_good, pbt * apt)
