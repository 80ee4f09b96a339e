"""Unified Namespace JSON: ISA-95 topics and JSON payloads, as pure functions.

Topics (levels are parklink ids: `[a-z0-9][a-z0-9_-]*`, so never a wildcard or a '/'):
- signal: `<prefix>/<park>/<company>/<site>/<area?>/<line>/<asset>/<signal>`
- KPI:    `<prefix>/<park>/<company>[/<site>[/<area>][/<line>[/<asset>]]]/_kpi/<window>/<kpi>`
- park view: `<prefix>/<park>/_park[/<scope…>]/_kpi/<window>/<kpi>`

`_kpi` and `_park` start with '_', which no parklink id can, so they never collide with a
company, line or signal id (the UMH `_schema` convention, STANDARDS.md §2).

Payloads are JSON objects; every value is JSON-safe (bytes → base64 with `"encoding":"base64"`,
NaN and ±inf → null). `msg_id` is added by `encode` so consumers can drop the duplicates that
at-least-once delivery allows.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Literal

from models.park import SignalRef
from models.sample import Sample, Value
from models.status import name_of, quality_of

QUALITY_NAMES = ("bad", "uncertain", "good")  # indexed by models.status.quality_of
KPI_LEVEL = "_kpi"
PARK_VIEW = "_park"
View = Literal["company", "park"]
JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]
Payload = dict[str, JsonValue]


def _level(name: str, what: str) -> str:
    """Check one topic level: non-empty, no separator, no wildcard."""
    if not name or "/" in name or "+" in name or "#" in name:
        raise ValueError(f"{what} {name!r} cannot be an MQTT topic level")
    return name


def signal_topic(prefix: str, park: str, signal: SignalRef) -> str:
    """The UNS topic of one signal; the area level is left out when the line sits under the site."""
    return f"{prefix}/{park}/{signal.asset.path}/{signal.name}"


def iso(when: float) -> str:
    """POSIX seconds as ISO 8601 UTC with milliseconds, e.g. '2025-01-31T08:00:00.250Z'."""
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_value(value: Value | object) -> tuple[JsonValue, bool]:
    """A value made JSON-safe, and whether bytes were base64-encoded on the way."""
    if value is None or isinstance(value, bool | int | str):
        return value, False
    if isinstance(value, float):
        return (value if math.isfinite(value) else None), False
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii"), True
    if isinstance(value, list | tuple):
        items = [json_value(v) for v in value]
        return [v for v, _ in items], any(b for _, b in items)
    if isinstance(value, dict):  # a decoded OPC UA structure
        fields = {str(k): json_value(v) for k, v in value.items()}
        return {k: v for k, (v, _) in fields.items()}, any(b for _, b in fields.values())
    return str(value), False  # anything else a codec may let through: its text, never a crash


def sample_payload(sample: Sample) -> Payload:
    """The JSON object of one sample (without msg_id, which `encode` adds)."""
    value, b64 = json_value(sample.value)
    payload: Payload = {
        "value": value,
        "quality": QUALITY_NAMES[quality_of(sample.status)],
        "status": sample.status,
        "status_name": name_of(sample.status),
        "source_time": iso(sample.source_time),
        "server_time": iso(sample.server_time),
    }
    if b64:
        payload["encoding"] = "base64"
    return payload


def _scope(scope: Sequence[str] | str) -> list[str]:
    """Scope levels from a tuple or an 'acme/north/l1' path; empty levels (no area) dropped."""
    parts = scope.split("/") if isinstance(scope, str) else scope
    return [_level(s, "scope level") for s in parts if s]


def kpi_topic(prefix: str, park: str, scope: Sequence[str] | str, window: str, kpi: str, view: View) -> str:
    """The topic of one KPI of one scope (company … asset path, tuple or 'a/b' string) and window."""
    levels = _scope(scope)
    if view == "park":
        levels.insert(0, PARK_VIEW)
    elif not levels:
        raise ValueError("a park-wide KPI (empty scope) belongs to the park view: view='park'")
    path = "/".join((prefix, park, *levels, KPI_LEVEL, _level(window, "window"), _level(kpi, "KPI")))
    return path


def kpi_messages(
    prefix: str,
    park: str,
    scope: Sequence[str] | str,
    window: str,
    kpis: Mapping[str, float | None],
    *,
    time: float,
    view: View = "company",
    start: float | None = None,
    end: float | None = None,
    extra: Mapping[str, JsonValue] | None = None,
) -> list[tuple[str, Payload]]:
    """One (topic, payload) per KPI of one scope and window; `coverage` rides along in each payload.

    `scope` is the ISA-95 path below the park: (), (company,), (company, site), … (company, site,
    area, line, asset); empty levels (no area) are skipped. The caller passes only what the
    company's sharing policy allows; with `view="park"` the messages go under `_park`, the one
    subtree park-level consumers are granted (broker ACLs can then stop at that level).
    None KPIs (undefined: no denominator, uncounted) are published as null, not left out.
    `extra` fields go into every payload (e.g. `{"companies": 4, "window_label": "2025-01-31"}`).
    """
    coverage = kpis.get("coverage")
    path = "/".join(_scope(scope))
    common: Payload = {**(extra or {}), "window": window, "scope": path, "time": iso(time)}
    if coverage is not None:
        common["coverage"] = json_value(coverage)[0]
    else:
        common["coverage"] = None
    if start is not None:
        common["start"] = iso(start)
    if end is not None:
        common["end"] = iso(end)
    out: list[tuple[str, Payload]] = []
    for name, value in kpis.items():
        if name == "coverage":
            continue
        payload: Payload = {"kpi": name, "value": json_value(value)[0], **common}
        out.append((kpi_topic(prefix, park, scope, window, name, view), payload))
    return out


def encode(payload: Payload, msg_id: str) -> bytes:
    """The wire form: compact JSON, with the message id added."""
    payload["msg_id"] = msg_id
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def decode(data: bytes) -> Payload:
    """Parse a UNS JSON payload; ValueError if it is not a JSON object."""
    payload = json.loads(data)
    if not isinstance(payload, dict):
        raise ValueError("UNS payload is not a JSON object")
    return payload


def parse_iso(text: str) -> float:
    """POSIX seconds of an ISO 8601 time written by `iso`."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
