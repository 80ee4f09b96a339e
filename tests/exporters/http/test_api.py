"""The API through the real ASGI app, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from exporters.http import create_token, demo_tokens, list_tokens, revoke_token
from exporters.http.tokens import ApiTokenRow, hash_token
from models.park import AssetRef
from orchestrator.kpi.service import save_results
from orchestrator.kpi.windows import Window
from tests.exporters.http.conftest import Park, bearer, client_for
from tests.exporters.http.helpers import CANARY, ERROR_CANARY, KEY4, WritingFakeConnector, results_for

ACME_ASSET = "acme/north/hall/l1/acme-m1"
BOLT_ASSET = "bolt/main/l1/bolt-m1"


async def get(client: httpx.AsyncClient, park: Park, who: str, url: str, **params: Any) -> httpx.Response:
    return await client.get(url, headers=bearer(park.tokens[who]), params=params)


async def test_companies_and_hierarchy_follow_the_role(client: httpx.AsyncClient, park: Park) -> None:
    me = (await get(client, park, "acme_viewer", "/api/v1/me")).json()
    assert me == {"role": "viewer", "company": "acme", "token_name": "acme viewer"}
    own = (await get(client, park, "acme_viewer", "/api/v1/companies")).json()
    assert [c["id"] for c in own["items"]] == ["acme"] and own["total"] == 1
    everyone = (await get(client, park, "park", "/api/v1/companies")).json()
    assert [c["id"] for c in everyone["items"]] == ["acme", "bolt", "corex", "dune"]
    assert everyone["items"][2]["share"][0]["kpis"] == ["oee"]
    lines = (await get(client, park, "acme_viewer", "/api/v1/companies/acme/lines")).json()
    assert lines["items"] == [
        {
            "company": "acme",
            "site": "north",
            "area": "hall",
            "id": "l1",
            "path": "acme/north/hall/l1",
            "assets": 2,
        }
    ]
    sites = (await get(client, park, "admin", "/api/v1/companies/bolt/sites")).json()
    assert [s["id"] for s in sites["items"]] == ["main"]
    page = (await get(client, park, "acme_viewer", "/api/v1/companies/acme/assets", limit=1, offset=1)).json()
    assert (page["total"], page["limit"], page["offset"]) == (2, 1, 1)
    assert [a["id"] for a in page["items"]] == ["acme-m2"]


async def test_asset_detail_has_signals_values_and_health(client: httpx.AsyncClient, park: Park) -> None:
    detail = (await get(client, park, "acme_viewer", f"/api/v1/assets/{ACME_ASSET}")).json()
    assert detail["type"] == "press" and detail["area"] == "hall"
    signals = {s["name"]: s for s in detail["signals"]}
    assert signals["temperature"]["value"] == CANARY["acme"]
    assert signals["temperature"]["quality"] == "good" and signals["temperature"]["status"] == "Good"
    assert signals["setpoint"]["writable"] and not signals["temperature"]["writable"]
    assert detail["connection_health"]["up"] is True
    one = (await get(client, park, "acme_viewer", f"/api/v1/assets/{ACME_ASSET}/signals/temperature")).json()
    assert one["value"] == CANARY["acme"] and one["unit"] == "°C"
    missing = await get(client, park, "acme_viewer", f"/api/v1/assets/{ACME_ASSET}/signals/nope")
    assert missing.status_code == 404 and missing.json() == {"detail": "not found"}


async def test_company_kpis_carry_every_kpi_and_park_view_only_shared(
    client: httpx.AsyncClient, park: Park
) -> None:
    own = (
        await get(client, park, "acme_viewer", "/api/v1/companies/acme/kpis", level="asset", limit=1000)
    ).json()
    assert own["total"] == 4  # 2 assets × (rolling hour, hour)
    assert {"mtbf", "scrap_ratio", "oee"} <= set(own["items"][0]["kpis"])
    view = (await get(client, park, "park", "/api/v1/park/view", limit=1000)).json()["items"]
    by_company: dict[tuple[str, str], set[str]] = {}
    for item in view:
        by_company.setdefault((item["company"], item["level"]), set()).update(item["kpis"])
    assert by_company[("acme", "asset")] == KEY4
    assert by_company[("corex", "asset")] == by_company[("corex", "company")] == {"oee"}
    assert ("bolt", "asset") not in by_company and "mtbf" in by_company[("bolt", "line")]
    assert not [key for key in by_company if key[0] == "dune"]
    park_rows = [i for i in view if i["level"] == "park"]
    assert {r["window"] for r in park_rows} == {"rolling_hour", "hour"}
    assert all(r["companies"] >= 1 for r in park_rows)
    marks = (await get(client, park, "park", "/api/v1/park/benchmarks", kpi="oee")).json()["items"]
    assert marks and all(b["companies"] == 2 and "company" not in b for b in marks)  # acme + corex


async def test_history_pages_and_ranges(client: httpx.AsyncClient, park: Park) -> None:
    url = "/api/v1/companies/acme/kpis/history"
    since = {"from": (datetime.now(UTC) - timedelta(hours=25)).isoformat()}
    default = (await get(client, park, "acme_viewer", url, level="company")).json()
    assert default["total"] == 23  # the last day: the oldest seeded hour started before it
    day = (await get(client, park, "acme_viewer", url, level="company", limit=10, **since)).json()
    assert day["total"] == 24 and len(day["items"]) == 10
    starts = [i["start"] for i in day["items"]]
    assert starts == sorted(starts)
    rest = (await get(client, park, "acme_viewer", url, level="company", limit=10, offset=20, **since)).json()
    assert len(rest["items"]) == 4
    now = datetime.now(UTC)
    recent = await get(
        client, park, "acme_viewer", url, level="company", **{"from": (now - timedelta(hours=3)).isoformat()}
    )
    assert recent.json()["total"] in (2, 3)  # the hour boundary may fall in between
    reversed_range = await get(
        client, park, "acme_viewer", url, **{"from": now.isoformat(), "to": "2020-01-01"}
    )
    assert reversed_range.status_code == 422
    too_long = await get(client, park, "acme_viewer", url, **{"from": "2020-01-01", "to": "2020-03-01"})
    assert too_long.status_code == 422
    assert (await get(client, park, "acme_viewer", url, window="nonsense")).status_code == 422


async def test_park_history_is_rebuilt_through_the_sharing_policy(
    client: httpx.AsyncClient, park: Park
) -> None:
    since = {"from": (datetime.now(UTC) - timedelta(hours=25)).isoformat()}
    items = (await get(client, park, "park", "/api/v1/park/view/history", limit=1000, **since)).json()[
        "items"
    ]
    assert items
    for item in items:
        assert item["company"] != "dune"
        if item["company"] == "corex":
            assert set(item["kpis"]) == {"oee"}
        if item["company"] == "bolt":
            assert item["level"] != "asset"
    park_rows = [i for i in items if i["level"] == "park"]
    assert len(park_rows) == 24
    # availability of the park comes from acme and bolt only (corex and dune do not share it)
    assert all(set(r["kpis"]) >= KEY4 for r in park_rows)
    corex_only = (
        await get(client, park, "park", "/api/v1/park/view/history", company="corex", **since)
    ).json()
    assert corex_only["total"] == 24 * 5  # company, site, line, 2 assets per hour


async def test_connections_hide_error_texts_from_the_park(client: httpx.AsyncClient, park: Park) -> None:
    rows = (await get(client, park, "park", "/api/v1/connections", state="down")).json()["items"]
    assert [(r["company"], r["up"]) for r in rows] == [("dune", False)]
    assert rows[0]["down_since"] is not None and rows[0]["last_error"] is None
    admin = (await get(client, park, "admin", "/api/v1/connections", company="dune")).json()["items"]
    assert admin[0]["last_error"] == ERROR_CANARY
    own = (await get(client, park, "acme_viewer", "/api/v1/connections")).json()
    assert [r["company"] for r in own["items"]] == ["acme"]


async def test_writes_need_an_operator_a_writable_signal_and_a_writing_connector(
    client: httpx.AsyncClient, park: Park
) -> None:
    url = f"/api/v1/assets/{ACME_ASSET}/signals/setpoint/write"
    token = park.tokens["acme_operator"]
    done = await client.post(url, json={"value": 7.5}, headers=bearer(token))
    assert done.status_code == 200 and done.json() == {
        "signal": f"{ACME_ASSET}/setpoint",
        "status": "Good",
        "code": 0,
        "good": True,
    }
    connector = next(link.connector for link in park.runtime.links if link.ref.company == "acme")
    assert isinstance(connector, WritingFakeConnector) and connector.writes == [
        (f"{ACME_ASSET}/setpoint", 7.5)
    ]
    viewer = await client.post(url, json={"value": 1}, headers=bearer(park.tokens["acme_viewer"]))
    assert viewer.status_code == 403
    fixed = f"/api/v1/assets/{ACME_ASSET}/signals/temperature/write"
    assert (await client.post(fixed, json={"value": 1}, headers=bearer(token))).status_code == 409
    other = f"/api/v1/assets/{BOLT_ASSET}/signals/setpoint/write"
    assert (await client.post(other, json={"value": 1}, headers=bearer(token))).status_code == 404
    bad_body = await client.post(url, json={"value": {"x": "secret-input"}}, headers=bearer(token))
    assert bad_body.status_code == 422 and "secret-input" not in bad_body.text
    link = next(link for link in park.runtime.links if link.ref.company == "acme")
    link.connector = object()  # type: ignore[assignment]  # a kind that cannot write
    assert (await client.post(url, json={"value": 1}, headers=bearer(token))).status_code == 409


async def test_every_write_is_logged_with_its_token_never_the_secret(
    sqlite_park: Park, caplog: pytest.LogCaptureFixture
) -> None:
    """The audit line of a write names the signal, the value, the token's id and name and the
    device's answer; the token itself is not in it."""
    caplog.set_level(logging.INFO, logger="parklink")
    token = sqlite_park.tokens["acme_operator"]
    url = f"/api/v1/assets/{ACME_ASSET}/signals/setpoint/write"
    async with client_for(sqlite_park.app) as c:
        assert (await c.post(url, json={"value": 4.25}, headers=bearer(token))).status_code == 200
    token_id = next(t.id for t in list_tokens(sqlite_park.db) if t.name == "acme operator")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("write ")]
    assert lines == [f"write {ACME_ASSET}/setpoint = 4.25 by token {token_id} (acme operator): Good"]
    assert token not in caplog.text


async def test_401_403_404_and_revoked_tokens(client: httpx.AsyncClient, park: Park) -> None:
    url = "/api/v1/companies/acme/assets"
    assert (await client.get(url)).status_code == 401
    assert (await client.get(url)).headers["www-authenticate"] == "Bearer"
    assert (await client.get(url, headers=bearer("plk_wrong"))).status_code == 401
    assert (await client.get(url, headers={"Authorization": "Basic eDp5"})).status_code == 401
    assert (await get(client, park, "park", url)).status_code == 403
    assert (await get(client, park, "bolt_viewer", url)).status_code == 404
    assert (await get(client, park, "bolt_viewer", "/api/v1/companies/nope/assets")).status_code == 404
    token_id = next(t.id for t in list_tokens(park.db) if t.name == "acme viewer")
    assert (await get(client, park, "acme_viewer", url)).status_code == 200
    assert revoke_token(park.db, token_id) and not revoke_token(park.db, token_id)
    revoked = await get(client, park, "acme_viewer", url)
    assert revoked.status_code == 401 and revoked.json() == {"detail": "not authenticated"}


async def test_tokens_are_stored_hashed(park: Park) -> None:
    with Session(park.db) as session:
        rows = session.exec(select(ApiTokenRow)).all()
    stored = {r.hash for r in rows}
    for token in park.tokens.values():
        assert token.startswith("plk_") and len(token) >= 43
        assert hash_token(token) in stored and token not in stored
    assert all(len(r.hash) == 64 and r.revoked is None for r in rows)
    with pytest.raises(ValueError, match="needs a company"):
        create_token(park.db, "viewer")
    with pytest.raises(ValueError, match="belongs to the park"):
        create_token(park.db, "park", "acme")


async def test_metrics_views(client: httpx.AsyncClient, park: Park) -> None:
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers=bearer(park.tokens["park"]))).status_code == 403
    full = await client.get("/metrics", headers=bearer(park.tokens["admin"]))
    assert full.status_code == 200 and str(CANARY["bolt"]) in full.text
    basic = base64.b64encode(f"prometheus:{park.tokens['park']}".encode()).decode()
    park_text = (await client.get("/metrics/park", headers={"Authorization": f"Basic {basic}"})).text
    assert "parklink_park_benchmark" in park_text and "temperature" not in park_text
    own = await client.get("/metrics/company/acme", headers=bearer(park.tokens["acme_viewer"]))
    assert str(CANARY["acme"]) in own.text and "bolt" not in own.text
    assert (
        await client.get("/metrics/company/acme", headers=bearer(park.tokens["bolt_viewer"]))
    ).status_code == 404
    assert (await client.get("/metrics/park")).headers["www-authenticate"].startswith("Basic")


def test_asset_ref_path_is_the_url_key() -> None:
    """The asset route's key is `AssetRef.path`, the same string as KPI scopes."""
    ref = AssetRef("acme", "north", "hall", "l1", "acme-m1", "", "press", "plc", None)
    assert ref.path == ACME_ASSET


async def test_history_reads_what_the_kpi_service_saves(client: httpx.AsyncClient, park: Park) -> None:
    start = datetime(2025, 3, 10, 6, tzinfo=UTC).timestamp()
    window = Window("shift:early:2025-03-10", start, start + 8 * 3600, kind="shift")
    save_results(park.db, results_for(park.runtime, "shift", window))  # the service's own upsert
    params = {"from": "2025-03-10T00:00:00Z", "to": "2025-03-11T00:00:00Z", "window": "shift"}
    own = (await get(client, park, "acme_viewer", "/api/v1/companies/acme/kpis/history", **params)).json()
    scopes = {(i["level"], i["scope"]) for i in own["items"]}
    assert ("asset", ACME_ASSET) in scopes and ("area", "acme/north/hall") in scopes
    asset = next(i for i in own["items"] if i["scope"] == ACME_ASSET)
    assert (asset["area"], asset["line"], asset["asset"]) == ("hall", "l1", "acme-m1")
    assert asset["kpis"]["oee"] == pytest.approx(2600 * 8 / (8 * 3600))
    shared = (await get(client, park, "park", "/api/v1/park/view/history", **params)).json()["items"]
    assert {i["level"] for i in shared} >= {"park", "company", "line", "asset"}


def test_demo_tokens_one_per_role(park: Park) -> None:
    tokens = demo_tokens(park.db, park.runtime.park)
    assert set(tokens) == {"park operator", "admin", "acme viewer", "acme operator"}
    roles = {t.name: (t.role, t.company) for t in list_tokens(park.db)}
    assert roles["demo acme operator"] == ("operator", "acme") and roles["demo park operator"] == (
        "park",
        None,
    )
