"""Authentication: login throttling per address, the session cookie, anonymous /metrics, token stores."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from exporters.http import HttpSettings, create_app, create_token
from exporters.http.auth import COOKIE
from exporters.http.context import Context
from exporters.http.ratelimit import MAX_ADDRESSES, FailedLogins
from models.store import make_engine
from tests.exporters.http.conftest import Park, bearer, make_park
from tests.exporters.http.helpers import build_runtime, seed


def client(park: Park, address: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=park.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_failed_logins_are_throttled_per_address(sqlite_park: Park) -> None:
    context: Context = sqlite_park.app.state.parklink
    clock = Clock()
    context.limiter = FailedLogins(10, clock=clock)
    good = bearer(sqlite_park.tokens["admin"])
    async with client(sqlite_park, "10.0.0.1") as attacker, client(sqlite_park, "10.0.0.2") as bystander:
        for _ in range(10):
            assert (await attacker.get("/api/v1/me", headers=bearer("plk_guess"))).status_code == 401
        blocked = await attacker.get("/api/v1/me", headers=bearer("plk_guess"))
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) == 60
        assert blocked.json() == {"detail": "too many failed logins"}
        # a valid token from the same address is refused too: otherwise 200 vs 429 answers the guess
        assert (await attacker.get("/api/v1/me", headers=good)).status_code == 429
        assert (await attacker.get("/metrics/park", headers=good)).status_code == 429
        assert (await attacker.post("/dashboard/login", data={"token": "plk_x"})).status_code == 429
        assert (await attacker.get("/api/v1/me")).status_code == 401  # no credentials: not a guess
        assert (await bystander.get("/api/v1/me", headers=good)).status_code == 200
        clock.now += 61
        assert (await attacker.get("/api/v1/me", headers=good)).status_code == 200


def test_failure_memory_is_bounded() -> None:
    clock = Clock()
    limiter = FailedLogins(3, clock=clock)
    for i in range(MAX_ADDRESSES + 10):
        limiter.failed(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(limiter._failures) == MAX_ADDRESSES
    assert "10.0.0.0" not in limiter._failures  # the first to fail was forgotten first
    for _ in range(3):
        limiter.failed("10.250.0.1")
    assert limiter.retry_after("10.250.0.1") == 60


async def test_dashboard_login_sets_a_strict_httponly_cookie_the_api_ignores(sqlite_park: Park) -> None:
    async with client(sqlite_park) as c:
        page = await c.get("/dashboard/login")
        assert page.status_code == 200 and 'name="viewport"' in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        refused = await c.post("/dashboard/login", data={"token": "plk_nope"})
        assert refused.status_code == 401 and COOKIE not in refused.headers.get("set-cookie", "")
        done = await c.post("/dashboard/login", data={"token": sqlite_park.tokens["park"]})
        assert done.status_code == 303 and done.headers["location"] == "/dashboard"
        cookie = done.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
        assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
        assert (await c.get("/dashboard")).headers["location"] == "/dashboard/park"
        assert (await c.get("/dashboard/park")).status_code == 200
        assert (await c.get("/api/v1/me")).status_code == 401  # the API takes bearer headers only
        foreign = await c.post(
            "/dashboard/login", data={"token": "x"}, headers={"Origin": "https://evil.example"}
        )
        assert foreign.status_code == 403
        out = await c.post("/dashboard/logout")
        assert out.status_code == 303 and 'parklink_session=""' in out.headers["set-cookie"]
        c.cookies.clear()
        assert (await c.get("/dashboard/park")).headers["location"] == "/dashboard/login"


async def test_cookie_is_secure_behind_tls(tmp_path: Path, sqlite_db: object) -> None:
    park = make_park(tmp_path, sqlite_db, HttpSettings(cookie_secure="always"))  # type: ignore[arg-type]
    async with client(park) as c:
        done = await c.post("/dashboard/login", data={"token": park.tokens["admin"]})
        assert "Secure" in done.headers["set-cookie"]


async def test_pages_load_nothing_from_elsewhere(sqlite_park: Park) -> None:
    async with client(sqlite_park) as c:
        for who, url in (("park", "/dashboard/park"), ("acme_viewer", "/dashboard/company/acme")):
            page = await c.get(url, headers={"Cookie": f"{COOKIE}={sqlite_park.tokens[who]}"})
            assert page.status_code == 200
            assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text), url
            assert "<script" not in page.text
        docs = await c.get("/api/v1/docs")
        assert "GET /api/v1/park/view" in docs.text and "<script" not in docs.text


async def test_full_metrics_open_on_loopback_only_when_configured(tmp_path: Path, sqlite_db: object) -> None:
    park = make_park(tmp_path, sqlite_db, HttpSettings(full_metrics="open_on_loopback"))  # type: ignore[arg-type]
    async with client(park, "127.0.0.1") as local, client(park, "192.0.2.7") as remote:
        assert (await local.get("/metrics")).status_code == 200
        assert (await remote.get("/metrics")).status_code == 401
        assert (await local.get("/metrics/park")).status_code == 401  # the other views always need tokens
    (tmp_path / "x").mkdir()
    other_db = make_engine(f"sqlite:///{tmp_path}/x/http.db")
    exposed = make_park(
        tmp_path / "x", other_db, HttpSettings(host="0.0.0.0", full_metrics="open_on_loopback")
    )
    async with client(exposed, "127.0.0.1") as local:
        assert (await local.get("/metrics")).status_code == 401  # bound beyond loopback: token needed


async def test_tokens_in_their_own_store(tmp_path: Path, sqlite_db: object) -> None:
    runtime = build_runtime(tmp_path)
    seed(runtime, sqlite_db)  # type: ignore[arg-type]
    url = f"sqlite:///{tmp_path}/tokens.db"
    token = create_token(make_engine(url), "park")
    app = create_app(runtime, HttpSettings(token_database=url))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/api/v1/me", headers=bearer(token))).json()["role"] == "park"


async def test_no_database_yet_is_503(tmp_path: Path) -> None:
    app = create_app(build_runtime(tmp_path))  # runtime not started: no engine
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/api/v1/me", headers=bearer("plk_x"))).status_code == 503


async def test_lost_database_is_503_without_driver_text(tmp_path: Path) -> None:
    runtime = build_runtime(tmp_path)
    runtime.engine = make_engine("postgresql://nobody@127.0.0.1:9/none")  # nothing listens on port 9
    app = create_app(runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        answer = await c.get("/api/v1/me", headers=bearer("plk_x"))
    assert answer.status_code == 503 and answer.json() == {"detail": "database not available"}
