"""A scripted clinic for the event engine: polls at chosen times, a tick every second between.

    c = Clinic()
    c.at("14:03:00").poll("ups", on_battery=True, **{"battery.charge_pct": 98})
    c.run_until("14:50:00", every=10, dev="ups", on_battery=True)
    c.events  # everything the engine told, in order

Times are the clinic's local clock (UTC-6, Mexico City) on 2026-11-20; the monotonic clock is
the seconds since the script began, so wall and monotonic agree unless a test makes them not.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from agent.config.events import EventsConfig
from agent.events.engine import EventEngine, RestartEvidence
from agent.events.model import Event
from agent.readings import Reading

TZ = timezone(timedelta(hours=-6))
DAY = datetime(2026, 11, 20, tzinfo=TZ)


def wall(hms: str, day: datetime = DAY) -> float:
    h, m, s = (int(x) for x in hms.split(":"))
    return (day + timedelta(hours=h, minutes=m, seconds=s)).timestamp()


class Clinic:
    def __init__(self, cfg: EventsConfig | None = None, *, start: str = "08:00:00",
                 engine: EventEngine | None = None, mono_offset: float = 0.0) -> None:
        self.cfg = cfg or EventsConfig()
        self.engine = engine or EventEngine(self.cfg, tz=TZ)
        self.origin = wall(start)
        self.now = self.origin
        self.mono_offset = mono_offset
        self.events: list[Event] = []

    @property
    def mono(self) -> float:
        return self.now - self.origin + self.mono_offset

    def at(self, hms: str) -> Clinic:
        target = wall(hms)
        assert target >= self.now, f"{hms} is in the script's past"
        self._advance_to(target)
        return self

    def after(self, seconds: float) -> Clinic:
        self._advance_to(self.now + seconds)
        return self

    def _advance_to(self, target: float) -> None:
        # One tick per second, as the writer's timer would.
        while self.now + 1 <= target:
            self.now += 1
            self.events += self.engine.tick(self.mono)
        self.now = target
        self.events += self.engine.tick(self.mono)

    def poll(self, dev: str, *, status: str = "ok", flags: int = 0, **metrics: Any) -> list[Event]:
        readings = [Reading(dev, "poll.status", status, "", self.now, flags)]
        readings += [Reading(dev, m.replace("__", "."), v, "", self.now, flags)
                     for m, v in metrics.items()]
        got = self.engine.observe(readings, self.mono)
        self.events += got
        return got

    def polls(self, dev: str, until: str, every: float, **metrics: Any) -> None:
        """Poll ``dev`` every ``every`` seconds from now until (not including) ``until``."""
        self._polls_to(dev, wall(until), every, metrics)

    def polls_for(self, dev: str, seconds: float, every: float, **metrics: Any) -> None:
        """Poll ``dev`` every ``every`` seconds for ``seconds``."""
        self._polls_to(dev, self.now + seconds, every, metrics)

    def _polls_to(self, dev: str, end: float, every: float, metrics: dict[str, Any]) -> None:
        while self.now < end:
            self.poll(dev, **metrics)
            self._advance_to(min(self.now + every, end))

    def restart(self, *, host_boot: float | None = None, downtime_s: float = 0.0,
                mono_reset: bool = True) -> Clinic:
        """The agent stops (its last snapshot kept, as the store would) and starts again after
        ``downtime_s``; the monotonic clock restarts from 0 when the PC rebooted."""
        state = json.loads(json.dumps(self.engine.snapshot()))   # what the store keeps
        self.now += downtime_s
        self.origin, self.mono_offset = (self.now, 0.0) if mono_reset else \
            (self.origin, self.mono_offset)
        self.engine = EventEngine(self.cfg, tz=TZ)
        self.engine.restore(state, RestartEvidence(host_boot=host_boot))
        return self

    def told(self, kind: str | None = None, cond: str | None = None) -> list[Event]:
        return [e for e in self.events if (kind is None or e.kind == kind) and
                (cond is None or e.cond == cond)]


def hms(ts: float) -> str:
    return datetime.fromtimestamp(ts, TZ).strftime("%H:%M:%S")
