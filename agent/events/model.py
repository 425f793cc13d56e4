"""What the event engine produces: raise, clear and flapping events, and the active set.

A condition (``cond``, e.g. ``mains_lost`` or ``voltage_low.l2``) of a device is a state with a
start and an end. Its raise carries the start; its clear carries the same start, the end and the
duration, so a consumer pairs them by ``(dev, cond, start)``. A condition that raised and
cleared more often than allowed becomes one ``flapping`` event instead, closed by a clear with
the flapping event's start. Times are the edge's wall clock (UTC epoch seconds) at the polls
that showed the change; ``flags`` are the clock-trust flags of those readings (agent.clock).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.readings import Value

RAISE, CLEAR, FLAPPING = "raise", "clear", "flapping"
KINDS = (RAISE, CLEAR, FLAPPING)


@dataclass(frozen=True, slots=True)
class Event:
    """One event, as stored and as sent (agent.events.wire)."""

    id: int                      # per site, only goes up, never repeats
    kind: str                    # raise | clear | flapping
    cond: str                    # condition code, optionally "." and the part (phase, disk)
    dev: str                     # device name from the config ("agent" for the agent itself)
    start: float                 # when the condition began (edge wall clock)
    end: float | None = None     # clear only: when it ended
    dur_s: float | None = None   # clear only: end - start
    est: bool = False            # start or end estimated from evidence (restart, power cut)
    values: Mapping[str, Value] = field(default_factory=dict)
    flags: int = 0               # clock flags of the readings that timed it

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "cond": self.cond, "dev": self.dev,
                "start": self.start, "end": self.end, "dur_s": self.dur_s, "est": self.est,
                "values": dict(self.values), "flags": self.flags}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Event:
        return cls(id=int(d["id"]), kind=str(d["kind"]), cond=str(d["cond"]), dev=str(d["dev"]),
                   start=float(d["start"]),
                   end=None if d.get("end") is None else float(d["end"]),
                   dur_s=None if d.get("dur_s") is None else float(d["dur_s"]),
                   est=bool(d.get("est", False)), values=dict(d.get("values") or {}),
                   flags=int(d.get("flags", 0)))


@dataclass(frozen=True, slots=True)
class Active:
    """A condition that is on now (raised, or flapping), for the retained active set."""

    id: int                      # the event that opened it
    kind: str                    # raise | flapping
    cond: str
    dev: str
    start: float
    values: Mapping[str, Value] = field(default_factory=dict)
    est: bool = False


def base(cond: str) -> str:
    """The condition code without its part: ``voltage_low.l2`` -> ``voltage_low``."""
    return cond.split(".", 1)[0]


def part(cond: str) -> str | None:
    """The part a condition concerns (phase, disk), or None."""
    return cond.split(".", 1)[1] if "." in cond else None
