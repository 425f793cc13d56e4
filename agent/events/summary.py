"""The daily summary of a site: the clinic's own power and internet figures, small enough for
any link.

    {"v": 1, "site": "DFSSA001234", "day": "2026-11-20",
     "mains_outages": 2, "mains_outage_min": 53.0, "mains_longest_min": 47.0,
     "internet_outages": 1, "internet_outage_min": 12.5, "internet_longest_min": 12.5,
     "on_battery_min": 53.0, "voltage_min": 104.2, "voltage_max": 131.0,
     "readings_dropped": 0, "estimated": false}

Outages come from the events (agent.events.store), so they include the ones whose end was
estimated after a power cut of the PC (then ``estimated`` is true). Overlapping outages of
several devices (a UPS and a meter, the router and the wan check) count once. An outage counts
on the day it began; its minutes count on the days they fall in; an outage still on at the end
of the day counts until midnight. Over a month these are the clinic's SAIFI (outages) and SAIDI
(minutes) figures.

Voltage extremes and dropped readings are not in any event: ``DayAccumulator`` keeps them from
the readings, per local day of the PC, and hands over a day when the first reading of the next
one arrives. Voltages under the ``voltage.dead_v`` floor (a meter during an outage) and a UPS's
input while it is on battery are left out: the outage is counted, not its zero volts.
Readings whose clock is suspect are left out: their day is not known.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from agent.clock import CLOCK_SUSPECT
from agent.readings import Value

SUMMARY_VERSION = 1
_MAINS_VOLTAGE = re.compile(r"input\.voltage|input\.l\d\.voltage|voltage\.l\d")
_COUNTED_PREFIXES = ("input.", "voltage.", "buffer.dropped_total")
DEAD_V = 20.0


@dataclass(frozen=True)
class DayCounters:
    day: str                     # YYYY-MM-DD, the PC's local date
    voltage_min: float | None
    voltage_max: float | None
    readings_dropped: int


class DayAccumulator:
    """Per local day: lowest and highest mains voltage, readings dropped."""

    def __init__(self, *, tz: tzinfo | None = None, dead_v: float = DEAD_V) -> None:
        self.tz = tz
        self.dead_v = dead_v
        self.day: str | None = None
        self.vmin: float | None = None
        self.vmax: float | None = None
        self.dropped = 0
        self._dropped_seen: float | None = None
        self._finished: list[DayCounters] = []

    def observe(self, device: str, batch: Mapping[str, Value], wall: float, flags: int) -> None:
        if flags & CLOCK_SUSPECT:
            return
        day = local_day(wall, self.tz)
        if self.day is None:
            self.day = day
        elif day > self.day:
            self._finished.append(self.counters())
            self.day, self.vmin, self.vmax, self.dropped = day, None, None, 0
        on_battery = batch.get("on_battery") is True
        for metric, value in batch.items():
            if not metric.startswith(_COUNTED_PREFIXES) or isinstance(value, bool) or \
                    not isinstance(value, (int, float)):
                continue
            if _MAINS_VOLTAGE.fullmatch(metric) and value >= self.dead_v and \
                    not (on_battery and metric.startswith("input.")):
                self.vmin = value if self.vmin is None else min(self.vmin, value)
                self.vmax = value if self.vmax is None else max(self.vmax, value)
            elif metric == "buffer.dropped_total":
                if self._dropped_seen is not None:
                    # A counter that went back (a new buffer file) counts from zero again.
                    self.dropped += int(value - self._dropped_seen) if value >= \
                        self._dropped_seen else int(value)
                self._dropped_seen = float(value)

    def counters(self) -> DayCounters:
        return DayCounters(self.day or "", self.vmin, self.vmax, self.dropped)

    def take_finished(self) -> list[DayCounters]:
        done, self._finished = self._finished, []
        return done

    def snapshot(self) -> dict[str, Any]:
        return {"day": self.day, "vmin": self.vmin, "vmax": self.vmax, "dropped": self.dropped,
                "dropped_seen": self._dropped_seen,
                "finished": [c.__dict__ for c in self._finished]}

    def restore(self, doc: Mapping[str, Any]) -> None:
        self.day = doc.get("day")
        self.vmin, self.vmax = doc.get("vmin"), doc.get("vmax")
        self.dropped = int(doc.get("dropped") or 0)
        self._dropped_seen = doc.get("dropped_seen")
        self._finished = [DayCounters(**c) for c in doc.get("finished") or ()]


def local_day(wall: float, tz: tzinfo | None) -> str:
    return datetime.fromtimestamp(wall, tz).date().isoformat()


def day_bounds(day: str, tz: tzinfo | None) -> tuple[float, float]:
    """Epoch seconds of the local midnight that starts ``day`` and of the next one."""
    d = date.fromisoformat(day)
    nxt = d + timedelta(days=1)
    # Without a zone, datetime is naive and timestamp() reads it in the PC's local zone.
    return (datetime(d.year, d.month, d.day, tzinfo=tz).timestamp(),
            datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).timestamp())


def build(conn: sqlite3.Connection, *, site: str, counters: DayCounters, tz: tzinfo | None,
          now: float) -> dict[str, Any]:
    """The summary document of one finished day, from the stored events and the counters."""
    from agent.events.store import intervals

    lo, hi = day_bounds(counters.day, tz)
    mains = intervals(conn, ("mains_lost",), lo, hi, now=now)
    internet = intervals(conn, ("wan_down",), lo, hi, now=now)
    on_battery = [i for i in mains if i[3]]
    doc: dict[str, Any] = {"v": SUMMARY_VERSION, "site": site, "day": counters.day}
    for name, spans in (("mains", mains), ("internet", internet)):
        merged = _union((s, e) for s, e, _, _ in spans)
        began = [(s, e) for s, e in merged if lo <= s < hi]
        doc[f"{name}_outages"] = len(began)
        doc[f"{name}_outage_min"] = _minutes(sum(_overlap(s, e, lo, hi) for s, e in merged))
        doc[f"{name}_longest_min"] = _minutes(max((e - s for s, e in began), default=0.0))
    doc["on_battery_min"] = _minutes(sum(_overlap(s, e, lo, hi) for s, e in
                                         _union((s, e) for s, e, _, _ in on_battery)))
    doc["voltage_min"] = counters.voltage_min
    doc["voltage_max"] = counters.voltage_max
    doc["readings_dropped"] = counters.readings_dropped
    doc["estimated"] = any(est for _, _, est, _ in mains + internet)
    return doc


def _union(spans: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _overlap(s: float, e: float, lo: float, hi: float) -> float:
    return max(0.0, min(e, hi) - max(s, lo))


def _minutes(seconds: float) -> float:
    return round(seconds / 60, 1)
