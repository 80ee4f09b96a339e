"""A connection's whole read schedule: one plan per poll group, built once at start, and its text.

Bindings are split by poll group (`poll_group`, default: every `poll_interval`); each group gets its
own plan from the planner and its own timer in the connector, all on the one shared client. What
cannot be read is listed with the reason (an address that does not exist, an unknown poll group, a
unit id no serial device can have, a range over the request limit) and reported BadNotSupported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from connectors.base import BoundSignal
from connectors.modbus.binding import DEFAULT_GROUP, ModbusBinding
from connectors.modbus.config import ModbusConnection
from connectors.modbus.planner import Item, Limits, Plan, Readable, Request, describe, plan_requests
from connectors.modbus.transport import request_gap


@dataclass(slots=True)
class PollGroup:
    """Requests polled together every `interval` seconds (indices into the schedule's plan)."""

    name: str
    interval: float
    requests: tuple[int, ...]
    rejected: tuple[int, ...] = ()  # signal keys reported BadNotSupported in this group's batches
    polls: int = 0
    overruns: int = 0


@dataclass(frozen=True, slots=True)
class Schedule:
    """Every request of the connection (`plan`), the poll groups, and notes for integrators."""

    plan: Plan
    groups: tuple[PollGroup, ...]
    notes: tuple[str, ...] = ()


def build_schedule(conn: ModbusConnection, signals: Sequence[BoundSignal]) -> Schedule:
    """Plan every poll group of a connection; no I/O."""
    items: dict[str, list[Item]] = defaultdict(list)
    rejected: list[tuple[int, str]] = []
    readable = Readable(
        (r.unit_id, r.table, r.start - conn.addressing, r.end - conn.addressing + 1)
        for r in conn.readable_ranges
    )
    notes: list[str] = []
    for key, signal in enumerate(signals):
        b: ModbusBinding = signal.binding
        address = b.address - conn.addressing
        reason = _unreadable(conn, b, address)
        if reason:
            rejected.append((key, reason))
            continue
        items[b.group].append(Item(key, b.unit_id, b.table, address, b.words))
        spans = readable.spans(b.unit_id, b.table)
        if spans is not None and not any(s <= address and address + b.words <= e for s, e in spans):
            notes.append(f"{signal.path} lies outside the readable ranges of unit {b.unit_id} {b.table}")
    limits = Limits(conn.max_registers_per_request, conn.max_bits_per_request, conn.max_gap)
    names = [DEFAULT_GROUP, *sorted(n for n in conn.poll_groups if n in items)]
    if not items[DEFAULT_GROUP] and len(names) > 1:
        names.remove(DEFAULT_GROUP)
    requests: list[Request] = []
    groups: list[PollGroup] = []
    for name in names:
        plan = plan_requests(items[name], limits, readable)
        rejected.extend(plan.rejected)
        first = len(requests)
        requests.extend(plan.requests)
        interval = conn.poll_groups.get(name, conn.poll_interval)
        groups.append(PollGroup(name, interval, tuple(range(first, len(requests)))))
    groups[0].rejected = tuple(key for key, _ in rejected)
    return Schedule(Plan(tuple(requests), tuple(rejected)), tuple(groups), tuple(notes))


def _unreadable(conn: ModbusConnection, b: ModbusBinding, address: int) -> str:
    if address < 0:
        return "address 0 does not exist with 1-based addressing"
    if b.poll_group is not None and b.poll_group != DEFAULT_GROUP and b.poll_group not in conn.poll_groups:
        defined = ", ".join(sorted(conn.poll_groups)) or "none defined"
        return f"poll group {b.poll_group!r} is not in the connection's poll_groups ({defined})"
    if conn.transport == "rtu" and not 1 <= b.unit_id <= 247:
        return f"unit id {b.unit_id} cannot answer on a serial line (1-247; 0 is broadcast)"
    return ""


def explain(conn: ModbusConnection, schedule: Schedule, signals: Sequence[BoundSignal]) -> str:
    """The read schedule for integrators (`parklink validate --explain`)."""
    names = {k: s.path for k, s in enumerate(signals)}
    counts = {k: s.binding.words for k, s in enumerate(signals)}
    plan, groups = schedule.plan, schedule.groups
    if len(groups) == 1 and groups[0].name == DEFAULT_GROUP:
        lines = [describe(plan, names, counts, conn.addressing)]
    else:
        units = len({r.unit_id for r in plan.requests})
        n_items = sum(len(r.items) for r in plan.requests)
        lines = [
            f"{len(plan.requests)} request(s) in {len(groups)} poll groups for {n_items} binding(s) "
            f"on {units} unit(s)"
        ]
        for g in groups:
            sub = Plan(tuple(plan.requests[i] for i in g.requests))
            text = describe(sub, names, counts, conn.addressing)
            lines.append(f"poll group {g.name}, every {g.interval:g} s: {text}")
        lines.extend(f"  not read: {names[k]}: {reason}" for k, reason in plan.rejected)
    lines.extend(f"  note: {note}" for note in schedule.notes)
    gap = request_gap(conn)
    pause = f", {gap * 1000:.3g} ms between requests" if gap else ""
    lines.append(f"link: {conn.transport} {conn.endpoint}, timeout {conn.timeout:g} s{pause}")
    return "\n".join(lines)
