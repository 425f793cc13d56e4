"""The latest samples of each device, for sources that put another device's view beside their own.

The source factory owns one ``LatestSamples``; a source that others may read (the SNMP router)
publishes its samples after each successful poll, and a source that reads them (the WAN check,
with ``router = "<device>"``) asks for them by device name. Sources never hold references to each
other, so each still polls, fails and restarts on its own; a view older than its publisher said it
stays fresh for is not handed out, so a router that stopped answering is not reported as up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.readings import Sample, Value


@dataclass(frozen=True)
class Snapshot:
    """One device's samples from one poll, and when (monotonic seconds) they were read."""

    device: str
    samples: dict[str, Sample]
    at: float
    fresh_for_s: float

    def value(self, metric: str) -> Value:
        sample = self.samples.get(metric)
        return sample.value if sample is not None else None


class LatestSamples:
    """Device name -> its latest ``Snapshot``. Single event loop, so no locking is needed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._latest: dict[str, Snapshot] = {}

    def publish(self, device: str, samples: list[Sample], *, fresh_for_s: float) -> None:
        """Record ``device``'s samples of a poll that just succeeded."""
        self._latest[device] = Snapshot(device, {s.metric: s for s in samples}, self._clock(),
                                        fresh_for_s)

    def get(self, device: str) -> Snapshot | None:
        """The device's latest snapshot, or None when there is none or it is too old to trust."""
        snap = self._latest.get(device)
        if snap is None or self._clock() - snap.at > snap.fresh_for_s:
            return None
        return snap

    def age_s(self, device: str) -> float | None:
        """Seconds since the device's latest snapshot (fresh or not), None if never published."""
        snap = self._latest.get(device)
        return None if snap is None else self._clock() - snap.at
