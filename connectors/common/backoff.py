"""Capped exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter")."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays for successive reconnect attempts: random in [initial, min(cap, initial·2^n)]."""

    initial: float = 0.5
    cap: float = 30.0
    attempt: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.initial * 2.0 ** min(self.attempt, 30))
        self.attempt += 1
        return self.initial + self._rng.random() * max(0.0, ceiling - self.initial)

    def reset(self) -> None:
        self.attempt = 0
