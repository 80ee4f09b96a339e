"""Fixtures: the test park's runtime on SQLite and on the real PostgreSQL, tokens per role, a client."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, text
from sqlmodel import create_engine

from exporters.http import HttpSettings, create_app, create_token
from models.store import make_engine
from orchestrator.runtime import Runtime
from tests.conftest import POSTGRES_URL, need_server
from tests.exporters.http.helpers import build_runtime, seed


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """SQLite in a temp file, or the real PostgreSQL in a schema of its own (other tests drop tables)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path}/http.db")
        yield engine
        engine.dispose()
        return
    need_server("PostgreSQL", "127.0.0.1", 5432)
    schema = f"http_test_{secrets.token_hex(4)}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = "postgresql+psycopg://" + POSTGRES_URL.split("://", 1)[1]
    engine = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Engine]:
    """SQLite only, for tests whose subject is not persistence."""
    engine = make_engine(f"sqlite:///{tmp_path}/http.db")
    yield engine
    engine.dispose()


@dataclass
class Park:
    """A seeded runtime, its app and one token per principal of the matrix."""

    runtime: Runtime
    app: FastAPI
    db: Engine
    tokens: dict[str, str]


PRINCIPALS = {  # name → (role, company)
    "acme_viewer": ("viewer", "acme"),
    "acme_operator": ("operator", "acme"),
    "bolt_viewer": ("viewer", "bolt"),
    "park": ("park", None),
    "admin": ("admin", None),
}


def make_park(tmp_path: Path, db: Engine, settings: HttpSettings | None = None) -> Park:
    """Build, seed and wrap the test park."""
    runtime = build_runtime(tmp_path)
    seed(runtime, db)
    tokens = {name: create_token(db, role, company) for name, (role, company) in PRINCIPALS.items()}
    return Park(runtime, create_app(runtime, settings), db, tokens)


@pytest.fixture
def park(tmp_path: Path, db: Engine) -> Park:
    """The test park on each database."""
    return make_park(tmp_path, db)


@pytest.fixture
def sqlite_park(tmp_path: Path, sqlite_db: Engine) -> Park:
    """The test park on SQLite."""
    return make_park(tmp_path, sqlite_db)


def client_for(app: FastAPI) -> httpx.AsyncClient:
    """An httpx client calling the ASGI app in process (peer address 127.0.0.1)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
async def client(park: Park) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(park.app) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    """The authorization header of a token."""
    return {"Authorization": f"Bearer {token}"}
