"""A token bucket: at most ``burst`` events at once, then one per ``every_s`` seconds.

Used to bound what the agent sends in answer to messages it cannot trust yet (a rejected command
or push): a flood of them from the broker must not become a flood of replies and state writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    """``allow()`` says whether one more event fits; ``suppressed`` counts those that did not."""

    def __init__(self, *, burst: int, every_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if burst < 1 or every_s <= 0:
            raise ValueError("burst must be >= 1 and every_s > 0")
        self.burst = burst
        self.every_s = every_s
        self.suppressed = 0
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def allow(self) -> bool:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) / self.every_s)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.suppressed += 1
        return False
