"""What a source produces and the store keeps.

A source returns ``Sample``s (metric, value, unit); the poller stamps them with the device name
and the poll's UTC time into ``Reading``s; the store gives each a sequence number on commit.
"""

from __future__ import annotations

from dataclasses import dataclass

Value = float | int | str | bool | None


@dataclass(frozen=True, slots=True)
class Sample:
    """One value read from a device. ``metric`` is dotted, e.g. ``if.wan.in_bps``."""

    metric: str
    value: Value
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Reading:
    """A sample with its device and the UTC time (epoch seconds) of the poll that read it."""

    device: str
    metric: str
    value: Value
    unit: str
    ts: float
    # Bit flags describing how far the timestamp can be trusted (see agent.clock).
    flags: int = 0


@dataclass(frozen=True, slots=True)
class StoredReading:
    """A reading as read back from the store, with its never-repeating sequence number."""

    seq: int
    device: str
    metric: str
    value: Value
    unit: str
    ts: float
    flags: int = 0


# Metrics every poll records about itself (status, why, how long it took).
STATUS_METRIC = "poll.status"
REASON_METRIC = "poll.reason"
DURATION_METRIC = "poll.duration_s"
SKIPPED_METRIC = "poll.skipped"   # polls skipped because the previous one overran
