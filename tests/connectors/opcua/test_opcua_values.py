"""Values carried faithfully, against a real asyncua server exposing every built-in type.

The server (values_server.py) runs as its own process: asyncua registers generated structure
classes process-wide, so only a separate server proves that the connector loads the definitions.
"""

from __future__ import annotations

import logging
import math
import select
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua
from opcua_helpers import bind, connection, free_port, running

from models.status import BAD_DATA_TYPE_ID_UNKNOWN, GOOD

SOURCE = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC).timestamp()
SERVER = datetime(2026, 1, 2, 3, 4, 6, 654321, tzinfo=UTC).timestamp()
POINT = {"X": 1.5, "Y": -2.0, "Label": "p1", "Tags": ["a", "b"]}
STRUCTURES = ("Point", "Pose", "PointArray")

# name on the server -> (value, status) as parklink carries it
VALUES: dict[str, tuple[Any, int]] = {
    "Boolean": (True, GOOD),
    "SByte": (-100, GOOD),
    "Byte": (200, GOOD),
    "Int16": (-30000, GOOD),
    "UInt16": (60000, GOOD),
    "Int32": (-2_000_000_000, GOOD),
    "UInt32": (4_000_000_000, GOOD),
    "Int64": (-(2**62), GOOD),
    "UInt64": (2**63 + 1, GOOD),
    "Float": (1.5, GOOD),
    "Double": (3.141592653589793, GOOD),
    "String": ("Grüße; ns=2", GOOD),
    "EmptyString": ("", GOOD),
    "DateTime": (datetime(2025, 6, 30, 12, 0, 0, 500000, tzinfo=UTC).timestamp(), GOOD),
    "ByteString": (b"\x00\x01\xfe\xff", GOOD),
    "Guid": ("72962b91-fa75-4ae6-8d28-b404dc7daf63", GOOD),
    "LocalizedText": ("Hallo", GOOD),
    "NodeIdValue": ("ns=2;s=x", GOOD),
    "Int32Array": ([1, -2, 3], GOOD),
    "DoubleArray": ([0.5, 1.5], GOOD),
    "StringArray": (["a", "b", ""], GOOD),
    "BooleanArray": ([True, False], GOOD),
    "EmptyArray": ([], GOOD),
    "Uncertain": (7.0, 0x40920000),  # UncertainInitialValue: the value and the full code
    "BadSensor": (None, 0x808C0000),  # BadSensorFailure
    "Point": (POINT, GOOD),
    "Pose": ({"Origin": POINT, "Angle": 0.5}, GOOD),
    "PointArray": ([POINT, POINT], GOOD),
    "Opaque": (None, BAD_DATA_TYPE_ID_UNKNOWN),  # a structure the server has no definition of
}
NAMES = list(VALUES)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """The values server as a process on a free port."""
    port = free_port()
    script = Path(__file__).with_name("values_server.py")
    proc = subprocess.Popen([sys.executable, str(script), str(port)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline() if ready else ""
    try:
        if line.strip() != "READY":
            pytest.fail(f"values server did not start: {line!r}")
        yield f"opc.tcp://127.0.0.1:{port}/values/"
    finally:
        proc.kill()
        proc.wait(5)


def _addresses() -> list[str]:
    return [f"ns=2;s=V.{name}" for name in NAMES]


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float) and isinstance(actual, float):
        return math.isclose(actual, expected, rel_tol=0, abs_tol=1e-6) and type(actual) is type(expected)
    return bool(actual == expected) and type(actual) is type(expected)


async def test_structures_without_definitions(endpoint: str, caplog: pytest.LogCaptureFixture) -> None:
    """load_data_types: false: structures are Bad BadDataTypeIdUnknown, one log line per node."""
    if hasattr(ua, "ParklinkPoint"):
        pytest.skip(reason="an earlier test of this process loaded the definitions (asyncua keeps them)")
    caplog.set_level(logging.WARNING, logger="parklink.opcua")
    signals = bind(_addresses(), "variant")
    async with running(connection(endpoint, load_data_types=False), signals) as (_, sink, health):
        await sink.until(lambda: health.up, 10, "up")
        await sink.until(lambda: len(sink.latest()) == len(NAMES), 5, "every value")
    latest = sink.latest()
    for index, name in enumerate(NAMES):
        if name in (*STRUCTURES, "Opaque"):
            assert (latest[index].value, latest[index].status) == (None, BAD_DATA_TYPE_ID_UNKNOWN), name
        else:
            assert _same(latest[index].value, VALUES[name][0]), (name, latest[index])
    lines = [r.getMessage() for r in caplog.records if r.name == "parklink.opcua"]
    assert len(lines) == 4 and all("BadDataTypeIdUnknown" in line for line in lines), lines


@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_every_type(endpoint: str, mode: str, caplog: pytest.LogCaptureFixture) -> None:
    """Each built-in type, arrays, structures (as dicts), full status codes and both timestamps."""
    caplog.set_level(logging.WARNING, logger="parklink.opcua")
    signals = bind([*_addresses(), "/2:Values/2:Double"], "variant")
    conn = connection(endpoint, mode=mode, poll_interval=0.3)
    async with running(conn, signals) as (_, sink, health):
        await sink.until(lambda: health.up, 10, "up")
        await sink.until(lambda: len(sink.latest()) == len(signals), 5, "every value")
    latest = sink.latest()
    for index, name in enumerate(NAMES):
        sample = latest[index]
        value, status = VALUES[name]
        assert _same(sample.value, value), (name, sample)
        assert sample.status == status, (name, hex(sample.status))
        assert (sample.source_time, sample.server_time) == (SOURCE, SERVER), name
    assert _same(latest[len(NAMES)].value, VALUES["Double"][0])  # the same node, by browse path
    lines = [r.getMessage() for r in caplog.records if r.name == "parklink.opcua"]
    assert len(lines) == 1 and "V.Opaque" in lines[0], lines  # once, not per poll
