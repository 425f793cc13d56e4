"""The events contract on the wire (docs/mqtt.md, agent/schemas/events*.schema.json).

    PREFIX/SITE/events          QoS 1, not retained, ahead of live readings and any backlog:
        {"v": 1, "site": S, "boot": B, "e": [{"id": 41, "kind": "raise", "cond": "mains_lost",
          "dev": "ups", "start": 1795342337.812, "end": null, "dur_s": null, "est": false,
          "values": {"on_battery": true, "battery.runtime_s": 1380}, "flags": 0}]}
    PREFIX/SITE/events/active   QoS 1, retained: what is on now (a flapping condition has
                                "flapping": true among its values)
        {"v": 1, "site": S, "ts": T, "active": [{"id", "cond", "dev", "start", "values"}]}
    PREFIX/SITE/summary         QoS 1, not retained: one finished day (agent.events.summary)

Plain JSON (never compressed: events are small and must be readable by any tool). Delivery is at
least once; a consumer keeps one event per ``(site, id)``. The encoder and the decoder live here
together so the agent and the central side share one definition.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.events.model import FLAPPING, RAISE, Active, Event

EVENTS_VERSION = 1
CONTENT_TYPE = "application/json"


def _t(ts: float) -> float:
    return round(ts, 3)


def _clean(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, Mapping):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def _dump(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(_clean(doc), separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


def event_doc(e: Event) -> dict[str, Any]:
    return {"id": e.id, "kind": e.kind, "cond": e.cond, "dev": e.dev, "start": _t(e.start),
            "end": None if e.end is None else _t(e.end),
            "dur_s": None if e.dur_s is None else round(e.dur_s, 3), "est": e.est,
            "values": dict(e.values), "flags": e.flags}


def encode_events(events: Sequence[Event], *, site: str, boot: str) -> bytes:
    """One message of events (ascending id) for ``PREFIX/SITE/events``."""
    return _dump({"v": EVENTS_VERSION, "site": site, "boot": boot,
                  "e": [event_doc(e) for e in events]})


def encode_active(active: Sequence[Active], *, site: str, ts: float) -> bytes:
    """The retained active set for ``PREFIX/SITE/events/active`` (empty list: all clear)."""
    return _dump({"v": EVENTS_VERSION, "site": site, "ts": _t(ts), "active": [
        {"id": a.id, "cond": a.cond, "dev": a.dev, "start": _t(a.start),
         "values": {**a.values, "flapping": True} if a.kind == FLAPPING else dict(a.values)}
        for a in active]})


def encode_summary(doc: Mapping[str, Any]) -> bytes:
    """A daily summary (agent.events.summary.build) for ``PREFIX/SITE/summary``."""
    return _dump(doc)


@dataclass(frozen=True)
class EventsMessage:
    site: str
    boot: str
    events: tuple[Event, ...]


def decode_events(payload: bytes) -> EventsMessage:
    """Inverse of ``encode_events`` (what the central side and the tests use)."""
    doc = json.loads(payload)
    if doc.get("v") != EVENTS_VERSION:
        raise ValueError(f"unknown events payload version {doc.get('v')!r}")
    return EventsMessage(doc["site"], doc["boot"], tuple(Event.from_dict(e) for e in doc["e"]))


def decode_active(payload: bytes) -> list[Active]:
    doc = json.loads(payload)
    if doc.get("v") != EVENTS_VERSION:
        raise ValueError(f"unknown active payload version {doc.get('v')!r}")
    return [Active(int(a["id"]), FLAPPING if (a.get("values") or {}).get("flapping") is True
                   else RAISE, a["cond"], a["dev"], float(a["start"]),
                   dict(a.get("values") or {})) for a in doc["active"]]
