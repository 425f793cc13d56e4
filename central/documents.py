"""Strict readers for the small documents a site publishes besides readings.

Each returns a typed record or raises ``WireError`` (the same typed error as the readings decoder),
so the ingest sets the message aside with a reason instead of storing something half-understood.
Readings batches are decoded by ``agent.publish.wire.decode_batch``: one definition for both sides.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from agent.publish.wire import WIRE_VERSION, WireError

EVENT_KINDS = ("raise", "clear", "flapping")
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _epoch(x: Any) -> TypeGuard[float]:
    # before the year 3000
    return type(x) in (int, float) and math.isfinite(x) and 0 <= x < 32503680000


@dataclass(frozen=True)
class Status:
    state: str
    boot: str | None
    version: str | None
    ts: float | None


def read_status(doc: dict[str, Any]) -> Status:
    state, boot, version, ts = doc.get("state"), doc.get("boot"), doc.get("version"), doc.get("ts")
    if state not in ("online", "offline"):
        raise WireError("foreign", "status.state must be online or offline")
    if boot is not None and not isinstance(boot, str) \
            or version is not None and not isinstance(version, str):
        raise WireError("bad_shape", "status.boot and status.version must be strings")
    if ts is not None and not _epoch(ts):
        raise WireError("bad_shape", "status.ts must be a time in seconds")
    return Status(state, boot, version, float(ts) if ts is not None else None)


def read_meta(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    units = doc.get("units")
    if doc.get("v") != WIRE_VERSION or not isinstance(units, dict):
        raise WireError("foreign", "not a meta document of version 1")
    for dev, metrics in units.items():
        if not isinstance(metrics, dict) or not all(isinstance(u, str) for u in metrics.values()):
            raise WireError("bad_shape", f"meta.units.{dev} must map metric names to unit strings")
    return units


@dataclass(frozen=True)
class ConfigState:
    doc: dict[str, Any]
    version: str | None


def read_config_state(doc: dict[str, Any]) -> ConfigState:
    if doc.get("v") != WIRE_VERSION or not isinstance(doc.get("state"), str):
        raise WireError("foreign", "not a config state document of version 1")
    cfg = doc.get("config")
    version = cfg.get("version") if isinstance(cfg, dict) else None
    if isinstance(cfg, dict) and cfg.get("source") == "local" and version is None:
        version = "local"
    return ConfigState(doc, None if version is None else str(version))


@dataclass(frozen=True)
class Event:
    id: int
    kind: str
    cond: str
    dev: str
    start: float
    end: float | None
    dur_s: float | None
    est: bool
    values: dict[str, Any]
    flags: int


@dataclass(frozen=True)
class EventBatch:
    boot: str | None
    events: tuple[Event, ...]
    refused: tuple[tuple[int, str], ...]   # (index in "e", why) of entries that were set aside


def _event(e: Any) -> Event:
    if not isinstance(e, dict):
        raise ValueError("not an object")
    eid, kind, cond, dev = e.get("id"), e.get("kind"), e.get("cond"), e.get("dev")
    start, end, dur, est = e.get("start"), e.get("end"), e.get("dur_s"), e.get("est", False)
    values, flags = e.get("values", {}), e.get("flags", 0)
    if type(eid) is not int or not 0 <= eid < 2**63:
        raise ValueError("id must be a non-negative integer")
    if kind not in EVENT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(EVENT_KINDS)}")
    if not isinstance(cond, str) or not cond or not isinstance(dev, str) or not dev:
        raise ValueError("cond and dev must be non-empty strings")
    if not _epoch(start) or (end is not None and not _epoch(end)):
        raise ValueError("start and end must be times in seconds")
    if dur is not None and not (type(dur) in (int, float) and math.isfinite(dur)):
        raise ValueError("dur_s must be a number")
    if type(est) is not bool or not isinstance(values, dict) or type(flags) is not int:
        raise ValueError("est must be a boolean, values an object, flags an integer")
    return Event(eid, kind, cond, dev, float(start), None if end is None else float(end),
                 None if dur is None else float(dur), est, values, flags)


def read_events(doc: dict[str, Any]) -> EventBatch:
    """An events message; a malformed entry is refused on its own, the others are kept."""
    entries = doc.get("e")
    if doc.get("v") != WIRE_VERSION or not isinstance(entries, list):
        raise WireError("foreign", "not an events message of version 1")
    boot = doc.get("boot")
    good: list[Event] = []
    refused: list[tuple[int, str]] = []
    for i, e in enumerate(entries):
        try:
            good.append(_event(e))
        except ValueError as exc:
            refused.append((i, str(exc)))
    return EventBatch(boot if isinstance(boot, str) else None, tuple(good), tuple(refused))


@dataclass(frozen=True)
class ActiveEvents:
    ts: float | None
    active: list[Any]


def read_events_active(doc: dict[str, Any]) -> ActiveEvents:
    active, ts = doc.get("active"), doc.get("ts")
    if doc.get("v") != WIRE_VERSION or not isinstance(active, list):
        raise WireError("foreign", "not an active-events document of version 1")
    if ts is not None and not _epoch(ts):
        raise WireError("bad_shape", "ts must be a time in seconds")
    return ActiveEvents(None if ts is None else float(ts), active)


def read_summary(doc: dict[str, Any]) -> str:
    """The day (YYYY-MM-DD) of a daily summary; the document is stored as it is."""
    day = doc.get("day")
    if doc.get("v") != WIRE_VERSION or not isinstance(day, str) or not DAY.fullmatch(day):
        raise WireError("foreign", "not a daily summary of version 1")
    return day
