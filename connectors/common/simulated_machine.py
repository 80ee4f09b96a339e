"""A production machine's behaviour, shared by the OPC UA and Modbus simulators.

A small stochastic state machine: running, idle, setup, down (failures with random repair times)
and planned stops on a fixed schedule; good and scrap counters that advance at the ideal cycle time
(a little slower when the machine is not at its best); an energy meter whose power depends on the
state. Deterministic for a given seed, advanced by wall-clock time in `step(now)`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import IntEnum


class MachineState(IntEnum):
    """The demo machines' state code, as their `State` variable / register reports it."""

    PLANNED_STOP = 0
    DOWN = 1
    IDLE = 2
    RUNNING = 3
    SETUP = 4


class MachineryItemState(IntEnum):
    """OPC 40001-1 MachineryItemState."""

    NOT_AVAILABLE = 0
    OUT_OF_SERVICE = 1
    NOT_EXECUTING = 2
    EXECUTING = 3


class MachineryOperationMode(IntEnum):
    """OPC 40001-1 MachineryOperationMode."""

    NONE = 0
    MAINTENANCE = 1
    SETUP = 2
    PROCESSING = 3


# Mean seconds spent in a state before leaving it, and where it goes (weights).
_MEAN_DWELL = {
    MachineState.RUNNING: 90.0,
    MachineState.IDLE: 15.0,
    MachineState.SETUP: 20.0,
    MachineState.DOWN: 25.0,
    MachineState.PLANNED_STOP: 30.0,
}
_NEXT = {
    MachineState.RUNNING: ((MachineState.DOWN, 0.45), (MachineState.IDLE, 0.35), (MachineState.SETUP, 0.2)),
    MachineState.IDLE: ((MachineState.RUNNING, 0.8), (MachineState.SETUP, 0.2)),
    MachineState.SETUP: ((MachineState.RUNNING, 1.0),),
    MachineState.DOWN: ((MachineState.RUNNING, 0.7), (MachineState.IDLE, 0.3)),
    MachineState.PLANNED_STOP: ((MachineState.SETUP, 0.5), (MachineState.RUNNING, 0.5)),
}
_POWER_KW = {
    MachineState.RUNNING: 18.0,
    MachineState.IDLE: 4.0,
    MachineState.SETUP: 6.0,
    MachineState.DOWN: 1.5,
    MachineState.PLANNED_STOP: 0.5,
}
PLANNED_STOP_EVERY = 600.0  # a planned stop (break, maintenance slot) every 10 minutes


@dataclass
class SimulatedMachine:
    """One machine; call `step(now)` with a monotonic-ish wall clock to advance it."""

    name: str
    ideal_cycle_time: float = 2.0
    scrap_rate: float = 0.03
    seed: int = 0
    state: MachineState = MachineState.RUNNING
    good_count: int = 0
    scrap_count: int = 0
    energy_kwh: float = 0.0
    temperature_c: float = 20.0
    spindle_speed_rpm: float = 0.0
    _rng: random.Random = field(init=False, repr=False)
    _last: float | None = field(default=None, init=False, repr=False)
    _leave_at: float = field(default=0.0, init=False, repr=False)
    _part_progress: float = field(default=0.0, init=False, repr=False)
    _next_planned_stop: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @property
    def item_state(self) -> MachineryItemState:
        return {
            MachineState.RUNNING: MachineryItemState.EXECUTING,
            MachineState.SETUP: MachineryItemState.EXECUTING,
            MachineState.IDLE: MachineryItemState.NOT_EXECUTING,
            MachineState.DOWN: MachineryItemState.OUT_OF_SERVICE,
            MachineState.PLANNED_STOP: MachineryItemState.NOT_AVAILABLE,
        }[self.state]

    @property
    def operation_mode(self) -> MachineryOperationMode:
        return {
            MachineState.RUNNING: MachineryOperationMode.PROCESSING,
            MachineState.SETUP: MachineryOperationMode.SETUP,
            MachineState.IDLE: MachineryOperationMode.PROCESSING,
            MachineState.DOWN: MachineryOperationMode.PROCESSING,
            MachineState.PLANNED_STOP: MachineryOperationMode.NONE,
        }[self.state]

    def step(self, now: float) -> None:
        """Advance the machine from its last step to `now` (seconds), in state-sized slices."""
        if self._last is None:
            self._last = now
            self._leave_at = now + self._dwell(self.state)
            self._next_planned_stop = now + PLANNED_STOP_EVERY * (0.5 + self._rng.random())
            return
        while self._last < now:
            until = min(now, self._leave_at, self._next_planned_stop)
            self._advance(until - self._last)
            self._last = until
            if until >= self._next_planned_stop and self.state != MachineState.PLANNED_STOP:
                self._enter(MachineState.PLANNED_STOP, until)
                self._next_planned_stop = until + PLANNED_STOP_EVERY
            elif until >= self._leave_at:
                self._enter(self._pick_next(), until)

    def _advance(self, dt: float) -> None:
        if dt <= 0:
            return
        self.energy_kwh += _POWER_KW[self.state] * dt / 3600.0
        target_temp = 65.0 if self.state == MachineState.RUNNING else 25.0
        self.temperature_c += (target_temp - self.temperature_c) * min(1.0, dt / 120.0)
        self.spindle_speed_rpm = (
            3000.0 + self._rng.uniform(-40, 40) if self.state == MachineState.RUNNING else 0.0
        )
        if self.state != MachineState.RUNNING:
            return
        # Real machines rarely hit their ideal rate: 85-100 % of it.
        self._part_progress += dt / self.ideal_cycle_time * self._rng.uniform(0.85, 1.0)
        while self._part_progress >= 1.0:
            self._part_progress -= 1.0
            if self._rng.random() < self.scrap_rate:
                self.scrap_count = (self.scrap_count + 1) & 0xFFFFFFFF
            else:
                self.good_count = (self.good_count + 1) & 0xFFFFFFFF

    def _enter(self, state: MachineState, now: float) -> None:
        self.state = state
        self._leave_at = now + self._dwell(state)

    def _dwell(self, state: MachineState) -> float:
        return self._rng.expovariate(1.0 / _MEAN_DWELL[state])

    def _pick_next(self) -> MachineState:
        choices = _NEXT[self.state]
        return self._rng.choices([s for s, _ in choices], weights=[w for _, w in choices])[0]
