"""Property-based fuzz of the API from its own OpenAPI document (schemathesis, in process).

Every operation gets generated requests, valid (positive) and invalid (negative), sent with valid
tokens (admin: every route reachable; a company operator: the 403/404 paths). No answer may be a
5xx; answers to valid requests must match the documented status codes and response schemas.
Bounded: a few examples per operation and mode, no deadline; the whole run well under 60 s.
(schemathesis' lazy pytest integration does not run on pytest 9, hence hypothesis by hand.)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.exporters.http.conftest import make_park

EXAMPLES = 12
CHECKS: dict[GenerationMode, list[Any]] = {
    GenerationMode.POSITIVE: [not_a_server_error, status_code_conformance, response_schema_conformance],
    GenerationMode.NEGATIVE: [not_a_server_error],
}


# Real resources, so that generated queries and bodies also meet existing data, not only 404s.
KNOWN = {"company": "acme", "path": "acme/north/hall/l1/acme-m1", "name": "setpoint"}


def fuzz(
    operation: Any, mode: GenerationMode, checks: list[Any], tokens: list[str], known: dict[str, str] | None
) -> None:
    """Run one operation's generated cases in one mode (path parameters generated, or `known`)."""

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=known))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        for token in tokens:
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=checks)

    run()


def test_api_fuzz(tmp_path: Path, sqlite_db: Any) -> None:
    park = make_park(tmp_path, sqlite_db)
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", park.app)
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 15
    tokens = [park.tokens["admin"], park.tokens["acme_operator"]]
    for operation in operations:
        names = {p.name for p in operation.path_parameters}
        for mode, checks in CHECKS.items():
            fuzz(operation, mode, checks, tokens, None)
            if names:
                fuzz(operation, mode, checks, tokens, {k: v for k, v in KNOWN.items() if k in names})
    assert time.monotonic() - started < 60
