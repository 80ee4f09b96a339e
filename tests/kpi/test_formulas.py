"""KPI formulas from elements: published example, unclamped effectiveness, None instead of NaN."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.kpi import EMPTY, Elements, compute

MIN = 60.0


def oee_com_example() -> Elements:
    """oee.com, 'OEE Calculation' worked example, as ISO 22400 elements.

    Shift 480 min; breaks 2 × 15 min and a 30 min meal (60 min planned down) → planned production
    time 420 min; 47 min down → run time 373 min; ideal cycle time 1.0 s; total count 19,271,
    reject count 423 → good count 18,848.
    """
    return Elements(
        apt=373 * MIN,
        adet=47 * MIN,
        pdot=60 * MIN,
        pq=19_271,
        gq=19_271 - 423,
        sq=423,
        ideal_time=1.0 * 19_271,
        ideal_good_time=1.0 * (19_271 - 423),
    )


def test_oee_com_worked_example() -> None:
    """oee.com 'OEE Calculation': A 0.8881, P 0.8611, Q 0.9780, OEE 0.7479.

    By hand: A = 373/420 = 0.888095; P = 19271 s / (373 × 60 s) = 0.861081; Q = 18848/19271 = 0.978050;
    OEE = 18848 s / 25200 s = 0.747937 (= A·P·Q).
    """
    e = oee_com_example()
    r = compute(e)
    assert e.pbt == 420 * MIN
    assert r.availability == pytest.approx(0.8881, abs=5e-5)
    assert r.effectiveness == pytest.approx(0.8611, abs=5e-5)
    assert r.quality == pytest.approx(0.9780, abs=5e-5)
    assert r.oee == pytest.approx(0.7479, abs=5e-5)
    assert r.oee == pytest.approx(r.availability * r.effectiveness * r.quality)  # type: ignore[operator]
    assert r.quality_weighted == pytest.approx(r.quality)  # one PRU: weighted = count ratio
    assert r.technical_efficiency == pytest.approx(373 / 420)
    assert r.scrap_ratio == pytest.approx(423 / 19_271)
    assert r.coverage == 1.0


def test_effectiveness_above_one_is_not_clamped() -> None:
    """A PRU that is too generous shows as E > 1 (STANDARDS.md §1.5 pitfall 2)."""
    e = Elements(apt=100.0, pq=150, gq=150, ideal_time=150.0, ideal_good_time=150.0)
    r = compute(e)
    assert r.effectiveness == pytest.approx(1.5)
    assert r.oee == pytest.approx(1.5)


def test_division_by_zero_gives_none() -> None:
    """Empty window, all planned down, nothing produced, no failures: None, never NaN or inf."""
    empty = compute(EMPTY)
    assert all(v is None for v in empty.kpis().values())
    planned = compute(Elements(pdot=3600.0))
    assert planned.availability is None and planned.oee is None and planned.nee is None
    assert planned.coverage == 1.0
    idle = compute(Elements(adot=3600.0))
    assert idle.availability == 0.0 and idle.oee == 0.0
    assert idle.effectiveness is None  # no APT
    assert idle.quality is None and idle.scrap_ratio is None  # PQ = 0
    assert idle.mtbf is None and idle.mttr is None
    assert idle.energy_per_good_unit is None


def test_nee_setup_rate_and_efficiencies() -> None:
    """NEE = AUPT/PBT·E·Q; setup rate AUST/AUPT; utilization APT/AUBT; allocation AUBT/PBT."""
    e = Elements(
        apt=300.0, aust=60.0, adet=40.0, adot=100.0, pq=250, gq=200, sq=50, ideal_time=250.0,
        ideal_good_time=200.0, energy=12.0,
    )  # fmt: skip
    r = compute(e)
    a, eff, q = 300 / 500, 250 / 300, 200 / 250
    assert r.nee == pytest.approx(360 / 500 * eff * q)
    assert r.oee == pytest.approx(a * eff * q)
    assert r.setup_rate == pytest.approx(60 / 360)
    assert r.utilization_efficiency == pytest.approx(300 / 400)
    assert r.allocation_efficiency == pytest.approx(400 / 500)
    assert r.throughput_per_hour == pytest.approx(250 / (500 / 3600))
    assert r.energy_per_good_unit == pytest.approx(12.0 / 200)
    assert r.energy_per_unit == pytest.approx(12.0 / 250)


def test_missing_counters_or_pru_are_not_zero() -> None:
    """An asset without counters has no quality KPIs; units without PRU block the ideal-time ones."""
    uncounted = compute(Elements(apt=100.0, adet=20.0, uncounted=1))
    assert uncounted.availability == pytest.approx(100 / 120)
    assert uncounted.oee is None and uncounted.quality is None and uncounted.effectiveness is None
    unpriced = compute(Elements(apt=100.0, pq=10, gq=9, unpriced_pq=10))
    assert unpriced.quality == pytest.approx(0.9)
    assert unpriced.oee is None and unpriced.effectiveness is None and unpriced.quality_weighted is None


def test_mtbf_mttr_are_means_of_sums() -> None:
    """MTBF = Σ TBF / failures, MTTR = Σ TTR / completed repairs."""
    r = compute(Elements(apt=1000.0, failures=4, tbf_seconds=900.0, repairs=3, repair_time=90.0))
    assert r.mtbf == pytest.approx(225.0)
    assert r.mttr == pytest.approx(30.0)


seconds = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@given(
    st.builds(
        Elements,
        apt=seconds, aust=seconds, adet=seconds, adot=seconds, pdot=seconds, unknown=seconds,
        pq=seconds, gq=seconds, sq=seconds, rq=seconds, energy=seconds, ideal_time=seconds,
        ideal_good_time=seconds, failures=st.integers(0, 100), tbf_seconds=seconds,
        repairs=st.integers(0, 100), repair_time=seconds,
    )
)  # fmt: skip
def test_kpis_are_finite_or_none(e: Elements) -> None:
    """Whatever the elements, no KPI is NaN or infinite."""
    for name, value in compute(e).kpis().items():
        assert value is None or math.isfinite(value), name
