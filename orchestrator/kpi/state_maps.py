"""Raw machine states → ISO 22400 time elements.

A `StateMap` is a plain lookup: raw value (an int code, a string, or a tuple of several signals'
values) → `TimeElement`; anything unmapped is UNKNOWN, so a new code on a machine shows up as lost
coverage, never as production or down time. Maps can be written in config as bucket names →
raw values:

    {"production": [3], "setup": [4], "delay": [1], "no_order": [2], "planned_down": [0]}

Telling ADET (delay during an order) from ADOT (no order) needs order context (STANDARDS.md §1.3):
the ready maps below state the assumption they make about it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from orchestrator.kpi.elements import TimeElement

APT, AUST, ADET, ADOT, PDOT, UNKNOWN = (
    TimeElement.APT,
    TimeElement.AUST,
    TimeElement.ADET,
    TimeElement.ADOT,
    TimeElement.PDOT,
    TimeElement.UNKNOWN,
)


@dataclass(frozen=True, eq=False)  # identity equality: maps are shared, compared by name
class StateMap:
    """Lookup raw state → TimeElement, UNKNOWN for unmapped values.

    `inputs` names the asset signals whose values form the raw state when it is a tuple (e.g.
    `("item_state", "operation_mode")`); empty means the asset's one signal with role `state`.
    """

    name: str
    mapping: Mapping[Hashable, TimeElement]
    inputs: tuple[str, ...] = ()
    default: TimeElement = UNKNOWN
    _lookup: dict[Hashable, TimeElement] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lookup = {_key(raw): element for raw, element in self.mapping.items()}
        object.__setattr__(self, "_lookup", lookup)
        object.__setattr__(self, "mapping", MappingProxyType(dict(lookup)))

    def __call__(self, raw: object) -> TimeElement:
        """The element of one raw value; the default for unmapped or unhashable values."""
        try:
            return self._lookup.get(raw, self.default)
        except TypeError:  # a list (array value) or another unhashable: try it as a tuple
            if isinstance(raw, list):
                return self._lookup.get(tuple(raw), self.default)
            return self.default

    @classmethod
    def from_config(
        cls,
        name: str,
        buckets: Mapping[str, Iterable[Any]],
        *,
        inputs: Iterable[str] = (),
        default: str = "unknown",
    ) -> StateMap:
        """Build from bucket names ("production", "setup", "delay", …) → lists of raw values.

        Raw values given as lists (YAML has no tuples) become tuples. A raw value listed under two
        buckets, or an unknown bucket name, is a ValueError naming both.
        """
        mapping: dict[Hashable, TimeElement] = {}
        for bucket, raws in buckets.items():
            element = _element(bucket, name)
            for raw in raws:
                key = _key(raw)
                if key in mapping and mapping[key] is not element:
                    raise ValueError(
                        f"state map {name!r}: raw state {raw!r} is under both "
                        f"{mapping[key].value!r} and {bucket!r}"
                    )
                mapping[key] = element
        return cls(name, mapping, tuple(inputs), _element(default, name))

    def to_config(self) -> dict[str, list[Any]]:
        """The inverse of `from_config`: bucket name → raw values (tuples as lists)."""
        out: dict[str, list[Any]] = {}
        for raw, element in self.mapping.items():
            out.setdefault(element.value, []).append(list(raw) if isinstance(raw, tuple) else raw)
        return out


def _key(raw: Any) -> Hashable:
    return tuple(raw) if isinstance(raw, list) else raw


def _element(bucket: str, map_name: str) -> TimeElement:
    try:
        return TimeElement(bucket)
    except ValueError:
        names = ", ".join(repr(e.value) for e in TimeElement)
        raise ValueError(f"state map {map_name!r}: unknown bucket {bucket!r}; use one of {names}") from None


DEMO_MACHINE_STATE = StateMap(
    "demo_machine_state",
    # connectors/common/simulated_machine.py MachineState: the demo machines always have an order,
    # except when idle; a planned stop is a break on their fixed schedule.
    {3: APT, 4: AUST, 1: ADET, 2: ADOT, 0: PDOT},
)

# OPC 40001-1 MachineryItemState and MachineryOperationMode codes (STANDARDS.md §4.1).
NOT_AVAILABLE, OUT_OF_SERVICE, NOT_EXECUTING, EXECUTING = 0, 1, 2, 3
MODE_NONE, MODE_MAINTENANCE, MODE_SETUP, MODE_PROCESSING = 0, 1, 2, 3
_NOT_EXECUTING_STATES = (NOT_AVAILABLE, OUT_OF_SERVICE, NOT_EXECUTING)


def _machinery() -> dict[Hashable, TimeElement]:
    # STANDARDS.md §1.3 (MACH-C2, OPC 40001-1 Annex C). Assumption: an order is running exactly
    # when OperationMode is Processing, since the machine does not know the MES order.
    table: dict[Hashable, TimeElement] = {
        (EXECUTING, MODE_PROCESSING): APT,
        (EXECUTING, MODE_SETUP): AUST,
        # Not in the Annex C table: a machine without OperationMode support reports None while it
        # works; counting that as production keeps E sane (its parts are counted anyway).
        (EXECUTING, MODE_NONE): APT,
        (EXECUTING, MODE_MAINTENANCE): PDOT,
    }
    for state in _NOT_EXECUTING_STATES:
        table[(state, MODE_PROCESSING)] = ADET  # stopped while an order runs
        table[(state, MODE_NONE)] = ADOT  # available, no order
        # Annex C calls non-executing Maintenance/Setup without an order APMT (preventive
        # maintenance, "setup as service"). Maintenance is planned (PDOT); setup stays AUST because
        # changeovers are mostly done with the machine stopped and hiding them flatters OEE.
        table[(state, MODE_MAINTENANCE)] = PDOT
        table[(state, MODE_SETUP)] = AUST
    return table


MACHINERY = StateMap("machinery", _machinery(), inputs=("item_state", "operation_mode"))
"""OPC 40001-1 (MachineryItemState, MachineryOperationMode) pairs → elements, per STANDARDS.md §1.3.

Caveat: corrective maintenance done in Maintenance mode becomes PDOT here; sites that do so should
map `(1, 1)` (OutOfService, Maintenance) to "delay" in their own map.
"""

MACHINE_TOOL = StateMap(
    "machine_tool",
    # OPC 40501-1 (MachineTool) Annex C simplification on MachineryItemState alone:
    # NotExecuting is ADOT, OutOfService is ADET. NotAvailable (off / not ready) is taken as ADOT.
    {EXECUTING: APT, NOT_EXECUTING: ADOT, OUT_OF_SERVICE: ADET, NOT_AVAILABLE: ADOT},
)

READY_MAPS: Mapping[str, StateMap] = MappingProxyType(
    {m.name: m for m in (DEMO_MACHINE_STATE, MACHINERY, MACHINE_TOOL)}
)
"""The ready maps by name, for config references."""
