"""Which stored readings are still *live* when the agent's first connection comes up.

The backlog is what waited for the broker. The agent's first polls, made while it was connecting
at start, did not: they belong on the live topic, so the centre sees the clinic's present at
once (not labelled as backlog). What was polled before this process started, or longer than the
window before its first connection (a broker down at boot), is backlog. Later reconnections keep
the plain rule: everything stored before the connection is backlog.
``Freshness`` remembers when each commit happened (a handful in memory: one older than the
window and those inside it) and answers the sequence number below which readings are backlog.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

FRESH_S = 10.0   # readings committed this recently go out live after a (re)connection


class Freshness:
    def __init__(self, start_seq: int, *, window_s: float = FRESH_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._floor = start_seq                       # committed before this process: backlog
        self._commits: deque[tuple[float, int]] = deque()   # (when, last seq then), oldest first

    def committed(self, last_seq: int) -> None:
        """The writer stored readings up to ``last_seq``."""
        now = self._clock()
        self._commits.append((now, last_seq))
        self._forget(now)

    def live_floor(self, last_seq: int) -> int:
        """Readings with ``seq <= live_floor`` are backlog; newer ones (at most ``last_seq``)
        were committed within the window and are live."""
        now = self._clock()
        self._forget(now)
        floor = self._floor
        for when, seq in self._commits:
            if now - when < self.window_s:
                break
            floor = seq
        return min(max(floor, 0), last_seq)

    def _forget(self, now: float) -> None:
        # Keep one commit older than the window (the floor) and those inside it.
        while len(self._commits) >= 2 and now - self._commits[1][0] >= self.window_s:
            self._floor = self._commits.popleft()[1]
