"""From the configured park to the engine's inputs: state maps per asset, shift calendars per site."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from models.assets import Shift, StateMapSpec
from models.park import Park
from orchestrator.kpi.state_maps import READY_MAPS, StateMap
from orchestrator.kpi.windows import ShiftCalendar, ShiftSpec


def state_map_of(spec: str | StateMapSpec, name: str) -> StateMap:
    """A ready map by name, or one built from buckets; ValueError with a readable reason."""
    if isinstance(spec, str):
        try:
            return READY_MAPS[spec]
        except KeyError:
            known = ", ".join(sorted(READY_MAPS))
            raise ValueError(f"unknown state map {spec!r} (ready maps: {known})") from None
    buckets: dict[str, list[Any]] = {str(bucket): raws for bucket, raws in spec.buckets.items()}
    return StateMap.from_config(name, buckets, inputs=spec.inputs, default=spec.default)


def state_maps(park: Park) -> dict[str, StateMap]:
    """One map per asset path (assets sharing a spec share the map object)."""
    built: dict[str, StateMap] = {}
    out: dict[str, StateMap] = {}
    for asset in park.assets:
        spec = asset.state_map
        key = spec if isinstance(spec, str) else repr(spec)
        if key not in built:
            built[key] = state_map_of(spec, spec if isinstance(spec, str) else f"{asset.type} map")
        out[asset.path] = built[key]
    return out


def shift_specs(shifts: Iterable[Shift]) -> list[ShiftSpec]:
    """Config shifts → engine shift specs (breaks 'HH:MM-HH:MM' split in two)."""
    return [
        ShiftSpec(
            s.name,
            s.start,
            s.end,
            breaks=[tuple(b.split("-", 1)) for b in s.breaks],  # type: ignore[misc]
            days=s.days,
        )
        for s in shifts
    ]


def calendars(park: Park) -> dict[tuple[str, str], ShiftCalendar]:
    """(company, site) → its shift calendar, for the sites that declare shifts."""
    return {
        key: ShiftCalendar(park.sites[key], shift_specs(shifts))
        for key, shifts in park.shifts.items()
        if shifts
    }
