"""Throttling of failed logins per client address (a sliding one-minute window, in memory).

Once an address has failed `limit` times within the window, *every* authentication attempt from
it is refused with 429 until old failures age out, valid tokens included: answering a valid token
with 200 and a wrong one with 429 would let a guesser keep going and read the answer anyway.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW = 60.0
MAX_ADDRESSES = 100_000  # addresses remembered at most: memory stays bounded under a flood


class FailedLogins:
    """Failure timestamps per client address."""

    def __init__(
        self, limit: int, window: float = WINDOW, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, address: str, now: float) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures

    def retry_after(self, address: str) -> float:
        """Seconds until `address` may try again; 0 when it may try now."""
        now = self.clock()
        failures = self._recent(address, now)
        if failures is None or len(failures) < self.limit:
            return 0.0
        return max(1.0, failures[-self.limit] + self.window - now)

    def failed(self, address: str) -> None:
        """Record one failed attempt."""
        now = self.clock()
        if address not in self._failures and len(self._failures) >= MAX_ADDRESSES:
            # Drop the address that failed first (dicts keep insertion order): O(1), no scan that a
            # flood from many addresses could turn into a CPU sink.
            self._failures.pop(next(iter(self._failures)))
        failures = self._failures.setdefault(address, deque())
        failures.append(now)
        while len(failures) > self.limit:  # only the last `limit` matter for the decision
            failures.popleft()
