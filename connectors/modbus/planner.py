"""The read plan: which requests one poll sends, computed once when the connector starts.

Bindings are grouped by (unit id, table), sorted by address and merged greedily: a range joins the
current request while the request's span stays within the per-request limit and the hole it would
bridge is at most `max_gap` registers (bits for coils and discrete inputs) and, where the device's
readable ranges are known, lies inside one of them. A request never crosses a unit or a table. For
ranges sorted by start this greedy merge sends the fewest requests possible (the tests compare it
with a brute-force minimum, the benchmark with an exact dynamic programme).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from connectors.modbus.config import BIT_TABLES, Table

_FUNCTION_CODES: dict[str, int] = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}


@dataclass(frozen=True, slots=True)
class Item:
    """One bound range: `key` is the caller's id for it (the signal's position)."""

    key: int
    unit_id: int
    table: Table
    address: int  # wire address, 0-based
    count: int  # registers, or bits for coils and discrete inputs


@dataclass(frozen=True, slots=True)
class Request:
    """One read request and the items it carries, each with its offset into the response."""

    unit_id: int
    table: Table
    address: int
    count: int
    items: tuple[tuple[int, int], ...]  # (key, offset)

    function_code: int = field(init=False, repr=False, compare=False)  # the code that reads this table

    def __post_init__(self) -> None:
        object.__setattr__(self, "function_code", _FUNCTION_CODES[self.table])

    @property
    def label(self) -> str:
        """'unit 1 holding 0+31', for messages."""
        return f"unit {self.unit_id} {self.table} {self.address}+{self.count}"


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-request limits of a connection."""

    max_registers: int = 125
    max_bits: int = 2000
    max_gap: int = 10

    def span_limit(self, table: str) -> int:
        """How many registers or bits one request of this table may read."""
        return self.max_bits if table in BIT_TABLES else self.max_registers


@dataclass(frozen=True, slots=True)
class Plan:
    """The requests of one poll, plus items that no request can carry (with the reason)."""

    requests: tuple[Request, ...]
    rejected: tuple[tuple[int, str], ...] = ()


class Readable:
    """Where a request may read addresses that no binding uses (wire addresses, end exclusive).

    Ranges are given per (unit id, table); a range with unit None applies to every unit. A (unit,
    table) with no range at all is unrestricted: only `max_gap` limits what is bridged there.
    """

    def __init__(self, ranges: Iterable[tuple[int | None, str, int, int]] = ()) -> None:
        self._ranges: dict[tuple[int | None, str], list[tuple[int, int]]] = defaultdict(list)
        for unit, table, start, end in ranges:
            self._ranges[(unit, table)].append((start, end))

    def spans(self, unit: int, table: str) -> list[tuple[int, int]] | None:
        """Merged, sorted readable spans of one unit's table; None if unrestricted."""
        raw = self._ranges.get((None, table), []) + self._ranges.get((unit, table), [])
        if not raw:
            return None
        merged: list[tuple[int, int]] = []
        for start, end in sorted(raw):
            if merged and start <= merged[-1][1]:  # overlapping or touching: one span
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged


def _inside(spans: list[tuple[int, int]] | None, start: int, end: int) -> bool:
    """Is [start, end) inside one span (always, if unrestricted or empty)?"""
    if spans is None or start >= end:
        return True
    i = bisect.bisect_right(spans, (start, 65537)) - 1
    return i >= 0 and spans[i][0] <= start and end <= spans[i][1]


def plan_requests(items: Iterable[Item], limits: Limits = Limits(), readable: Readable | None = None) -> Plan:
    """Merge bound ranges into the fewest requests the limits (and readable ranges) allow."""
    groups: dict[tuple[int, str], list[Item]] = defaultdict(list)
    rejected: list[tuple[int, str]] = []
    for item in items:
        limit = limits.span_limit(item.table)
        if item.count > limit:
            reason = f"{item.count} {_unit(item.table)} exceed the limit of {limit} per request"
            rejected.append((item.key, reason))
        elif item.address < 0 or item.address + item.count > 65536:
            rejected.append((item.key, f"address {item.address} is outside 0..65535"))
        else:
            groups[(item.unit_id, item.table)].append(item)
    requests: list[Request] = []
    for (unit, table), group in sorted(groups.items()):
        spans = readable.spans(unit, table) if readable else None
        requests.extend(_merge(group, limits.span_limit(table), limits.max_gap, spans))
    return Plan(tuple(requests), tuple(rejected))


def _merge(group: list[Item], limit: int, max_gap: int, spans: list[tuple[int, int]] | None) -> list[Request]:
    group = sorted(group, key=lambda it: (it.address, it.count, it.key))
    out: list[Request] = []
    members: list[Item] = []
    start = end = 0
    for item in group:
        item_end = item.address + item.count
        # Overlapping items give a negative gap; the span check keeps the request within the limit.
        if (
            members
            and max(end, item_end) - start <= limit
            and item.address - end <= max_gap
            and _inside(spans, end, item.address)  # the hole, if any, must be readable
        ):
            members.append(item)
            end = max(end, item_end)
            continue
        if members:
            out.append(_request(members, start, end))
        members, start, end = [item], item.address, item_end
    if members:
        out.append(_request(members, start, end))
    return out


def _request(members: list[Item], start: int, end: int) -> Request:
    first = members[0]
    items = tuple((it.key, it.address - start) for it in members)
    return Request(first.unit_id, first.table, start, end - start, items)


def _unit(table: str, n: int = 2) -> str:
    word = "bit" if table in BIT_TABLES else "register"
    return word if n == 1 else word + "s"


def covered(request: Request, counts: Mapping[int, int]) -> int:
    """Registers (or bits) of a request that some item uses; the rest is gap fill."""
    used: set[int] = set()
    for key, offset in request.items:
        used.update(range(offset, offset + counts[key]))
    return len(used)


def describe(
    plan: Plan,
    names: Mapping[int, str] | None = None,
    counts: Mapping[int, int] | None = None,
    addressing: int = 0,
) -> str:
    """A human-readable plan for integrators: one line per request, then what each carries.

    `names` labels items (default: their key); with `counts` the unbound registers a request reads
    ("fill") are shown; `addressing` = 1 prints addresses 1-based, as the config wrote them.
    """
    names = names or {}
    n_items = sum(len(r.items) for r in plan.requests)
    units = sorted({r.unit_id for r in plan.requests})
    lines = [
        f"{len(plan.requests)} request(s) per poll for {n_items} binding(s) on {len(units)} unit(s)"
        + (" (addresses 1-based)" if addressing else "")
    ]
    for n, req in enumerate(plan.requests, 1):
        first, last = req.address + addressing, req.address + req.count - 1 + addressing
        fill = f", {req.count - covered(req, counts)} unused" if counts is not None else ""
        lines.append(
            f"  #{n} unit {req.unit_id} FC{req.function_code} {req.table} {first}..{last} "
            f"({req.count} {_unit(req.table, req.count)}{fill})"
        )
        for key, offset in req.items:
            lines.append(f"      +{offset:<4} {names.get(key, str(key))}")
    for key, reason in plan.rejected:
        lines.append(f"  not read: {names.get(key, str(key))}: {reason}")
    return "\n".join(lines)
