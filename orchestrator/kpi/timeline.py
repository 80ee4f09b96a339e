"""The state timeline of one work unit: when it was in which time element, and its failures.

Fed in time order with (source time, raw state, quality ok). The timeline keeps one entry per
*change* of element: a state holds until the next change, and the open segment runs to a `now`
the caller passes (the timeline never reads the wall clock). Durations are split exactly at window
edges, so a window's elements are the same whichever way the surrounding time was cut (§1.5
pitfall 6).

Rules, each one a decision:
- A Bad-quality sample, a value of None, or `gap(at)` makes the time UNKNOWN from then until the
  next good sample. Time before the first sample is UNKNOWN too.
- A sample older than the last accepted one is ignored (a late duplicate or a reordered batch
  must not rewrite history), with one exception: while the timeline is UNKNOWN, a good sample ends
  the gap at `received` (when parklink got it). OPC UA stamps a value with the time it last
  *changed*, so the first value after a reconnect is usually older than the gap. After `seal()`
  (a restart resumed without a gap) it no longer applies to a sample also *received* before the
  last one accepted before the seal: the source plays it again (a replay from its start), and the
  timeline already holds it.
- Samples with equal timestamps: the last one fed wins (two signals of a composite state that
  change together must not leave a zero-length phantom state, nor a phantom failure).

Failures follow IEC 60050-191 as used by ISO 22400-2 (STANDARDS.md §1.1, ONT): a failure is an
entry into ADET whose last *known* state (UNKNOWN skipped) was APT or AUST, outside a planned break.
Its TBF is the APT + AUST time since the previous failure; a window's first TBF starts at the
window's start (UNKNOWN never counts). A repair ends when a known state other than ADET follows;
its TTR is the ADET time observed in the episode. Planned breaks (`planned`, the site's calendar)
count in neither: a machine that stops for a break has not failed, running through a break adds
nothing to its TBF, and a break inside a repair is not repair time. Failures and repairs go to the
window holding their instant; MTBF = mean TBF and MTTR = mean TTR.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Any, NamedTuple

from orchestrator.kpi.elements import UP_ELEMENTS, TimeElement
from orchestrator.kpi.planned import PlannedBreaks
from orchestrator.kpi.state_maps import DEMO_MACHINE_STATE, StateMap

_UNKNOWN = TimeElement.UNKNOWN
_ADET = TimeElement.ADET
_NO_HORIZON = float("-inf")


class FailureStats(NamedTuple):
    """Failure sums of one window: counts and totals, so means roll up."""

    failures: int
    tbf_seconds: float
    repairs: int
    repair_time: float


# Tracker state before the last transition: (last_known, uptime, in_episode, episode_adet,
# number of failures, number of repairs); restoring it undoes that transition.
_Undo = tuple[TimeElement | None, float, bool, float, int, int]


class StateTimeline:
    """Change points of one asset's time element, with failure and repair episodes."""

    __slots__ = (
        "_elems",
        "_episode_adet",
        "_fail_t",
        "_fail_tbf",
        "_horizon",
        "_in_episode",
        "_last_known",
        "_last_time",
        "_rep_t",
        "_rep_ttr",
        "_sealed",
        "_times",
        "_undo",
        "_uptime",
        "planned",
        "state_map",
    )

    def __init__(
        self, state_map: StateMap = DEMO_MACHINE_STATE, planned: PlannedBreaks | None = None
    ) -> None:
        self.state_map = state_map
        self.planned = planned  # the site's planned breaks: no failure, TBF or TTR time in them
        self._times: list[float] = []  # start of each segment, strictly increasing
        self._elems: list[TimeElement] = []
        self._last_time: float | None = None  # last accepted sample (may be after the last change)
        self._horizon = _NO_HORIZON  # pruned: the time before this is forgotten (reads UNKNOWN)
        self._sealed = _NO_HORIZON  # samples received before this never end a gap (see `seal`)
        self._last_known: TimeElement | None = None
        self._uptime = 0.0  # APT + AUST since the last failure, closed segments only
        self._in_episode = False
        self._episode_adet = 0.0
        self._fail_t: list[float] = []
        self._fail_tbf: list[float] = []
        self._rep_t: list[float] = []
        self._rep_ttr: list[float] = []
        self._undo: _Undo = self._tracker()

    @property
    def current(self) -> TimeElement:
        """The element now (UNKNOWN before the first sample)."""
        return self._elems[-1] if self._elems else _UNKNOWN

    @property
    def last_time(self) -> float | None:
        """Source time of the last accepted sample."""
        return self._last_time

    def __len__(self) -> int:
        return len(self._times)

    def feed(self, t: float, raw: object, ok: bool = True, received: float | None = None) -> bool:
        """Take one state sample; False when it was ignored as out of order."""
        element = self.state_map(raw) if ok and raw is not None else _UNKNOWN
        return self.set(t, element, received)

    def gap(self, at: float) -> None:
        """UNKNOWN from `at` (not before the last accepted sample) until the next good sample."""
        last = self._last_time
        self.set(at if last is None or at >= last else last, _UNKNOWN)

    def seal(self) -> None:
        """From now on, a sample received before the last one accepted so far is ignored, even while
        UNKNOWN.

        For a timeline resumed after a restart without a gap: a source that plays again what it
        sent before (a replay from its start) must not end, nor move, an UNKNOWN state it holds.
        A value re-sent *now* (OPC UA initial values) still ends the gap at its arrival.
        """
        if self._last_time is not None:
            self._sealed = self._last_time

    def set(self, t: float, element: TimeElement, received: float | None = None) -> bool:
        """Enter `element` at `t` (already mapped); False when ignored as out of order."""
        last = self._last_time
        if last is not None and t < last:
            if received is None or element is _UNKNOWN or self.current is not _UNKNOWN:
                return False
            if received < self._sealed:
                return False  # played again after a restart: already in the timeline
            t = received if received > last else last
        self._last_time = t
        times, elems = self._times, self._elems
        if elems and elems[-1] is element:
            return True
        if times and times[-1] == t:
            self._revert()  # same instant: the last value fed wins
            if elems and elems[-1] is element:
                return True
        if not times:
            self._undo = self._tracker()
            times.append(t)
            elems.append(element)
            return True
        self._transition(t, element)
        return True

    def _tracker(self) -> _Undo:
        return (
            self._last_known,
            self._uptime,
            self._in_episode,
            self._episode_adet,
            len(self._fail_t),
            len(self._rep_t),
        )

    def _revert(self) -> None:
        last_known, uptime, in_episode, episode_adet, failures, repairs = self._undo
        self._last_known, self._uptime = last_known, uptime
        self._in_episode, self._episode_adet = in_episode, episode_adet
        del self._fail_t[failures:], self._fail_tbf[failures:]
        del self._rep_t[repairs:], self._rep_ttr[repairs:]
        self._times.pop()
        self._elems.pop()

    def _transition(self, t: float, new: TimeElement) -> None:
        self._undo = self._tracker()
        old = self._elems[-1]
        planned = self.planned
        counted = old in UP_ELEMENTS or (old is _ADET and self._in_episode)
        if counted:
            since = self._times[-1]
            duration = t - since
            if planned is not None:
                duration -= planned.overlap(since, t)
            if old is _ADET:
                self._episode_adet += duration
            else:
                self._uptime += duration
        if old is not _UNKNOWN:
            self._last_known = old
        if new is _ADET:
            if (
                not self._in_episode
                and self._last_known in UP_ELEMENTS
                and (planned is None or not planned.contains(t))
            ):
                self._fail_t.append(t)
                self._fail_tbf.append(self._uptime)
                self._uptime = 0.0
                self._in_episode = True
                self._episode_adet = 0.0
        elif new is not _UNKNOWN and self._in_episode:
            self._rep_t.append(t)
            self._rep_ttr.append(self._episode_adet)
            self._in_episode = False
        self._times.append(t)
        self._elems.append(new)

    def elements_between(
        self, t0: float, t1: float, now: float, unknown: list[tuple[float, float]] | None = None
    ) -> dict[TimeElement, float]:
        """Seconds per element in [t0, min(t1, now)); the open segment runs up to `now`.

        With `unknown`, the UNKNOWN spans found are appended to it (in the same pass).
        """
        out = dict.fromkeys(TimeElement, 0.0)
        end = t1 if t1 < now else now
        if end <= t0:
            return out
        times, elems = self._times, self._elems
        n = len(times)
        first = times[0] if n else end
        if self._horizon > first:
            first = self._horizon
        if first > t0:  # nothing known before the first sample (or the prune horizon)
            head = first if first < end else end
            out[_UNKNOWN] += head - t0
            if unknown is not None:
                unknown.append((t0, head))
        start = t0 if t0 > first else first
        if start >= end:
            return out
        i = bisect_right(times, start) - 1
        while i < n:
            seg_start = times[i]
            if seg_start >= end:
                break
            seg_end = times[i + 1] if i + 1 < n else end
            if seg_end > end:
                seg_end = end
            if seg_start < start:
                seg_start = start
            if seg_end > seg_start:
                element = elems[i]
                out[element] += seg_end - seg_start
                if unknown is not None and element is _UNKNOWN:
                    if unknown and unknown[-1][1] == seg_start:
                        unknown[-1] = (unknown[-1][0], seg_end)
                    else:
                        unknown.append((seg_start, seg_end))
            i += 1
        return out

    def failures_between(self, t0: float, t1: float) -> FailureStats:
        """Failures and completed repairs whose instant lies in [t0, t1).

        The first failure's TBF counts from `t0` (the window's start), not from a failure before it.
        """
        fail_t = self._fail_t
        fa, fb = bisect_left(fail_t, t0), bisect_left(fail_t, t1)
        ra, rb = bisect_left(self._rep_t, t0), bisect_left(self._rep_t, t1)
        tbf = self.uptime_between(t0, fail_t[fa]) + sum(self._fail_tbf[fa + 1 : fb]) if fb > fa else 0.0
        return FailureStats(fb - fa, tbf, rb - ra, sum(self._rep_ttr[ra:rb]))

    def uptime_between(self, t0: float, t1: float) -> float:
        """APT + AUST seconds in [t0, t1) outside planned breaks (what a TBF counts)."""
        up = 0.0
        for a, b, element in self._segments(t0, t1):
            if element in UP_ELEMENTS:
                up += b - a
                if self.planned is not None:
                    up -= self.planned.overlap(a, b)
        return up

    def _segments(self, t0: float, t1: float) -> list[tuple[float, float, TimeElement]]:
        """(start, end, element) of the recorded segments clipped to [t0, t1); the last one is open."""
        times, elems = self._times, self._elems
        n = len(times)
        out: list[tuple[float, float, TimeElement]] = []
        if t1 <= t0 or not n:
            return out
        i = max(bisect_right(times, t0) - 1, 0)
        while i < n:
            a = times[i]
            if a >= t1:
                break
            b = times[i + 1] if i + 1 < n else t1
            a, b = max(a, t0), min(b, t1)
            if b > a:
                out.append((a, b, elems[i]))
            i += 1
        return out

    def failure_events(self) -> list[tuple[float, float]]:
        """(time of failure, TBF seconds) for every retained failure."""
        return list(zip(self._fail_t, self._fail_tbf, strict=True))

    def repair_events(self) -> list[tuple[float, float]]:
        """(time of restoration, TTR seconds) for every retained completed repair."""
        return list(zip(self._rep_t, self._rep_ttr, strict=True))

    def prune(self, before: float) -> None:
        """Forget history before `before` (it then reads UNKNOWN); the current state is kept."""
        if before <= self._horizon:
            return
        self._horizon = before
        times = self._times
        keep = bisect_right(times, before) - 1  # the segment covering `before`
        if keep > 0:
            del times[:keep], self._elems[:keep]
        # Events of the last transition sit at times[-1] and must stay for `_revert`.
        cut = min(before, times[-1]) if times else before
        nf, nr = bisect_left(self._fail_t, cut), bisect_left(self._rep_t, cut)
        del self._fail_t[:nf], self._fail_tbf[:nf], self._rep_t[:nr], self._rep_ttr[:nr]
        last_known, uptime, in_episode, episode_adet, failures, repairs = self._undo
        self._undo = (last_known, uptime, in_episode, episode_adet, failures - nf, repairs - nr)

    def state(self) -> dict[str, Any]:
        """Everything retained, as a JSON-able dict, for `from_state` after a restart."""
        last_known, uptime, in_episode, episode_adet, failures, repairs = self._undo
        return {
            "times": list(self._times),
            "elements": [e.value for e in self._elems],
            "last_time": self._last_time,
            "horizon": None if self._horizon == _NO_HORIZON else self._horizon,
            "last_known": None if self._last_known is None else self._last_known.value,
            "uptime": self._uptime,
            "in_episode": self._in_episode,
            "episode_adet": self._episode_adet,
            "failures": [list(e) for e in self.failure_events()],
            "repairs": [list(e) for e in self.repair_events()],
            "undo": [
                None if last_known is None else last_known.value,
                uptime,
                in_episode,
                episode_adet,
                failures,
                repairs,
            ],
        }

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        state_map: StateMap = DEMO_MACHINE_STATE,
        planned: PlannedBreaks | None = None,
    ) -> StateTimeline:
        """Rebuild a timeline saved by `state()`."""
        tl = cls(state_map, planned)
        tl._times = [float(t) for t in state["times"]]
        tl._elems = [TimeElement(e) for e in state["elements"]]
        tl._last_time = state["last_time"]
        tl._horizon = _NO_HORIZON if state["horizon"] is None else float(state["horizon"])
        tl._last_known = None if state["last_known"] is None else TimeElement(state["last_known"])
        tl._uptime = float(state["uptime"])
        tl._in_episode = bool(state["in_episode"])
        tl._episode_adet = float(state["episode_adet"])
        tl._fail_t = [float(t) for t, _ in state["failures"]]
        tl._fail_tbf = [float(v) for _, v in state["failures"]]
        tl._rep_t = [float(t) for t, _ in state["repairs"]]
        tl._rep_ttr = [float(v) for _, v in state["repairs"]]
        known, uptime, in_episode, episode_adet, failures, repairs = state["undo"]
        tl._undo = (
            None if known is None else TimeElement(known),
            float(uptime),
            bool(in_episode),
            float(episode_adet),
            int(failures),
            int(repairs),
        )
        return tl
