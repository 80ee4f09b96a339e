"""Sharing policies: what a company does not share never reaches the park view, metrics or benchmarks."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from exporters.prometheus.kpi_collector import KpiCollector
from models.assets import SharePolicy
from models.park import Park
from orchestrator.config import load_config
from orchestrator.kpi.elements import Elements
from orchestrator.kpi.formulas import compute
from orchestrator.kpi.results import ScopedResult, scoped_results
from orchestrator.kpi.service import KpiService
from orchestrator.kpi.windows import Window
from orchestrator.sharing import park_view, shared_kpis
from tests.exporters.test_prometheus import series
from tests.fakes import FAKE_KIND

# Four companies with one press line each. A shares everything down to assets, B only OEE of
# assets, C only OEE of lines, D nothing.
CONFIG = """\
park: {id: p}
asset_types:
  press:
    ideal_cycle_time: 1.0
    signals: {state: {role: state, binding: {address: s}}}
companies:
"""
SHARES = {
    "a": "[{kpis: all, level: asset, windows: [shift]}]",
    "b": "[{kpis: [oee], level: asset, windows: [shift]}]",
    "c": "[{kpis: [oee], level: line, windows: [shift]}]",
    "d": "[]",
}


@pytest.fixture
def park(tmp_path: Path) -> Park:
    assets = "[{id: m1, type: press, connection: dev}, {id: m2, type: press, connection: dev}]"
    companies = "".join(
        f"  - {{id: {c}, connections: {{dev: {{kind: fake}}}}, share: {share},\n"
        f"     sites: [{{id: s, lines: [{{id: l, assets: {assets}}}]}}]}}\n"
        for c, share in SHARES.items()
    )
    (tmp_path / "p.yaml").write_text(CONFIG + companies)
    return load_config(tmp_path / "p.yaml", {"fake": FAKE_KIND}).park


WINDOW = Window("shift:early:2026-03-02", 0.0, 480.0, kind="shift")


def elements(apt: float, pq: float, gq: float) -> Elements:
    """480 s planned busy, `apt` running, PRU 1 s."""
    return Elements(apt=apt, adet=480 - apt, pq=pq, gq=gq, sq=pq - gq, ideal_time=pq, ideal_good_time=gq)


PER_COMPANY = {"a": (400, 350, 340), "b": (240, 200, 190), "c": (300, 280, 200), "d": (100, 50, 10)}


def results(park: Park) -> list[ScopedResult]:
    pairs = [(asset, elements(*PER_COMPANY[asset.company])) for asset in park.assets]
    return scoped_results(pairs, "shift", WINDOW)


def test_policy_filters_kpis_levels_and_companies(park: Park) -> None:
    view = park_view(results(park), park.share, {a.path: a.type for a in park.assets}, min_companies=3)
    published = {(p.level, p.scope): p.kpis for p in view.scopes}
    assert not [key for key in published if key[1].startswith("d")], "D shares nothing"
    assert set(published[("asset", "a/s/l/m1")]) >= {"oee", "availability", "quality", "mtbf"}
    assert set(published[("asset", "b/s/l/m1")]) == {"oee"}
    assert ("asset", "c/s/l/m1") not in published  # C publishes lines, not assets
    assert set(published[("line", "c/s/l")]) == {"oee"}
    assert set(published[("company", "c")]) == {"oee"}
    assert all(
        kpi == "oee" or scope.startswith("a") for (_, scope), kpis in published.items() for kpi in kpis
    )


def test_park_aggregate_sums_only_the_sharing_companies(park: Park) -> None:
    view = park_view(results(park), park.share, {}, min_companies=3)
    (park_row,) = view.park
    sum_abc = sum((elements(*PER_COMPANY[c]) for c in "abc"), Elements()) + sum(
        (elements(*PER_COMPANY[c]) for c in "abc"), Elements()
    )
    assert park_row.kpis["oee"] == pytest.approx(compute(sum_abc).oee)  # D's machines left out
    assert park_row.kpis["availability"] == pytest.approx(400 / 480)  # only A shares it
    assert park_row.companies == 3


def test_benchmarks_need_k_companies_sharing_assets_and_name_none(park: Park) -> None:
    types = {a.path: a.type for a in park.assets}
    assert park_view(results(park), park.share, types, min_companies=3).benchmarks == []  # A, B only
    benchmarks = park_view(results(park), park.share, types, min_companies=2).benchmarks
    oee = next(b for b in benchmarks if b.kpi == "oee")
    assert (oee.companies, oee.assets) == (2, 4)
    assert oee.best == pytest.approx(340 / 480)
    assert oee.median == pytest.approx((340 / 480 + 190 / 480) / 2)
    assert {b.kpi for b in benchmarks} <= {"oee"} | set(compute(Elements()).kpis())
    assert all(b.kpi == "oee" or b.companies >= 2 for b in benchmarks)
    assert not any(hasattr(b, "company") for b in benchmarks)


def test_park_metrics_carry_only_shared_kpis(park: Park) -> None:
    service = KpiService(park, None)
    service.current = results(park)
    service.view = park_view(service.current, park.share, service.asset_types, 3)
    registry = CollectorRegistry()
    registry.register(KpiCollector(service, "park"))
    got = series(generate_latest(registry).decode())
    companies = {dict(labels)["company"] for (_, labels) in got if "company" in dict(labels)}
    assert "d" not in companies
    for (name, labels), _ in got.items():
        company = dict(labels).get("company", "")
        if company in ("b", "c"):
            assert name == "parklink_kpi_oee_ratio", (name, labels)
        if dict(labels).get("level") == "park" and name == "parklink_kpi_availability_ratio":
            assert _ == pytest.approx(400 / 480)
    full = CollectorRegistry()
    full.register(KpiCollector(service, "full"))
    text = generate_latest(full).decode()
    park_oee = [
        v
        for (n, lab), v in series(text).items()
        if n == "parklink_kpi_oee_ratio" and ("level", "park") in lab
    ]
    assert park_oee == [pytest.approx(service.view.park[0].kpis["oee"])]  # the full view too: policy-made


policies = st.lists(
    st.builds(
        SharePolicy,
        kpis=st.one_of(st.just("all"), st.lists(st.sampled_from(["oee", "availability", "mtbf", "quality"]))),
        level=st.sampled_from(["asset", "line", "site", "company"]),
        windows=st.lists(st.sampled_from(["shift", "day", "hour", "rolling_hour"]), min_size=1),
    ),
    max_size=3,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(share_a=policies, share_b=policies)
def test_nothing_published_beyond_any_policy(
    park: Park, share_a: list[SharePolicy], share_b: list[SharePolicy]
) -> None:
    share = {"a": share_a, "b": share_b}
    view = park_view(results(park), share, {a.path: a.type for a in park.assets}, min_companies=2)
    rank = {"asset": 0, "line": 1, "site": 2, "company": 3}
    for item in view.scopes:
        allowed = shared_kpis(share.get(item.names[0], []), item.level, item.window_kind)
        assert item.names[0] in share
        assert allowed is None or set(item.kpis) <= allowed
        assert any(
            rank[item.level] >= rank[p.level] and item.window_kind in p.windows for p in share[item.names[0]]
        )
    for benchmark in view.benchmarks:  # the park fixture is read-only: sharing it is safe
        sharing = [
            company
            for company, ps in share.items()
            if (allowed := shared_kpis(ps, "asset", benchmark.window_kind)) is None
            or benchmark.kpi in allowed
        ]
        assert 2 <= benchmark.companies <= len(sharing)


# -- the guard: suspect results are never published ---------------------------------------------
def impossible() -> Elements:
    """480 s planned busy, 100 s running, 450 parts at PRU 1 s: E = 4.5 (a counter error)."""
    return elements(100, 450, 440)


def results_with_suspect(park: Park, assets: tuple[str, ...]) -> list[ScopedResult]:
    """`results(park)` with the given asset paths of B impossible."""
    pairs = [
        (asset, impossible() if asset.path in assets else elements(*PER_COMPANY[asset.company]))
        for asset in park.assets
    ]
    return scoped_results(pairs, "shift", WINDOW)


def test_a_suspect_company_is_left_out_of_the_park_view(park: Park) -> None:
    """B's two machines are impossible: none of B's scopes is published, the park aggregate sums A
    and C only, and B's machines drop out of the OEE benchmark (A's and B's assets: 4 → 2)."""
    types = {a.path: a.type for a in park.assets}
    clean = park_view(results(park), park.share, types, min_companies=1)
    flagged = results_with_suspect(park, ("b/s/l/m1", "b/s/l/m2"))
    assert {r.scope for r in flagged if r.suspect} == {"", "b", "b/s", "b/s/l", "b/s/l/m1", "b/s/l/m2"}
    view = park_view(flagged, park.share, types, min_companies=1)
    assert not [p for p in view.scopes if p.names[0] == "b"]
    assert {p.names[0] for p in view.scopes} == {"a", "c"}
    (before,), (after,) = clean.park, view.park
    assert (before.companies, after.companies) == (3, 2)
    sum_ac = sum((elements(*PER_COMPANY[c]) for c in "acac"), Elements())
    assert after.kpis["oee"] == pytest.approx(compute(sum_ac).oee)
    oee = {(b.companies, b.assets) for b in clean.benchmarks if b.kpi == "oee"}
    assert oee == {(2, 4)}
    assert {(b.companies, b.assets) for b in view.benchmarks if b.kpi == "oee"} == {(1, 2)}
    assert park_view(flagged, park.share, types, min_companies=2).benchmarks == []  # k = 2 no longer met


def test_one_suspect_machine_hides_its_line_not_its_clean_neighbour(park: Park) -> None:
    types = {a.path: a.type for a in park.assets}
    view = park_view(results_with_suspect(park, ("b/s/l/m1",)), park.share, types, min_companies=2)
    b = {p.scope for p in view.scopes if p.names[0] == "b"}
    assert b == {"b/s/l/m2"}  # its line, site and company hold m1's numbers: not published
    oee = next(x for x in view.benchmarks if x.kpi == "oee")
    assert (oee.companies, oee.assets) == (2, 3)


def test_metrics_flag_suspect_results_and_the_park_view_has_none(park: Park) -> None:
    service = KpiService(park, None)
    service.current = results_with_suspect(park, ("b/s/l/m1",))
    service.view = park_view(service.current, park.share, service.asset_types, 2)
    full = CollectorRegistry()
    full.register(KpiCollector(service, "full"))
    got = series(generate_latest(full).decode())
    suspect = {
        (dict(labels)["level"], dict(labels)["company"], dict(labels)["asset"]): value
        for (name, labels), value in got.items()
        if name == "parklink_kpi_suspect"
    }
    assert suspect[("asset", "b", "m1")] == 1.0
    assert suspect[("asset", "b", "m2")] == 0.0 and suspect[("asset", "a", "m1")] == 0.0
    assert suspect[("line", "b", "")] == suspect[("company", "b", "")] == 1.0
    assert suspect[("company", "a", "")] == 0.0
    assert suspect[("park", "", "")] == 0.0  # the published park aggregate: built from clean results
    company = CollectorRegistry()
    company.register(KpiCollector(service, "company", "b"))
    own = series(generate_latest(company).decode())
    assert own[("parklink_kpi_suspect", frozenset(SUSPECT_B_M1.items()))] == 1.0
    assert ("parklink_kpi_effectiveness_ratio", frozenset(SUSPECT_B_M1.items())) in own  # its own numbers
    shared = CollectorRegistry()
    shared.register(KpiCollector(service, "park"))
    published = series(generate_latest(shared).decode())
    assert not [name for name, _ in published if name == "parklink_kpi_suspect"]
    b_scopes = {
        (dict(labels)["level"], dict(labels)["asset"])
        for _, labels in published
        if ("company", "b") in labels
    }
    assert b_scopes == {("asset", "m2")}  # B shares assets: its clean machine only


SUSPECT_B_M1 = {"level": "asset", "company": "b", "site": "s", "area": "", "line": "l", "asset": "m1"}
SUSPECT_B_M1["window"], SUSPECT_B_M1["shift"] = "shift", "early"
