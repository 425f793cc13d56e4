"""The event engine: readings in, raise/clear/flapping events out. Pure: no I/O, time injected.

    writer (one thread)                         this module
    poll's readings ─> engine.observe(readings, mono) ─> conditions.evaluate per device
                                                         -> Track per (device, condition):
                                                            level held raise_after_s / clear_after_s
                                                            -> raise / clear events (ids assigned)
                                                            too many transitions -> one "flapping"
    timer            ─> engine.tick(mono)            (minimum durations that expire between polls,
                                                      at engine.due_at())
    same transaction ─> store.insert(events); store.save_state(engine.snapshot())

A level holds from the poll that showed it until a poll shows otherwise, so ``tick`` raises a
condition once its minimum duration has passed without waiting for the next poll; the event's
start is still the poll that first showed it. Debounce and flapping run on the monotonic clock;
event times are the readings' wall-clock stamps (with their trust flags), and a clear's duration
is measured on the monotonic clock when the wall clock stepped in between (flag 2 then), so a
clock that steps cannot make a condition last longer or shorter than it did.

After a restart ``restore`` takes the snapshot back: conditions that were on stay on and are not
raised again. One that the first poll finds over, after a gap in observation (the agent was
killed, or the PC lost power with the clinic), is cleared with its end estimated from the
evidence and ``est`` set (see ``_estimate_end``).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.clock import CLOCK_STEPPED, STEP_TOLERANCE_S
from agent.config.events import EventsConfig
from agent.events.conditions import DeviceMemory, Verdict, evaluate
from agent.events.model import CLEAR, FLAPPING, RAISE, Active, Event, base
from agent.events.summary import DayAccumulator, DayCounters
from agent.readings import Reading, Value

STATE_VERSION = 1
# Conditions whose end, after a power cut of the PC, is best told by when the PC came back: the
# PC runs on the UPS, so it boots when the mains returns.
POWER_CONDITIONS = ("mains_lost", "generator_failed", "battery_low")
# For tests only: the host boot time the agent assumes (see RestartEvidence.from_host).
TEST_HOST_BOOT_ENV = "CLINIC_AGENT_TEST_HOST_BOOT"
# Kept per device across a restart, as evidence for an outage that ends while the agent is down.
_EVIDENCE_METRICS = ("on_battery", "battery.runtime_s", "battery.charge_pct", "on_battery.total_s")


@dataclass(frozen=True)
class RestartEvidence:
    """What is known at start-up about the time the agent was not watching.

    ``host_boot`` is the wall time the PC booted (psutil.boot_time()); a boot after the last
    reading before the restart means the PC itself was off or rebooted in between.
    """

    host_boot: float | None = None

    @classmethod
    def from_host(cls, environ: Mapping[str, str] | None = None) -> RestartEvidence:
        """The PC's boot time, or, for tests only, ``CLINIC_AGENT_TEST_HOST_BOOT`` (epoch
        seconds) from ``environ``: a test cannot power the machine off, so it tells the agent
        when "the PC came back" (docs/events.md, Restarts and power cuts)."""
        given = (environ or {}).get(TEST_HOST_BOOT_ENV)
        if given:
            try:
                return cls(host_boot=float(given))
            except ValueError as exc:
                raise ValueError(f"{TEST_HOST_BOOT_ENV}={given!r} is not epoch seconds") from exc
        import psutil
        return cls(host_boot=float(psutil.boot_time()))


@dataclass
class Track:
    """One condition of one device: its debounced level, the open raise, the pending change."""

    dev: str
    cond: str
    rule: str
    state: bool = False                       # the level after minimum durations
    open: Active | None = None                # the raise told and not cleared yet
    open_flags: int = 0
    open_mono: float | None = None            # monotonic time of the open raise's start
    flap: Active | None = None                # the flapping event told, not over yet
    pending: bool | None = None               # a level waiting for its minimum duration
    p_mono: float = 0.0
    p_start_mono: float = 0.0                 # the pending change's start, monotonic
    p_wall: float = 0.0
    p_flags: int = 0
    p_values: dict[str, Value] = field(default_factory=dict)
    transitions: collections.deque[float] = field(default_factory=collections.deque)
    last_mono: float = -math.inf              # last completed change (monotonic)
    last_wall: float = 0.0                    # ... its wall time, flags and values
    last_flags: int = 0
    last_values: dict[str, Value] = field(default_factory=dict)
    restored: bool = False                    # on before a restart, not seen since


class EventEngine:
    """See the module docstring. Not thread-safe: one writer owns it."""

    def __init__(self, cfg: EventsConfig, state: Mapping[str, Any] | None = None, *,
                 evidence: RestartEvidence | None = None, tz: Any = None) -> None:
        self.cfg = cfg
        self._next_id = 1
        self._tracks: dict[tuple[str, str], Track] = {}
        self._memory: dict[str, DeviceMemory] = {}
        self._seen_wall: dict[str, float] = {}          # device -> its last poll's wall time
        self._before_restart: dict[str, float] = {}     # device -> last poll before the restart
        self._evidence_latest: dict[str, dict[str, Value]] = {}
        self._evidence = RestartEvidence()
        self.days = DayAccumulator(tz=tz)
        if state:
            self.restore(state, evidence or RestartEvidence())

    # -- input ---------------------------------------------------------------------------------

    def observe(self, readings: Iterable[Reading], now_mono: float) -> list[Event]:
        """Events that the readings of one (or more) polls complete, in order."""
        if not self.cfg.enabled:
            return []
        polls: dict[str, dict[str, Value]] = {}
        walls: dict[str, float] = {}
        flag_bits: dict[str, int] = {}
        for r in readings:
            batch = polls.get(r.device)
            if batch is None:
                batch = polls[r.device] = {}
                walls[r.device], flag_bits[r.device] = r.ts, 0
            batch[r.metric] = r.value
            walls[r.device] = max(walls[r.device], r.ts)
            flag_bits[r.device] |= r.flags
        events: list[Event] = []
        for dev, batch in polls.items():
            wall, flags = walls[dev], flag_bits[dev]
            mem = self._memory.setdefault(dev, DeviceMemory())
            rules = self.cfg.rules_for(dev)
            for v in evaluate(batch, mem, rules, generator=self.cfg.generator, wall=wall,
                              mono=now_mono):
                events += self._feed(v, dev, now_mono, wall, flags)
            self._seen_wall[dev] = wall
            self.days.observe(dev, batch, wall, flags)
        return events + self.tick(now_mono)

    def tick(self, now_mono: float) -> list[Event]:
        """Events whose minimum duration (or flapping quiet time) has passed by ``now_mono``."""
        events: list[Event] = []
        for track in list(self._tracks.values()):
            events += self._maybe_complete(track, now_mono)
            if track.flap is not None and now_mono - track.last_mono >= self.cfg.flap_quiet_s:
                events += self._end_flapping(track)
        return events

    def due_at(self) -> float | None:
        """The monotonic time from which ``tick`` may tell something (a minimum duration or a
        flapping quiet time running out), or None if no timer runs: ``tick`` is needed then
        and only then."""
        due: float | None = None
        for track in self._tracks.values():
            if track.pending is not None:
                rule = self.cfg.rules_for(track.dev)[track.rule]
                wait = rule.raise_after_s if track.pending else rule.clear_after_s
                due = _earliest(due, track.p_mono + wait)
            if track.flap is not None:
                due = _earliest(due, track.last_mono + self.cfg.flap_quiet_s)
        return due

    def drop_devices(self, keep: Iterable[str], wall: float) -> list[Event]:
        """Close the conditions of devices no longer configured (estimated: nobody watches them)."""
        kept = set(keep)
        events: list[Event] = []
        for key, track in list(self._tracks.items()):
            if track.dev in kept:
                continue
            for opened in (track.flap, track.open):
                if opened is not None:
                    events.append(self._clear(opened, max(wall, opened.start), est=True,
                                              values={}, flags=0))
            del self._tracks[key]
        for dev in list(self._memory):
            if dev not in kept:
                del self._memory[dev]
        return events

    # -- output --------------------------------------------------------------------------------

    def active(self) -> list[Active]:
        """Conditions on now (raised or flapping), oldest first: the retained active set."""
        out = [a for t in self._tracks.values() for a in (t.open, t.flap) if a is not None]
        return sorted(out, key=lambda a: a.id)

    def finished_days(self) -> list[DayCounters]:
        """Local days that ended since the last call (for the daily summary)."""
        return self.days.take_finished()

    @property
    def next_id(self) -> int:
        return self._next_id

    # -- one verdict ---------------------------------------------------------------------------

    def _track(self, dev: str, v: Verdict) -> Track:
        key = (dev, v.cond)
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = Track(dev, v.cond, v.rule)
        return track

    def _feed(self, v: Verdict, dev: str, mono: float, wall: float, flags: int) -> list[Event]:
        if v.level is None and (dev, v.cond) not in self._tracks:
            return []
        track = self._track(dev, v)
        if track.restored and v.level is not None:
            track.restored = False
            ended = self._ended_while_away(track, v, mono, wall, flags)
            if ended is not None:
                return ended
        if v.level is None or v.level == track.state:
            track.pending = None
            return []
        if track.pending != v.level:
            track.pending = v.level
            track.p_mono = mono
            track.p_start_mono = mono - (wall - v.since) if v.since is not None else mono
            track.p_wall = v.since if v.since is not None else wall
            track.p_flags = flags
            track.p_values = dict(v.values)
        return self._maybe_complete(track, mono)

    def _maybe_complete(self, track: Track, mono: float) -> list[Event]:
        if track.pending is None:
            return []
        rule = self.cfg.rules_for(track.dev)[track.rule]
        wait = rule.raise_after_s if track.pending else rule.clear_after_s
        if mono - track.p_mono < wait:
            return []
        level, track.pending = track.pending, None
        track.state = level
        track.last_mono, track.last_wall = mono, track.p_wall
        track.last_flags, track.last_values = track.p_flags, track.p_values
        track.transitions.append(mono)
        while track.transitions and track.transitions[0] < mono - self.cfg.flap_window_s:
            track.transitions.popleft()
        if track.flap is not None:
            return []          # flapping: the change is noted, not told
        if len(track.transitions) > self.cfg.flap_transitions:
            flap = Event(self._new_id(), FLAPPING, track.cond, track.dev, track.p_wall,
                         values=dict(track.p_values), flags=track.p_flags)
            track.flap = Active(flap.id, FLAPPING, track.cond, track.dev, flap.start,
                                flap.values)
            return [flap]
        return self._tell(track, level, track.p_wall, track.p_flags, track.p_values, est=False,
                          mono=track.p_start_mono)

    def _tell(self, track: Track, level: bool, wall: float, flags: int,
              values: Mapping[str, Value], *, est: bool, mono: float | None = None
              ) -> list[Event]:
        if level and track.open is None:
            ev = Event(self._new_id(), RAISE, track.cond, track.dev, wall, est=est,
                       values=dict(values), flags=flags)
            track.open = Active(ev.id, RAISE, track.cond, track.dev, wall, ev.values, est)
            track.open_flags = flags
            track.open_mono = mono
            return [ev]
        if not level and track.open is not None:
            opened, track.open = track.open, None
            elapsed = mono - track.open_mono if mono is not None and \
                track.open_mono is not None else None
            return [self._clear(opened, wall, est=est, values=values,
                                flags=flags | track.open_flags, elapsed=elapsed)]
        return []

    def _clear(self, opened: Active, end: float, *, est: bool, values: Mapping[str, Value],
               flags: int, elapsed: float | None = None) -> Event:
        end = max(end, opened.start)
        dur = end - opened.start
        if elapsed is not None and abs(elapsed - dur) > STEP_TOLERANCE_S:
            # The wall clock stepped while the condition was on (NTP came back, someone set
            # it): the monotonic clock measured how long it really lasted.
            dur, flags = max(elapsed, 0.0), flags | CLOCK_STEPPED
        return Event(self._new_id(), CLEAR, opened.cond, opened.dev, opened.start, end,
                     round(dur, 3), est or opened.est, dict(values), flags)

    def _end_flapping(self, track: Track) -> list[Event]:
        flap, track.flap = track.flap, None
        assert flap is not None
        track.transitions.clear()
        events = [self._clear(flap, track.last_wall, est=False, values=track.last_values,
                              flags=track.last_flags)]
        # The level it settled on, told as of when it settled.
        return events + self._tell(track, track.state, track.last_wall, track.last_flags,
                                   track.last_values, est=False)

    def _new_id(self) -> int:
        n, self._next_id = self._next_id, self._next_id + 1
        return n

    # -- restarts ------------------------------------------------------------------------------

    def _ended_while_away(self, track: Track, v: Verdict, mono: float, wall: float,
                          flags: int) -> list[Event] | None:
        """A condition on before the restart that the first poll after it finds over."""
        last = self._before_restart.get(track.dev)
        if v.level is not False or track.open is None or last is None:
            return None          # still on: it goes on, raised once
        end, est, evidence = self._estimate_end(track, track.open, last, wall, v.values)
        track.state, track.pending = False, None
        track.last_mono, track.last_wall = mono, end
        return self._tell(track, False, end, flags, {**v.values, **evidence}, est=est)

    def _estimate_end(self, track: Track, opened: Active, last: float, seen: float,
                      now_values: Mapping[str, Value]) -> tuple[float, bool, dict[str, Value]]:
        """When a condition that ended while nobody watched most likely ended.

        It ended after ``last`` (the last poll before the restart) and before ``seen`` (the first
        after). In order of trust:
        1. the UPS's own on-battery counter (``on_battery.total_s``) read at the start and now:
           the time spent on battery since the start, exactly (not an estimate), unless the PC
           booted after the counter stopped (the battery ran out, then 2.);
        2. for power conditions, the PC booted after ``last``: it runs on the UPS, so it was off
           because the battery ran out and came back with the mains, at boot;
        3. for power conditions when the boot time is not known, the last runtime the UPS
           announced: the PC could not have run on battery longer than that;
        4. otherwise, ``seen``: the condition lasted at most until then (estimated only when the
           gap was longer than ``restart_gap_s``).
        """
        evidence: dict[str, Value] = {"evidence.last_seen": last}
        start = opened.start
        power = base(track.cond) in POWER_CONDITIONS
        at_start = opened.values.get("on_battery.total_s")
        now_total = now_values.get("on_battery.total_s")
        boot = self._evidence.host_boot
        booted = boot is not None and last < boot <= seen
        if base(track.cond) == "mains_lost" and _num(at_start) and _num(now_total):
            on_battery = float(now_total) - float(at_start)   # type: ignore[arg-type]
            if 0 <= on_battery <= seen - start + self.cfg.restart_gap_s:
                evidence["evidence.on_battery_s"] = on_battery
                # A PC that booted after the counter stopped went off with the UPS: the counter
                # tells when its battery ran out, the boot when the mains came back.
                if not (booted and boot is not None and start + on_battery < boot):
                    return _clamp(start + on_battery, start, seen), False, evidence
        if power and booted and boot is not None:
            evidence["evidence.host_boot"] = boot
            return _clamp(boot, start, seen), True, evidence
        runtime = self._evidence_latest.get(track.dev, {}).get("battery.runtime_s")
        if power and boot is None and _num(runtime):
            evidence["evidence.runtime_s"] = runtime
            return _clamp(last + float(runtime), start, seen), True, evidence   # type: ignore[arg-type]
        # A short gap (a quick restart) leaves the end as precise as an ordinary poll would.
        return _clamp(seen, start, seen), seen - last > self.cfg.restart_gap_s, evidence

    def snapshot(self) -> dict[str, Any]:
        """Everything a restart needs, as JSON-able data (store it with the events)."""
        tracks = []
        for t in self._tracks.values():
            if not (t.state or t.open or t.flap):
                continue
            tracks.append({
                "dev": t.dev, "cond": t.cond, "rule": t.rule, "state": t.state,
                "open": _active_doc(t.open), "open_flags": t.open_flags,
                "flap": _active_doc(t.flap), "last_wall": t.last_wall,
                "last_flags": t.last_flags, "last_values": t.last_values})
        devices = {}
        for dev, wall in self._seen_wall.items():
            latest = self._memory[dev].latest if dev in self._memory else {}
            devices[dev] = {"wall": wall, "evidence": {k: latest[k] for k in _EVIDENCE_METRICS
                                                       if k in latest}}
        for dev, wall in self._before_restart.items():
            devices.setdefault(dev, {"wall": wall, "evidence": self._evidence_latest.get(dev, {})})
        return {"v": STATE_VERSION, "next_id": self._next_id, "devices": devices,
                "tracks": tracks, "days": self.days.snapshot()}

    def restore(self, state: Mapping[str, Any], evidence: RestartEvidence, *,
                id_floor: int = 1) -> None:
        """Take back a snapshot after a restart. ``id_floor``: the lowest id not yet stored."""
        self._evidence = evidence
        self._next_id = max(int(state.get("next_id", 1)), id_floor, self._next_id)
        for dev, doc in (state.get("devices") or {}).items():
            self._before_restart[dev] = float(doc["wall"])
            self._evidence_latest[dev] = dict(doc.get("evidence") or {})
        for doc in state.get("tracks") or ():
            t = Track(doc["dev"], doc["cond"], doc["rule"], state=bool(doc["state"]),
                      open=_active_from(doc.get("open")), open_flags=int(doc.get("open_flags", 0)),
                      flap=_active_from(doc.get("flap")), last_wall=float(doc.get("last_wall", 0)),
                      last_flags=int(doc.get("last_flags", 0)),
                      last_values=dict(doc.get("last_values") or {}), restored=True)
            self._tracks[(t.dev, t.cond)] = t
        self.days.restore(state.get("days") or {})


def describe(event: Event) -> str:
    """One log line per event (English: the journal is read centrally, and searched)."""
    when = f"start {event.start:.3f}"
    if event.kind == CLEAR:
        when += f", end {event.end:.3f}, {event.dur_s:g} s" + (" (estimated)" if event.est else "")
    values = ", ".join(f"{k}={v}" for k, v in event.values.items())
    return f"event {event.id} {event.kind} {event.dev} {event.cond}: {when}" + \
        (f"; {values}" if values else "")


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _earliest(a: float | None, b: float) -> float:
    return b if a is None else min(a, b)


def _clamp(x: float, lo: float, hi: float) -> float:
    return max(lo, min(x, hi))


def _active_doc(a: Active | None) -> dict[str, Any] | None:
    if a is None:
        return None
    return {"id": a.id, "kind": a.kind, "cond": a.cond, "dev": a.dev, "start": a.start,
            "values": dict(a.values), "est": a.est}


def _active_from(d: Mapping[str, Any] | None) -> Active | None:
    if not d:
        return None
    return Active(int(d["id"]), str(d["kind"]), str(d["cond"]), str(d["dev"]), float(d["start"]),
                  dict(d.get("values") or {}), bool(d.get("est", False)))
