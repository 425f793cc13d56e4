"""The writer's side of events: one engine, its output written in the caller's transaction.

    writer thread, per poll:
        with conn:                                   # the outbox's transaction
            <insert the poll's readings>
            events = recorder.observe(conn, readings, time.monotonic())
        if events: forwarder.notify_events()         # publish ahead of readings and backlog
    writer thread, when the engine's next timer runs out (recorder.due_at()):
        with conn:
            events = recorder.tick(conn, time.monotonic())

What lands in the transaction: the new events (waiting for the broker), the engine's snapshot
(so a restart neither loses nor repeats a condition), and the summary of a local day that just
ended. Every event also gives one log line (agent.events.engine.describe).
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Iterable
from datetime import tzinfo

from agent.config.events import EventsConfig
from agent.events import store
from agent.events.engine import EventEngine, RestartEvidence, describe
from agent.events.model import Active, Event
from agent.events.summary import build
from agent.readings import Reading

log = logging.getLogger(__name__)


class EventRecorder:
    """Owns the engine; call it only from the thread that owns ``conn`` (the single writer)."""

    def __init__(self, cfg: EventsConfig, conn: sqlite3.Connection, *, site: str,
                 evidence: RestartEvidence | None = None, tz: tzinfo | None = None) -> None:
        store.ensure_schema(conn)
        self.site = site
        self.tz = tz
        self.engine = EventEngine(cfg, tz=tz)
        state = store.load_state(conn)
        self.engine.restore(state or {}, evidence or RestartEvidence.from_host(),
                            id_floor=store.next_id_floor(conn))
        # Events told by the engine whose transaction is not known to have committed: written
        # again with the next one until they are seen in the file (a commit that failed, e.g. a
        # full disk, must not lose them; the engine has moved on and will not tell them again).
        self._unwritten: list[Event] = []
        restored = self.engine.active()
        if restored:
            log.info("events: %d condition(s) still on from before the restart: %s",
                     len(restored), ", ".join(f"{a.dev} {a.cond}" for a in restored))

    def observe(self, conn: sqlite3.Connection, readings: Iterable[Reading],
                mono: float) -> list[Event]:
        """Run the poll through the engine and write what it decided (no commit: the caller's)."""
        return self._write(conn, self.engine.observe(readings, mono))

    def tick(self, conn: sqlite3.Connection, mono: float) -> list[Event]:
        return self._write(conn, self.engine.tick(mono), state_changed=False)

    def reconfigure(self, conn: sqlite3.Connection, cfg: EventsConfig,
                    devices: Iterable[str]) -> list[Event]:
        """A new config: new rules from now on; removed devices' conditions are closed."""
        self.engine.cfg = cfg
        return self._write(conn, self.engine.drop_devices(devices, time.time()))

    def active(self) -> list[Active]:
        return self.engine.active()

    def due_at(self) -> float:
        """Monotonic time of the engine's next timer (``tick`` then); inf when none runs."""
        due = self.engine.due_at()
        return math.inf if due is None else due

    def _write(self, conn: sqlite3.Connection, events: list[Event], *,
               state_changed: bool = True) -> list[Event]:
        if self._unwritten:
            stored = store.stored_ids(conn, [e.id for e in self._unwritten])
            self._unwritten = [e for e in self._unwritten if e.id not in stored]
        batch = self._unwritten + events
        if batch:
            store.insert(conn, batch)
        self._unwritten = batch
        if batch or state_changed:
            store.save_state(conn, self.engine.snapshot())
        for day in self.engine.finished_days():
            doc = build(conn, site=self.site, counters=day, tz=self.tz, now=time.time())
            store.save_summary(conn, doc)
            log.info("events: daily summary of %s: %d mains outage(s), %.1f min; %d internet "
                     "outage(s), %.1f min", day.day, doc["mains_outages"],
                     doc["mains_outage_min"], doc["internet_outages"], doc["internet_outage_min"])
        for e in events:
            log.info("%s", describe(e))
        return events
