"""How far the wall clock can be trusted.

Clinic PCs often boot without a working RTC or NTP (the link is down): the clock may read 1970 or
some other day, then step when NTP returns. Readings are ordered by sequence number, never by time,
so a bad clock cannot reorder or expire them; it is only flagged so the central side knows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

# Reading flags (bit field, published as "f").
CLOCK_SUSPECT = 1   # wall clock implausible: before the release floor, or behind the last
                    # trusted time
CLOCK_STEPPED = 2   # the wall clock jumped relative to the monotonic clock since the previous
                    # reading

# No clinic reading can predate this release: a clock before it was never set.
RELEASE_FLOOR = 1_767_225_600.0   # 2026-01-01T00:00:00Z
STEP_TOLERANCE_S = 5.0


@dataclass
class ClockGuard:
    """Flags readings whose timestamps may be wrong. Feed it the last trusted time from the
    store."""

    last_trusted: float = 0.0
    _last_wall: float | None = None
    _last_mono: float | None = None
    steps_seen: int = 0

    def stamp(self, wall: float | None = None, mono: float | None = None) -> tuple[float, int]:
        """The current UTC time and the flags that go with it."""
        wall = time.time() if wall is None else wall
        mono = time.monotonic() if mono is None else mono
        flags = 0
        if self._last_wall is not None and self._last_mono is not None:
            drift = (wall - self._last_wall) - (mono - self._last_mono)
            if abs(drift) > STEP_TOLERANCE_S:
                flags |= CLOCK_STEPPED
                self.steps_seen += 1
        self._last_wall, self._last_mono = wall, mono
        if wall < RELEASE_FLOOR or wall < self.last_trusted - STEP_TOLERANCE_S:
            flags |= CLOCK_SUSPECT
        else:
            self.last_trusted = max(self.last_trusted, wall)
        return wall, flags
