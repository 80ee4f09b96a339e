"""Which signal goes into which Subscription (or poll loop), with which monitored-item settings.

Pure planning, no I/O: the connector builds its Subscriptions from it, `explain` prints it. A
binding's own settings win over its group's, which win over the connection's. Signals without a
`group` are in the group 'default', which is the connection's own settings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from asyncua import ua

from connectors.opcua.config import (
    DEFAULT_GROUP,
    DeadbandType,
    Mode,
    OpcUaBinding,
    OpcUaConnection,
    OpcUaGroup,
    Trigger,
)

T = TypeVar("T")
_TRIGGERS = {
    "status": ua.DataChangeTrigger.Status,
    "status_value": ua.DataChangeTrigger.StatusValue,
    "status_value_timestamp": ua.DataChangeTrigger.StatusValueTimestamp,
}
_DEADBANDS = {
    "none": ua.DeadbandType.None_,
    "absolute": ua.DeadbandType.Absolute,
    "percent": ua.DeadbandType.Percent,
}


@dataclass(frozen=True, slots=True)
class ItemParams:
    """The monitored-item settings of one signal."""

    sampling_interval: float
    queue_size: int
    discard_oldest: bool
    trigger: Trigger
    deadband_type: DeadbandType
    deadband_value: float

    def data_change_filter(self) -> ua.DataChangeFilter | None:
        """The DataChangeFilter to request; None for the server's default (status_value, no deadband)."""
        if self.trigger == "status_value" and self.deadband_type == "none":
            return None
        return ua.DataChangeFilter(
            Trigger=_TRIGGERS[self.trigger],
            DeadbandType=_DEADBANDS[self.deadband_type],
            DeadbandValue=self.deadband_value if self.deadband_type != "none" else 0.0,
        )

    def describe(self) -> str:
        text = f"sampling {self.sampling_interval:g} ms, queue {self.queue_size}"
        if self.queue_size > 1:
            text += ", discard oldest" if self.discard_oldest else ", discard newest"
        if self.trigger != "status_value":
            text += f", trigger {self.trigger}"
        if self.deadband_type != "none":
            unit = " %" if self.deadband_type == "percent" else ""
            text += f", {self.deadband_type} deadband {self.deadband_value:g}{unit}"
        return text


@dataclass(slots=True)
class Group:
    """One Subscription (subscribe mode) or one poll loop (poll mode) and its signals."""

    name: str
    mode: Mode
    publishing_interval: float  # ms
    poll_interval: float  # s
    slots: list[int] = field(default_factory=list)  # indexes into the connector's signals
    params: list[ItemParams] = field(default_factory=list)  # per slot, same order

    def keepalive_count(self, watchdog_interval: float) -> int:
        """Publishing intervals between keep-alives: about one per watchdog interval."""
        return max(1, math.ceil(watchdog_interval * 1000 / self.publishing_interval))


def _first(*values: T | None) -> T:
    for value in values:
        if value is not None:
            return value
    raise AssertionError("the connection always has a value")


def item_params(conn: OpcUaConnection, group: OpcUaGroup | None, binding: OpcUaBinding) -> ItemParams:
    """The binding's settings, else its group's, else the connection's."""
    g = group or OpcUaGroup()
    return ItemParams(
        sampling_interval=_first(binding.sampling_interval, g.sampling_interval, conn.sampling_interval),
        queue_size=_first(binding.queue_size, g.queue_size, conn.queue_size),
        discard_oldest=_first(binding.discard_oldest, g.discard_oldest, conn.discard_oldest),
        trigger=_first(binding.trigger, g.trigger, conn.trigger),
        deadband_type=_first(binding.deadband_type, g.deadband_type, conn.deadband_type),
        deadband_value=_first(binding.deadband_value, g.deadband_value, conn.deadband_value),
    )


def plan_groups(
    conn: OpcUaConnection, bindings: Sequence[OpcUaBinding]
) -> tuple[list[Group], dict[int, str]]:
    """The non-empty groups ('default' first, then as declared) and the slots naming no known group."""
    groups: dict[str, Group] = {
        DEFAULT_GROUP: Group(DEFAULT_GROUP, conn.mode, conn.publishing_interval, conn.poll_interval)
    }
    for name, spec in conn.groups.items():
        groups[name] = Group(
            name,
            spec.mode or conn.mode,
            _first(spec.publishing_interval, conn.publishing_interval),
            _first(spec.poll_interval, conn.poll_interval),
        )
    unknown: dict[int, str] = {}
    shared: dict[ItemParams, ItemParams] = {}  # one object per distinct setting, not per signal
    for slot, binding in enumerate(bindings):
        name = binding.group or DEFAULT_GROUP
        group = groups.get(name)
        if group is None:
            known = ", ".join(sorted(groups))
            unknown[slot] = f"group {name!r} is not declared on the connection (groups: {known})"
            continue
        group.slots.append(slot)
        params = item_params(conn, conn.groups.get(name), binding)
        group.params.append(shared.setdefault(params, params))
    return [g for g in groups.values() if g.slots], unknown
