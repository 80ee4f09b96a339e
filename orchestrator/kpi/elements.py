"""ISO 22400-2 time elements and quantities of one work unit (or a sum of them) over one window.

The time tree (STANDARDS.md §1.1, ONT): POT ⊃ {PDOT, PBT ⊃ {ADOT, AUBT ⊃ {ADET, AUPT ⊃ {AUST, APT}}}}.
parklink adds one bucket ISO does not have: UNKNOWN, the time nobody observed (no communication,
Bad quality, before the first sample). It is never production and never down time; it is taken
out of the planned busy time and reported as `coverage` instead (ARCHITECTURE.md: loss of
communication is not downtime).

Everything here is a sum, so `Elements` add up: a line is the sum of its assets, a day the sum of
its hours. KPIs are divided out only at the end (formulas.py), never averaged (§1.5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from operator import add, attrgetter
from typing import Any


class TimeElement(StrEnum):
    """Where a second of the observed window goes; the value is the config name of the bucket."""

    APT = "production"  # actual production time: value-adding
    AUST = "setup"  # actual unit setup time (ASUT in the ontology)
    ADET = "delay"  # unplanned stop while an order runs: malfunctions, minor stops
    ADOT = "no_order"  # available but running no order (ISO "down time" is *not* breakdown)
    PDOT = "planned_down"  # planned down time: breaks, planned maintenance
    UNKNOWN = "unknown"  # not observed: no communication, Bad quality, before the first sample


UP_ELEMENTS = frozenset({TimeElement.APT, TimeElement.AUST})
"""The elements that make up time between failures (TBF: setup + production, IEC 60050-191)."""


@dataclass(frozen=True, slots=True)
class Elements:
    """Seconds per time element, quantities and failure sums of one window; add them to roll up.

    Quantities are credited to the window holding the counter sample that showed them. `ideal_time`
    is Σ PRU·PQ and `ideal_good_time` Σ PRU·GQ in seconds, so sums across products or machines with
    different cycle times stay right. Failure sums keep totals *and* counts so means roll up:
    `failures` entries into ADET from production or setup in the window, `tbf_seconds` the uptime
    (APT + AUST) before each of them; `repairs` ADET episodes that ended in the window with a return
    to a known non-delay state, `repair_time` their observed ADET seconds.
    `uncounted` is how many summed assets have no good/total counter (their quantities are not
    zero but missing); `unpriced_pq` the units produced while no PRU was known.
    `unattributed_*` are the units (and energy) counted across UNKNOWN time: a counter read before
    and after a communication loss shows what was made meanwhile, but not against which time, so
    those units are set apart rather than set against observed time (they would inflate E and OEE).
    PQ … RQ are the units of observed time only; PQ + unattributed_pq is everything counted.
    """

    apt: float = 0.0
    aust: float = 0.0
    adet: float = 0.0
    adot: float = 0.0
    pdot: float = 0.0
    unknown: float = 0.0
    pq: float = 0.0
    gq: float = 0.0
    sq: float = 0.0
    rq: float = 0.0
    energy: float = 0.0
    ideal_time: float = 0.0
    ideal_good_time: float = 0.0
    failures: int = 0
    tbf_seconds: float = 0.0
    repairs: int = 0
    repair_time: float = 0.0
    uncounted: int = 0
    unpriced_pq: float = 0.0
    unattributed_pq: float = 0.0
    unattributed_gq: float = 0.0
    unattributed_sq: float = 0.0
    unattributed_rq: float = 0.0
    unattributed_energy: float = 0.0

    @classmethod
    def from_durations(cls, durations: Mapping[TimeElement, float], **quantities: Any) -> Elements:
        """Elements from a {TimeElement: seconds} map plus keyword quantities (pq=…, gq=…)."""
        get = durations.get
        return cls(
            apt=get(TimeElement.APT, 0.0),
            aust=get(TimeElement.AUST, 0.0),
            adet=get(TimeElement.ADET, 0.0),
            adot=get(TimeElement.ADOT, 0.0),
            pdot=get(TimeElement.PDOT, 0.0),
            unknown=get(TimeElement.UNKNOWN, 0.0),
            **quantities,
        )

    def durations(self) -> dict[TimeElement, float]:
        """The six time buckets as a {TimeElement: seconds} map."""
        return {
            TimeElement.APT: self.apt,
            TimeElement.AUST: self.aust,
            TimeElement.ADET: self.adet,
            TimeElement.ADOT: self.adot,
            TimeElement.PDOT: self.pdot,
            TimeElement.UNKNOWN: self.unknown,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Elements:
        """Elements from stored or received fields (`asdict` form); unknown keys are ignored,
        missing ones are zero."""
        known: dict[str, Any] = {name: values[name] for name in FIELDS if name in values}
        return cls(**known)

    def __add__(self, other: Elements) -> Elements:
        """Field-wise sum: the elements of two windows or two work units together."""
        if not isinstance(other, Elements):
            return NotImplemented
        return Elements(*map(add, field_values(self), field_values(other)))

    @property
    def window_seconds(self) -> float:
        """POT as observed: the whole window, every second of which is in exactly one bucket."""
        return self.apt + self.aust + self.adet + self.adot + self.pdot + self.unknown

    @property
    def aupt(self) -> float:
        """Actual unit processing time AUPT = APT + AUST (PVM)."""
        return self.apt + self.aust

    @property
    def aubt(self) -> float:
        """Actual unit busy time AUBT = AUPT + ADET (KPI-C, MT)."""
        return self.apt + self.aust + self.adet

    @property
    def pbt(self) -> float:
        """Planned busy time PBT = POT − PDOT (PVM), minus the unobserved time (UNKNOWN).

        Summed from its parts, PBT = AUBT + ADOT, so no rounding is left over from subtractions.
        """
        return self.apt + self.aust + self.adet + self.adot

    @property
    def observed_seconds(self) -> float:
        """The window minus the UNKNOWN time."""
        return self.apt + self.aust + self.adet + self.adot + self.pdot

    @property
    def coverage(self) -> float | None:
        """Share of the window that was observed, 1 − UNKNOWN / window; None for an empty window."""
        window = self.window_seconds
        return None if window <= 0 else self.observed_seconds / window


FIELDS = tuple(f.name for f in fields(Elements))
field_values = attrgetter(*FIELDS)
"""All fields of an Elements as one tuple, in FIELDS order (in C: rollups add many Elements)."""
EMPTY = Elements()
