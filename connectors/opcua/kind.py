"""Registration of the OPC UA connector kind: its connection model, binding validator and factory."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from connectors.base import BoundSignal, ConnectorKind, LinkHealth
from connectors.common.simulated_machine import SimulatedMachine
from connectors.opcua.codec import BrowsePathAddress, parse_address
from connectors.opcua.config import OpcUaBinding, OpcUaConnection
from connectors.opcua.connector import OpcUaConnector
from connectors.opcua.groups import plan_groups
from connectors.opcua.simulator import OpcUaSimulator
from models.assets import DataType


def validate_binding(raw: dict[str, Any], data_type: DataType) -> OpcUaBinding:
    """Validate one signal's binding; raises pydantic ValidationError so the caller can add the path."""
    del data_type  # every parklink type can sit in a Variant; the server's type is checked at write time
    return OpcUaBinding.model_validate(raw)


def create(conn: OpcUaConnection, signals: Sequence[BoundSignal], health: LinkHealth) -> OpcUaConnector:
    """A connector for one OPC UA server; does no I/O until `run`."""
    return OpcUaConnector(conn, signals, health)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def explain(conn: OpcUaConnection, signals: Sequence[BoundSignal]) -> str:
    """What the connector will ask the server for (`parklink validate --explain`); no I/O."""
    bindings: list[OpcUaBinding] = [s.binding for s in signals]
    groups, unknown = plan_groups(conn, bindings)
    security = "none" if conn.security_policy == "None" else f"{conn.security_policy}/{conn.security_mode}"
    identity = (
        f"user {conn.username!r}"
        if conn.username
        else "user certificate"
        if conn.user_certificate
        else "anonymous"
    )
    batch = conn.subscribe_batch_size
    lines = [
        f"{conn.endpoint}: security {security}, identity {identity}, one session",
        f"batch size {batch} (items per CreateMonitoredItems, nodes per Read / TranslateBrowsePaths), "
        "lowered to the server's OperationLimits at connect",
    ]
    if any(isinstance(parse_address(b.address), BrowsePathAddress) for b in bindings):
        lines.append("browse paths are translated to node ids at every connect")
    for group in groups:
        count = len(group.slots)
        calls = math.ceil(count / batch)
        if group.mode == "subscribe":
            keepalive = group.keepalive_count(conn.watchdog_interval) * group.publishing_interval / 1000
            lines.append(
                f"subscription {group.name!r}: publishing interval {group.publishing_interval:g} ms, "
                f"{_plural(count, 'monitored item')} in {_plural(calls, 'CreateMonitoredItems call')}, "
                f"keep-alive every {keepalive:g} s"
            )
        else:
            lines.append(
                f"poll group {group.name!r}: every {group.poll_interval:g} s, "
                f"{_plural(count, 'node')} in {_plural(calls, 'Read')} per poll"
            )
        usual = Counter(group.params).most_common(1)[0][0]
        if group.mode == "subscribe":
            lines.append(f"  items: {usual.describe()}")
        for slot, params in zip(group.slots, group.params, strict=True):
            signal = signals[slot]
            extra = f"  [{params.describe()}]" if group.mode == "subscribe" and params != usual else ""
            writable = "  (writable)" if bindings[slot].writable else ""
            lines.append(f"  {bindings[slot].address}  -> {signal.path}{extra}{writable}")
    for slot, why in sorted(unknown.items()):
        lines.append(f"NOT READ: {signals[slot].path}: {why} (Bad BadConfigurationError)")
    return "\n".join(lines)


def simulate(conn: OpcUaConnection, machines: Sequence[SimulatedMachine]) -> OpcUaSimulator:
    """An asyncua server at the connection's endpoint serving `machines` (demo and tests)."""
    return OpcUaSimulator(conn.endpoint, machines)


def check_binding(conn: OpcUaConnection, binding: OpcUaBinding) -> tuple[str, str] | None:
    """A binding's group must be one of its connection's groups."""
    if binding.group is not None and binding.group not in conn.groups:
        known = ", ".join(sorted(conn.groups)) or "none declared"
        return "group", f"connection has no group {binding.group!r} (groups: {known})"
    return None


KIND = ConnectorKind(
    name="opcua",
    connection_model=OpcUaConnection,
    validate_binding=validate_binding,
    create=create,
    explain=explain,
    simulate=simulate,
    check_binding=check_binding,
)
