"""The recorded-samples CSV: one sample per row, read lazily with the line of every problem.

    timestamp,asset,signal,value,quality
    2026-03-02T06:00:00+01:00,acme/north/line-1/mill-1,state,3,good

- `timestamp`: ISO 8601 with a UTC offset (or `Z`), or POSIX seconds; it is the source time.
- `asset`: the asset path as parklink prints it (`company/site[/area]/line/asset`).
- `signal`: the signal name of the asset's type; `value`: a number, `true`/`false`, or text.
- `quality`: `good` (default when empty), `uncertain`, `bad`, or an OPC UA status code
  (`0x80310000`, or a name such as `BadNoCommunication`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from models import status
from models.sample import Value

FIELDS = ("timestamp", "asset", "signal", "value", "quality")
_QUALITY = {"": status.GOOD, "good": status.GOOD, "uncertain": status.UNCERTAIN, "bad": status.BAD}
_BY_NAME = {name.lower(): code for code, name in status.NAMES.items()}


class SampleFileError(ValueError):
    """A sample file that cannot be read; the message names the file and the line."""


class Row(NamedTuple):
    """One recorded sample, not yet bound to a signal index."""

    where: str  # file:line, for messages
    time: float
    key: tuple[str, str]  # (asset path, signal name)
    value: Value
    status: int


def parse_time(text: str) -> float:
    """ISO 8601 with an offset, or POSIX seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset (write e.g. 2026-03-02T06:00:00+01:00)")
    return moment.timestamp()


def parse_value(text: str) -> Value:
    """Empty → None, true/false → bool, integers → int, other numbers → float, else the text."""
    lowered = text.strip().lower()
    if lowered in ("", "null", "none"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in lowered else number


def parse_status(text: str) -> int:
    """good/uncertain/bad, a status code name, or a number (0x80310000)."""
    lowered = text.strip().lower()
    if lowered in _QUALITY:
        return _QUALITY[lowered]
    if lowered in _BY_NAME:
        return _BY_NAME[lowered]
    return int(lowered, 0)


def read_rows(path: Path) -> Iterator[Row]:
    """Every row of the file, in file order; SampleFileError (file:line: why) on a bad one."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise SampleFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or set(FIELDS) - set(reader.fieldnames):
            raise SampleFileError(f"{path}:1: header must have the columns {', '.join(FIELDS)}")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            try:
                t = parse_time(row["timestamp"] or "")
                code = parse_status(row["quality"] or "")
            except ValueError as exc:
                raise SampleFileError(f"{where}: {exc}") from None
            key = ((row["asset"] or "").strip(), (row["signal"] or "").strip())
            yield Row(where, t, key, parse_value(row["value"] or ""), code)
