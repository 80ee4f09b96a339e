"""Fixtures of the edge/hub tests: a fresh PostgreSQL database for the hub, the recorded samples."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.brokers import broker, private_broker
from tests.conftest import need_server
from tests.orchestrator.hub.parks import write_samples

__all__ = ["broker", "private_broker"]  # fixtures for this folder


@pytest.fixture
def hub_database() -> Iterator[str]:
    """The URL of a database of its own on the real PostgreSQL, dropped afterwards."""
    need_server("PostgreSQL", "127.0.0.1", 5432)
    name = f"parklink_hub_{secrets.token_hex(4)}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def samples(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    path = tmp_path / "samples.csv"
    return path, write_samples(path)
