"""The per-asset KPI engine: sample batches in, Elements and KPIs per window out.

Built once from the resolved `Park`: every signal with a KPI role gets a route (state timeline,
counter tracker, PRU slot), stored in a list indexed by signal index, so `feed` is O(1) per
sample with no dict lookups and no allocation beyond what a credited increment needs.

Quantities (documented decision; PQ = GQ + SQ + RQ is common practice, STANDARDS.md §1.1):
- with a `total_count`: PQ is its increase; GQ is the `good_count` increase, or PQ − SQ − RQ
  when there is no good counter;
- without one: PQ = GQ + SQ + RQ from whichever of those counters exist;
- with neither a good nor a total counter the asset is `uncounted` (quantity KPIs are None).
Several signals with the same role on one asset add up (e.g. two energy meters).

Ideal time is credited with each count increment at the PRU known at that moment: the latest good
value of an `ideal_cycle_time` signal (converted from its unit), else the asset's configured
`ideal_cycle_time`. Units counted with no PRU known go to `unpriced_pq`. Energy must be a
cumulative meter; it is converted to kWh when its unit is an energy unit.

Counter drops: a wrap only where physically possible at the signal's `max_rate`, else at 1 / PRU
for part counters (counters.py). Every increase is spread over the interval between the two
readings that show it; the part of it that falls in the asset's UNKNOWN time goes to the
`unattributed_*` quantities, never into PQ … RQ, so a communication loss (or parklink being down)
cannot credit parts against less time (constant-rate machine: E stays the true rate ratio). An
asset without a state signal has no observed time to set units against: all its units count.

Quality: Good samples count; Uncertain ones too unless `accept_uncertain=False` (an OPC UA
Uncertain value is usable with caution, OPC 10000-4 §7.39); Bad ones make state time UNKNOWN and
are skipped by counters. Times are source times (§1.5 pitfall 8); the server time only serves to
end a gap when a device re-sends an old value (see timeline.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from models.park import AssetRef, Park, SignalRef
from models.sample import Sample
from models.units import to_base_unit
from orchestrator.kpi.counters import DEFAULT_TOLERANCE, CounterTracker, Cumulative
from orchestrator.kpi.elements import Elements, TimeElement
from orchestrator.kpi.formulas import KpiResult, compute
from orchestrator.kpi.planned import PlannedBreaks
from orchestrator.kpi.state_maps import DEMO_MACHINE_STATE, StateMap
from orchestrator.kpi.timeline import StateTimeline
from orchestrator.kpi.windows import ShiftCalendar, Window, overlay_breaks

GOOD, SCRAP, REWORK, TOTAL = range(4)
_COUNT_ROLES = {"good_count": GOOD, "scrap_count": SCRAP, "rework_count": REWORK, "total_count": TOTAL}
_WIDTHS = {"int16": 16, "uint16": 16, "int32": 32, "uint32": 32, "int64": 64, "uint64": 64}
_MISSING: Any = None  # a composite-state input not (or no longer) known
STATE_VERSION = 1


class _Asset:
    """What the engine keeps per asset."""

    __slots__ = (
        "counts",
        "energy",
        "ideal",
        "inputs",
        "observed",
        "pru_signal",
        "ref",
        "timeline",
        "unpriced",
    )

    def __init__(
        self, ref: AssetRef, state_map: StateMap, resolution: float, planned: PlannedBreaks | None
    ) -> None:
        self.ref = ref
        self.timeline = StateTimeline(state_map, planned)
        self.observed = False  # has a state signal: units are set against its observed time
        self.counts: tuple[list[tuple[str, CounterTracker]], ...] = ([], [], [], [])
        self.energy: list[tuple[str, CounterTracker, float]] = []  # (signal path, tracker, factor)
        self.ideal = tuple(Cumulative(resolution) for _ in range(4))  # PRU · count per role
        self.unpriced = tuple(Cumulative(resolution) for _ in range(4))  # counts with no PRU known
        self.inputs: list[Any] = [_MISSING] * len(state_map.inputs)
        self.pru_signal: float | None = None

    @property
    def pru(self) -> float | None:
        return self.pru_signal if self.pru_signal is not None else self.ref.ideal_cycle_time

    def credit(self, role: int, t: float, units: float, since: float | None) -> None:
        pru = self.pru
        if pru is None:
            self.unpriced[role].add(t, units, since)
        else:
            self.ideal[role].add(t, units * pru, since)


class _StateRoute:
    __slots__ = ("timeline",)

    def __init__(self, asset: _Asset) -> None:
        self.timeline = asset.timeline

    def feed(self, s: Sample, ok: bool) -> None:
        self.timeline.feed(s.source_time, s.value, ok, s.server_time)


class _CompositeRoute:
    """One input of a tuple-valued state (e.g. MachineryItemState, MachineryOperationMode)."""

    __slots__ = ("asset", "position")

    def __init__(self, asset: _Asset, position: int) -> None:
        self.asset, self.position = asset, position

    def feed(self, s: Sample, ok: bool) -> None:
        inputs = self.asset.inputs
        inputs[self.position] = s.value if ok else _MISSING
        raw = None if _MISSING in inputs else tuple(inputs)
        self.asset.timeline.feed(s.source_time, raw, raw is not None, s.server_time)


class _CountRoute:
    __slots__ = ("asset", "role", "tracker")

    def __init__(self, asset: _Asset, role: int, tracker: CounterTracker) -> None:
        self.asset, self.role, self.tracker = asset, role, tracker

    def feed(self, s: Sample, ok: bool) -> None:
        tracker, asset = self.tracker, self.asset
        since = tracker.last_time
        pru = asset.pru
        units = tracker.feed(s.source_time, s.value, ok, None if pru is None else 1.0 / pru)
        if units:
            asset.credit(self.role, s.source_time, units, since)


class _EnergyRoute:
    __slots__ = ("tracker",)

    def __init__(self, tracker: CounterTracker) -> None:
        self.tracker = tracker

    def feed(self, s: Sample, ok: bool) -> None:
        self.tracker.feed(s.source_time, s.value, ok)


class _PruRoute:
    __slots__ = ("asset", "factor")

    def __init__(self, asset: _Asset, factor: float) -> None:
        self.asset, self.factor = asset, factor

    def feed(self, s: Sample, ok: bool) -> None:
        value = s.value
        if ok and isinstance(value, int | float) and math.isfinite(value) and value > 0:
            self.asset.pru_signal = value * self.factor


_Route = _StateRoute | _CompositeRoute | _CountRoute | _EnergyRoute | _PruRoute


class KpiEngine:
    """State timelines and counters of every asset of a park; Elements and KPIs per window."""

    def __init__(
        self,
        park: Park,
        *,
        state_map: StateMap | Mapping[str, StateMap] = DEMO_MACHINE_STATE,
        resolution: float = 1.0,
        accept_uncertain: bool = True,
        calendars: Mapping[tuple[str, str], ShiftCalendar] | None = None,
        counter_tolerance: float = DEFAULT_TOLERANCE,
    ) -> None:
        """`state_map` is one map for all, or one per asset path or asset type (else the demo map).

        `calendars` ((company, site) → shift calendar) give the planned breaks that failure
        statistics leave out; `counter_tolerance` how much faster than its rate a counter may run
        before a drop reads as a reset.
        """
        self._max_severity = 1 if accept_uncertain else 0
        self._tolerance = counter_tolerance
        planned = {key: PlannedBreaks(calendar) for key, calendar in (calendars or {}).items()}
        self._assets: dict[str, _Asset] = {}
        for ref in park.assets:
            chosen = (
                state_map
                if isinstance(state_map, StateMap)
                else state_map.get(ref.path, state_map.get(ref.type))
            )
            breaks = planned.get((ref.company, ref.site))
            self._assets[ref.path] = _Asset(ref, chosen or DEMO_MACHINE_STATE, resolution, breaks)
        size = 1 + max((s.index for s in park.signals), default=-1)
        self._routes: list[_Route | None] = [None] * size
        by_asset: dict[str, list[SignalRef]] = {}
        for sig in park.signals:
            by_asset.setdefault(sig.asset.path, []).append(sig)
        for path, asset in self._assets.items():
            self._index(asset, by_asset.get(path, []), resolution)

    def _index(self, asset: _Asset, signals: list[SignalRef], resolution: float) -> None:
        inputs = asset.timeline.state_map.inputs
        by_name = {s.name: s for s in signals}
        missing = [name for name in inputs if name not in by_name]
        if missing:
            raise ValueError(
                f"asset {asset.ref.path}: state map {asset.timeline.state_map.name!r} reads signals "
                f"{', '.join(inputs)}; missing {', '.join(missing)}"
            )
        for position, name in enumerate(inputs):
            self._routes[by_name[name].index] = _CompositeRoute(asset, position)
        asset.observed = bool(inputs) or any(s.role == "state" for s in signals)
        states = [s for s in signals if s.role == "state"]
        if not inputs and len(states) > 1:
            names = ", ".join(s.name for s in states)
            raise ValueError(f"asset {asset.ref.path}: several signals with role 'state' ({names})")
        for sig in signals:
            role = sig.role
            if role == "state" and not inputs:
                self._routes[sig.index] = _StateRoute(asset)
            elif role in _COUNT_ROLES:
                tracker = self._tracker(sig, resolution)
                asset.counts[_COUNT_ROLES[role]].append((sig.path, tracker))
                self._routes[sig.index] = _CountRoute(asset, _COUNT_ROLES[role], tracker)
            elif role == "energy":
                tracker = self._tracker(sig, resolution)
                suffix, factor = to_base_unit(sig.unit)
                asset.energy.append((sig.path, tracker, factor / 3.6e6 if suffix == "joules" else 1.0))
                self._routes[sig.index] = _EnergyRoute(tracker)
            elif role == "ideal_cycle_time":
                suffix, factor = to_base_unit(sig.unit)
                if suffix not in ("seconds", ""):
                    raise ValueError(
                        f"signal {sig.path}: ideal_cycle_time needs a time unit, not {sig.unit!r}"
                    )
                self._routes[sig.index] = _PruRoute(asset, factor)

    def _tracker(self, sig: SignalRef, resolution: float) -> CounterTracker:
        return CounterTracker(
            _WIDTHS.get(sig.data_type),
            resolution,
            rollover=sig.rollover,
            max_rate=sig.max_rate,
            tolerance=self._tolerance,
        )

    @property
    def assets(self) -> list[AssetRef]:
        """The assets, in park order."""
        return [a.ref for a in self._assets.values()]

    def _get(self, asset: AssetRef | str) -> _Asset:
        return self._assets[asset if isinstance(asset, str) else asset.path]

    def feed(self, batch: Sequence[Sample]) -> None:
        """Take one batch of samples (any signals; those without a KPI role are skipped)."""
        routes = self._routes
        size = len(routes)
        max_severity = self._max_severity
        for s in batch:
            index = s.signal
            if 0 <= index < size:
                route = routes[index]
                if route is not None:
                    route.feed(s, (s.status >> 30) & 3 <= max_severity)

    def gap(self, at: float, assets: Iterable[AssetRef | str] | None = None) -> None:
        """Mark state UNKNOWN from `at` (connection lost, parklink stopping) until the next sample."""
        targets = self._assets.values() if assets is None else [self._get(a) for a in assets]
        for asset in targets:
            asset.timeline.gap(at)

    def has_quantities(self, asset: AssetRef | str) -> bool:
        """Whether the asset has a good or total counter (else its quantity KPIs are None)."""
        counts = self._get(asset).counts
        return bool(counts[GOOD] or counts[TOTAL])

    def pru(self, asset: AssetRef | str) -> float | None:
        """The PRU (ideal cycle time, s) in force for the asset now."""
        return self._get(asset).pru

    def timeline(self, asset: AssetRef | str) -> StateTimeline:
        """The asset's state timeline (read it; feed through `feed`)."""
        return self._get(asset).timeline

    def elements(self, asset: AssetRef | str, t0: float, t1: float, now: float) -> Elements:
        """Elements of [t0, t1): time up to `now`, quantities and failures by their instants."""
        a = self._get(asset)
        unknown: list[tuple[float, float]] | None = [] if a.observed else None
        durations = a.timeline.elements_between(t0, t1, now, unknown)
        return self._compose(a, durations, t0, t1, unknown or ())

    def window_elements(self, asset: AssetRef | str, window: Window, now: float) -> Elements:
        """Elements of a window, its planned breaks counted as PDOT."""
        a = self._get(asset)
        tl = a.timeline
        unknown: list[tuple[float, float]] | None = [] if a.observed else None
        durations = overlay_breaks(lambda x, y: tl.elements_between(x, y, now, unknown), window, now)
        return self._compose(a, durations, window.start, window.end, unknown or ())

    def result(self, asset: AssetRef | str, t0: float, t1: float, now: float) -> KpiResult:
        """KPIs of [t0, t1) for one asset."""
        return compute(self.elements(asset, t0, t1, now))

    def window_result(self, asset: AssetRef | str, window: Window, now: float) -> KpiResult:
        """KPIs of one window (with its breaks) for one asset."""
        return compute(self.window_elements(asset, window, now))

    def _compose(
        self,
        a: _Asset,
        durations: dict[TimeElement, float],
        t0: float,
        t1: float,
        unknown: Sequence[tuple[float, float]] = (),
    ) -> Elements:
        def split(series: Cumulative) -> tuple[float, float]:
            """(counted in observed time, counted in UNKNOWN time) within [t0, t1)."""
            total = series.between(t0, t1)
            if not unknown:
                return total, 0.0
            off = sum(series.between(x, y) for x, y in unknown)
            return total - off, off

        c, u = [0.0] * 4, [0.0] * 4
        for role, trackers in enumerate(a.counts):
            for _, tracker in trackers:
                seen, unseen = split(tracker.series)
                c[role] += seen
                u[role] += unseen
        ideal = [split(series)[0] for series in a.ideal]
        unpriced = [split(series)[0] for series in a.unpriced]
        energy = unattributed_energy = 0.0
        for _, tracker, factor in a.energy:
            seen, unseen = split(tracker.series)
            energy += seen * factor
            unattributed_energy += unseen * factor
        has_good, has_total = bool(a.counts[GOOD]), bool(a.counts[TOTAL])
        pq, gq = _quantities(c, has_good, has_total)
        u_pq, u_gq = _quantities(u, has_good, has_total)
        if has_total:
            ideal_pq, unpriced_pq = ideal[TOTAL], unpriced[TOTAL]
            ideal_gq = ideal[GOOD] if has_good else ideal[TOTAL] - ideal[SCRAP] - ideal[REWORK]
        else:
            ideal_pq = ideal[GOOD] + ideal[SCRAP] + ideal[REWORK]
            unpriced_pq = unpriced[GOOD] + unpriced[SCRAP] + unpriced[REWORK]
            ideal_gq = ideal[GOOD]
        failures = a.timeline.failures_between(t0, t1)
        return Elements.from_durations(
            durations,
            pq=pq,
            gq=gq,
            sq=c[SCRAP],
            rq=c[REWORK],
            energy=energy,
            ideal_time=ideal_pq,
            ideal_good_time=ideal_gq,
            failures=failures.failures,
            tbf_seconds=failures.tbf_seconds,
            repairs=failures.repairs,
            repair_time=failures.repair_time,
            uncounted=0 if has_good or has_total else 1,
            unpriced_pq=unpriced_pq,
            unattributed_pq=u_pq,
            unattributed_gq=u_gq,
            unattributed_sq=u[SCRAP],
            unattributed_rq=u[REWORK],
            unattributed_energy=unattributed_energy,
        )

    def elements_by_asset(self, t0: float, t1: float, now: float) -> list[tuple[AssetRef, Elements]]:
        """(asset, elements of [t0, t1)) for every asset, ready for `rollup` (AssetRef is unhashable)."""
        return [(a.ref, self.elements(a.ref, t0, t1, now)) for a in self._assets.values()]

    def prune(self, before: float) -> None:
        """Forget history before `before` in every timeline and counter (bounds memory)."""
        for a in self._assets.values():
            a.timeline.prune(before)
            for trackers in a.counts:
                for _, tracker in trackers:
                    tracker.prune(before)
            for _, tracker, _ in a.energy:
                tracker.prune(before)
            for series in (*a.ideal, *a.unpriced):
                series.prune(before)

    def state(self, now: float) -> dict[str, Any]:
        """Everything needed to resume after a restart, as a JSON-able dict."""
        assets: dict[str, Any] = {}
        counters: dict[str, Any] = {}
        for path, a in self._assets.items():
            assets[path] = {
                "timeline": a.timeline.state(),
                "pru_signal": a.pru_signal,
                "inputs": list(a.inputs),
                "ideal": [s.state() for s in a.ideal],
                "unpriced": [s.state() for s in a.unpriced],
            }
            for trackers in a.counts:
                for signal_path, tracker in trackers:
                    counters[signal_path] = tracker.state()
            for signal_path, tracker, _ in a.energy:
                counters[signal_path] = tracker.state()
        return {"version": STATE_VERSION, "saved_at": now, "assets": assets, "counters": counters}

    def load_state(self, state: dict[str, Any], *, mark_gap: bool = True) -> None:
        """Resume from `state()`; assets and signals no longer configured are skipped.

        With `mark_gap`, every asset is UNKNOWN from the save until its next sample: parklink was
        not watching, and the last state must not be stretched over the outage. Without it (the
        data clock: time is the samples' own, and the source plays again what followed the save),
        the timelines go on from their last sample, and what the source plays again from before
        it is ignored (see `StateTimeline.seal`).
        """
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"KPI engine state version {state.get('version')!r}, expected {STATE_VERSION}")
        saved = state["counters"]
        for path, a in self._assets.items():
            for trackers in (*a.counts, [(p, t) for p, t, _ in a.energy]):
                for signal_path, tracker in trackers:
                    if signal_path in saved:
                        tracker.restore(saved[signal_path])  # settings stay as configured
            saved_asset = state["assets"].get(path)
            if saved_asset is None:
                continue
            restored = StateTimeline.from_state(
                saved_asset["timeline"], a.timeline.state_map, a.timeline.planned
            )
            _adopt_timeline(a.timeline, restored)
            a.pru_signal = saved_asset["pru_signal"]
            if len(saved_asset["inputs"]) == len(a.inputs):
                a.inputs[:] = saved_asset["inputs"]
            for series, saved_series in zip(
                (*a.ideal, *a.unpriced), (*saved_asset["ideal"], *saved_asset["unpriced"]), strict=True
            ):
                _adopt(series, Cumulative.from_state(saved_series))
        if mark_gap:
            self.gap(float(state["saved_at"]))
        else:
            for a in self._assets.values():
                a.timeline.seal()


def _quantities(c: Sequence[float], has_good: bool, has_total: bool) -> tuple[float, float]:
    """(PQ, GQ) from the increases per counter role (module doc: quantities)."""
    if has_total:
        return c[TOTAL], c[GOOD] if has_good else c[TOTAL] - c[SCRAP] - c[REWORK]
    return c[GOOD] + c[SCRAP] + c[REWORK], c[GOOD]


def _adopt(target: Cumulative, source: Cumulative) -> None:
    # Routes hold the objects, so restore in place rather than replace them.
    for slot in type(target).__slots__:
        setattr(target, slot, getattr(source, slot))


def _adopt_timeline(target: StateTimeline, source: StateTimeline) -> None:
    for slot in StateTimeline.__slots__:
        setattr(target, slot, getattr(source, slot))
