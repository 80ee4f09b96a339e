"""Rollups sum elements and then divide (STANDARDS.md §1.5)."""

from __future__ import annotations

import pytest

from orchestrator.kpi import AssetPath, Elements, Scope, compute, rollup, rollup_results, scopes_of, total
from tests.kpi.builders import asset_ref


def m1() -> Elements:
    """§1.5 M1: PBT 480, APT 400, PRU 1.0, PQ 350, GQ 340."""
    return Elements(apt=400, adet=80, pq=350, gq=340, sq=10, ideal_time=350 * 1.0, ideal_good_time=340 * 1.0)


def m2() -> Elements:
    """§1.5 M2: PBT 240, APT 120, PRU 0.2, PQ 500, GQ 400."""
    return Elements(
        apt=120, adot=120, pq=500, gq=400, sq=100, ideal_time=500 * 0.2, ideal_good_time=400 * 0.2
    )


M1 = AssetPath("acme", "north", "", "line-1", "m1")
M2 = AssetPath("acme", "north", "", "line-1", "m2")


def test_standards_example_aggregate_oee() -> None:
    """Aggregate OEE 0.583 (= 420/720), not the naive mean 0.521 nor A·E·(count Q) 0.544."""
    r1, r2 = compute(m1()), compute(m2())
    assert r1.oee == pytest.approx(0.708, abs=5e-4)
    assert r2.oee == pytest.approx(0.333, abs=5e-4)
    results = rollup_results({M1: m1(), M2: m2()})
    line = results[Scope("line", "acme/north/line-1")]
    assert round(line.oee, 3) == 0.583  # type: ignore[arg-type]
    assert line.oee == pytest.approx(420 / 720)
    assert round((r1.oee + r2.oee) / 2, 3) == 0.521  # type: ignore[operator]
    a, e, q_count = line.availability, line.effectiveness, line.quality
    assert round(a * e * q_count, 3) == 0.544  # type: ignore[operator]
    assert a * e * line.quality_weighted == pytest.approx(line.oee)  # type: ignore[operator]
    # PBT-weighted mean of the assets' OEE is the same thing.
    assert (r1.oee * 480 + r2.oee * 240) / 720 == pytest.approx(line.oee)  # type: ignore[operator]


def test_every_level_is_the_sum_of_its_assets() -> None:
    """Scopes from park to asset; areas only where configured; sums, not means."""
    m3 = AssetPath("acme", "south", "press", "line-9", "m3")
    other = AssetPath("bolt", "main", "", "turning", "lathe-1")
    items = [(M1, m1()), (M2, m2()), (m3, m1()), (other, m2())]
    out = rollup(items)
    assert out[Scope("park", "")] == total(e for _, e in items)
    assert out[Scope("company", "acme")] == m1() + m2() + m1()
    assert out[Scope("site", "acme/north")] == m1() + m2()
    assert out[Scope("area", "acme/south/press")] == m1()
    assert out[Scope("line", "acme/south/press/line-9")] == m1()
    assert out[Scope("asset", "bolt/main/turning/lathe-1")] == m2()
    assert not any(s.level == "area" and s.path.startswith("acme/north") for s in out)
    only = rollup(items, levels=["company"])
    assert set(only) == {Scope("company", "acme"), Scope("company", "bolt")}


def test_scopes_match_asset_ref_paths() -> None:
    """An AssetRef works as an asset (pairs: it is unhashable) and its scope path is its `path`."""
    ref = asset_ref("m7", area="machining")
    scopes = scopes_of(ref)
    assert [s.level for s in scopes] == ["park", "company", "site", "area", "line", "asset"]
    assert scopes[-1].path == ref.path
    assert rollup([(ref, m1())])[Scope("asset", ref.path)] == m1()


def test_mtbf_rolls_up_as_total_over_count() -> None:
    """Two machines: 3 failures with 300 s total TBF and 1 with 500 s → MTBF 200, not (100+500)/2."""
    a = Elements(apt=300, failures=3, tbf_seconds=300, repairs=3, repair_time=30)
    b = Elements(apt=500, failures=1, tbf_seconds=500, repairs=1, repair_time=90)
    line = rollup_results({M1: a, M2: b})[Scope("line", "acme/north/line-1")]
    assert line.mtbf == pytest.approx(200.0)
    assert line.mttr == pytest.approx(30.0)


def test_uncounted_asset_blocks_quantity_kpis_above_it() -> None:
    """An availability-only asset makes the line's OEE None rather than dragging it down."""
    no_counters = Elements(apt=100, adet=20, uncounted=1)
    line = rollup_results({M1: m1(), M2: no_counters})[Scope("line", "acme/north/line-1")]
    assert line.oee is None
    assert line.availability == pytest.approx(500 / 600)
