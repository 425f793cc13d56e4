"""The durable buffer: an SQLite outbox of readings waiting for the broker's acknowledgement.

Guarantees, and the settings that give them:

* A committed poll survives ``kill -9`` and power loss: WAL journal with ``synchronous=FULL``
  (the WAL is fsync'ed at every commit; NORMAL would only survive a process crash).
* The agent holds the file exclusively (``locking_mode=EXCLUSIVE``): SQLite then keeps the
  WAL's index in the agent's memory instead of a mapped ``-shm`` file whose dirty pages the kernel
  writes back to the clinic PC's flash every half minute. Other processes cannot open the file
  while the agent runs: the CLI asks the agent over its control socket (``summary``,
  ``export_chunk``, ``recent_events`` below), and reads the file itself only when the agent is
  stopped. The lock is the kernel's (``fcntl``): a killed agent leaves none behind.
* One transaction per poll (``commit``), never per reading.
* A reading leaves the store only when the broker acknowledged it (``ack``), or when the store is
  over its size or age cap (``enforce_bounds``, oldest first by sequence, counted in
  ``dropped_total``). Nothing is "in flight" on disk: after a crash everything unacknowledged is
  simply sent again, and the central side drops duplicates by sequence number.
* Sequence numbers never repeat: the last one used is the newest row, or, when a transaction
  deleted readings without adding any, noted in ``meta`` by that transaction; a reservation
  mark outside the database (``<buffer>.seq``) lets a replaced (corrupt) buffer continue above
  anything ever handed out. The jump is a true gap: those readings were lost with the corrupt
  file.
* Age is measured on the agent's own running clock (monotonic time summed over its runs, kept in
  the database), never on the wall clock, so a clock that is wrong or steps (no RTC, NTP coming
  back) can neither expire nor keep readings. Time while the PC was off does not count: the age
  cap errs on the side of keeping data, and the size cap still protects the disk.

The class is synchronous and not thread-safe; ``AsyncStore`` runs it on one worker thread.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from agent.errors import StoreBusy, StoreCorrupt, StoreError
from agent.readings import Reading, StoredReading

if TYPE_CHECKING:
    from agent.config.events import EventsConfig
    from agent.events.engine import RestartEvidence
    from agent.events.model import Active, Event
    from agent.events.recorder import EventRecorder


@dataclass(frozen=True)
class EventAcks:
    """Events and daily summaries the broker acknowledged (by id, by day)."""

    events: tuple[int, ...] = ()
    summaries: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.events or self.summaries)

log = logging.getLogger(__name__)

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

# Internal flag: the value is a bool (SQLite would return it as 0/1).
_BOOL = 0x100
SEQ_RESERVE_BLOCK = 1_000_000
PAGE_SIZE = 512
CONVERT_PAGES_MAX_BYTES = 16 << 20
SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_FULL = 13
SQLITE_IOERR = 10
_CORRUPT_CODES = {11, 26}   # SQLITE_CORRUPT, SQLITE_NOTADB

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    seq    INTEGER PRIMARY KEY,
    ts     REAL    NOT NULL,
    device TEXT    NOT NULL,
    metric TEXT    NOT NULL,
    value,
    unit   TEXT    NOT NULL DEFAULT '',
    flags  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS marks (seq INTEGER PRIMARY KEY, run_s REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (
    seq    INTEGER PRIMARY KEY,
    ts     REAL    NOT NULL,
    device TEXT    NOT NULL,
    metric TEXT    NOT NULL,
    value,
    unit   TEXT    NOT NULL DEFAULT '',
    flags  INTEGER NOT NULL DEFAULT 0,
    why    TEXT    NOT NULL
);
"""


@dataclass(frozen=True)
class BufferStats:
    depth: int                 # readings waiting for the broker
    first_seq: int | None      # oldest unsent
    last_seq: int              # newest ever assigned
    oldest_ts: float | None    # time of the oldest unsent reading (as stamped; may be flagged)
    bytes_used: int            # live pages in the database file
    file_bytes: int            # database + WAL on disk
    dropped_total: int         # dropped by the caps or a full disk, ever (kept across restarts)


def _typed(fn: F) -> F:
    """Every sqlite error leaving the store is a ``StoreError`` (the cause kept): callers handle
    one type, and a failing disk never ends a task with an error it does not expect."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except sqlite3.Error as exc:
            raise StoreError(f"buffer {fn.__name__} failed: {exc}") from exc
    return wrapper  # type: ignore[return-value]


class ReadingStore:
    """SQLite outbox. Open with ``ReadingStore.open(path, ...)``."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, max_bytes: int, max_age_s: float,
                 recovered_from: Path | None = None) -> None:
        self._db = conn
        self.path = path
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.recovered_from = recovered_from
        self.recorder: EventRecorder | None = None
        self.new_events: list[Event] = []   # decided by the last write
        self._active: list[Active] = []
        self.mark_due = False    # the run clock is noted with the next write
        self._events_due = float("inf")        # the engine's next timer (monotonic)
        self._seq_file = path.with_name(path.name + ".seq")
        self._reserved = _read_seq_reservation(self._seq_file)
        last = self._meta_int("last_seq", 0)
        row_max: int = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM readings").fetchone()[0]
        # A fresh file after corruption starts above every number ever reserved.
        self._last_seq = max(last, row_max, self._reserved if recovered_from else 0)
        self._dropped_total = self._meta_int("dropped_total", 0)
        # Kept up to date by every write, so the health readings never count a long backlog.
        self._depth: int = self._db.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
        self._page_size: int = self._db.execute("PRAGMA page_size").fetchone()[0]
        self._run_base = float(self._meta_int("run_clock_ms", 0)) / 1000
        self._opened_mono = time.monotonic()
        if self._last_seq >= self._reserved:
            self._reserve(self._last_seq)

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, max_bytes: int = 256 << 20,
             max_age_s: float = 60 * 86400) -> ReadingStore:
        """Open (or create) the buffer. A corrupt file is moved aside and a fresh one created.

        ``StoreBusy`` when another process holds the file (a second agent with the same buffer):
        a held file is not a corrupt one, and moving it aside would lose the other's readings."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = _connect(path)
            return cls(conn, path, max_bytes=max_bytes, max_age_s=max_age_s)
        except (sqlite3.DatabaseError, StoreCorrupt) as exc:
            if isinstance(exc, sqlite3.Error) and _code(exc) in (SQLITE_BUSY, SQLITE_LOCKED):
                raise StoreBusy(f"buffer {path} is held by another process (another agent "
                                f"running with the same buffer?): {exc}") from exc
            moved = _move_aside(path)
            log.error("buffer %s is unreadable (%s); moved it to %s and started a fresh buffer. "
                      "Readings in the old file were not sent.", path, exc, moved)
            conn = _connect(path)
            return cls(conn, path, max_bytes=max_bytes, max_age_s=max_age_s, recovered_from=moved)

    def close(self) -> None:
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError:
            pass
        self._db.close()

    # -- writing -------------------------------------------------------------------------------

    def commit(self, readings: Sequence[Reading]) -> tuple[int, int]:
        """Store one poll's readings in one transaction; returns (first_seq, last_seq)."""
        return self.write(readings, ())

    # -- events (agent.events): decided on the readings, in the transaction that stores them ---

    def attach_events(self, cfg: EventsConfig, *, site: str,
                      evidence: RestartEvidence | None = None) -> None:
        """Decide events on every write from now on (agent.events.recorder)."""
        from agent.events.recorder import EventRecorder
        with self._db:
            self.recorder = EventRecorder(cfg, self._db, site=site, evidence=evidence)
        self._active = self.recorder.active()
        self._events_due = self.recorder.due_at()

    def reconfigure_events(self, cfg: EventsConfig, devices: Iterable[str]) -> list[Event]:
        if self.recorder is None:
            return []
        with self._db:
            events = self.recorder.reconfigure(self._db, cfg, devices)
        self._active = self.recorder.active()
        self._events_due = self.recorder.due_at()
        return events

    @_typed
    def tick_events(self) -> list[Event]:
        """Timers of the engine (minimum durations, the generator's wait), between polls."""
        if self.recorder is None:
            return []
        with self._db:
            events = self.recorder.tick(self._db, time.monotonic())
        self._events_due = self.recorder.due_at()
        if events:
            self._active = self.recorder.active()
        return events

    def events_due(self) -> float:
        """Monotonic time the engine's timers next need ``tick_events`` (inf: none runs)."""
        return self._events_due

    @_typed
    def unsent_events(self, limit: int) -> list[Event]:
        from agent.events import store as events_store
        return events_store.unsent(self._db, limit)

    @_typed
    def unsent_summaries(self) -> list[dict[str, Any]]:
        from agent.events import store as events_store
        return events_store.unsent_summaries(self._db)

    def active_events(self) -> list[Active]:
        """Conditions on now, as of the last write (a list replaced whole: safe to read from
        the event loop while the store thread writes)."""
        return self._active

    def write(self, readings: Sequence[Reading], acked: Sequence[tuple[int, int]],
              acks: EventAcks | None = None) -> tuple[int, int]:
        """One transaction: store ``readings`` (new sequence numbers, returned as (first, last))
        and delete the ``acked`` (inclusive) seq ranges. One fsync for a tick's polls and acks
        is what keeps the agent's writes to the clinic PC's flash small.

        On a full disk the oldest readings are dropped (counted) to make room and the write is
        retried once; if it still fails, ``StoreError`` is raised and the caller keeps the polls.
        """
        self.new_events = []
        if not readings and not acked and not acks:
            return (self._last_seq + 1, self._last_seq)
        try:
            return self._write(readings, acked, acks)
        except sqlite3.Error as exc:
            if _code(exc) != SQLITE_FULL:
                raise StoreError(f"buffer write failed: {exc}") from exc
        # Disk full. Make room by dropping the oldest readings (counted), then try once more. In
        # WAL mode a delete needs room too, so on a disk filled to the last byte by something
        # else this fails as well, and the caller keeps the polls in memory until there is room.
        try:
            freed = self._drop_oldest(max(len(readings) * 4, self.depth() // 20))
            log.error("disk full while writing the buffer; dropped the %d oldest readings", freed)
            return self._write(readings, acked, acks)
        except sqlite3.Error as exc:
            raise StoreError(f"disk full: cannot store readings ({exc})") from exc

    def _write(self, readings: Sequence[Reading], acked: Sequence[tuple[int, int]],
               acks: EventAcks | None) -> tuple[int, int]:
        first = self._last_seq + 1
        last = first + len(readings) - 1
        if readings and last >= self._reserved:
            self._reserve(last)
        rows = [(first + i, r.ts, r.device, r.metric, r.value, r.unit,
                 r.flags | (_BOOL if isinstance(r.value, bool) else 0))
                for i, r in enumerate(readings)]
        deleted = 0
        with self._db:
            for lo, hi in acked:
                deleted += self._db.execute(
                    "DELETE FROM readings WHERE seq BETWEEN ? AND ?", (lo, hi)).rowcount
            if rows:
                # No meta write: the newest row is the last number used (one page less per
                # poll written to flash); a transaction that only deletes notes it instead.
                self._db.executemany(
                    "INSERT INTO readings (seq, ts, device, metric, value, unit, flags) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            elif deleted:
                self._note_last_seq()
            if self.mark_due:
                self._mark_rows()   # in the poll's transaction: no fsync of its own
            if acks:
                from agent.events import store as events_store
                events_store.ack(self._db, acks.events)
                events_store.ack_summaries(self._db, acks.summaries)
            if self.recorder is not None and readings:
                self.new_events = self.recorder.observe(self._db, readings, time.monotonic())
        if self.recorder is not None:
            self._events_due = self.recorder.due_at()
            if self.new_events:
                self._active = self.recorder.active()
        if rows:
            self._last_seq = last
        self._depth += len(rows) - deleted
        return first, (last if rows else self._last_seq)

    @_typed
    def ack(self, ranges: Iterable[tuple[int, int]]) -> int:
        """The broker has these (inclusive) seq ranges: delete them. Returns rows deleted."""
        n = 0
        with self._db:
            for lo, hi in ranges:
                n += self._db.execute("DELETE FROM readings WHERE seq BETWEEN ? AND ?",
                                      (lo, hi)).rowcount
            if n:
                self._note_last_seq()
        self._depth -= n
        return n

    @_typed
    def set_aside(self, ranges: Iterable[tuple[int, int]], why: str) -> int:
        """Move readings the broker will never take out of the queue, into ``rejected``."""
        n = 0
        with self._db:
            for lo, hi in ranges:
                self._db.execute(
                    "INSERT OR REPLACE INTO rejected "
                    "(seq, ts, device, metric, value, unit, flags, why) "
                    "SELECT seq, ts, device, metric, value, unit, flags, ? FROM readings "
                    "WHERE seq BETWEEN ? AND ?", (why, lo, hi))
                n += self._db.execute("DELETE FROM readings WHERE seq BETWEEN ? AND ?",
                                      (lo, hi)).rowcount
            if n:
                self._note_last_seq()
        self._depth -= n
        return n

    # -- reading -------------------------------------------------------------------------------

    @_typed
    def fetch(self, after: int, limit: int, upto: int | None = None) -> list[StoredReading]:
        """Unsent readings with seq > ``after`` (and <= ``upto``), oldest first."""
        if upto is None:
            cur = self._db.execute(
                "SELECT seq, ts, device, metric, value, unit, flags FROM readings "
                "WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
        else:
            cur = self._db.execute(
                "SELECT seq, ts, device, metric, value, unit, flags FROM readings "
                "WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?", (after, upto, limit))
        return [_row(r) for r in cur]

    def fetch_range(self, lo: int, hi: int, limit: int = 1_000_000) -> list[StoredReading]:
        return self.fetch(lo - 1, limit, hi)

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def depth(self) -> int:
        """Readings waiting for the broker."""
        return self._depth

    @_typed
    def depth_outside(self, ranges: Sequence[tuple[int, int]]) -> int:
        """Readings in the buffer outside the (inclusive) seq ``ranges``: with release on the
        central ack, those not yet sent (the ranges being the sent ones). Counted on the store's
        own thread, in one go with the depth, so a deletion cannot fall between the two."""
        inside = 0
        for lo, hi in ranges:
            inside += self._db.execute("SELECT COUNT(*) FROM readings WHERE seq BETWEEN ? AND ?",
                                       (lo, hi)).fetchone()[0]
        return max(self._depth - inside, 0)

    @_typed
    def stats(self) -> BufferStats:
        first = self._db.execute("SELECT seq, ts FROM readings ORDER BY seq LIMIT 1").fetchone()
        return BufferStats(
            depth=self.depth(), first_seq=first[0] if first else None, last_seq=self._last_seq,
            oldest_ts=first[1] if first else None, bytes_used=self.bytes_used(),
            file_bytes=_file_bytes(self.path), dropped_total=self._dropped_total)

    @_typed
    def bytes_used(self) -> int:
        pages: int = self._db.execute("PRAGMA page_count").fetchone()[0]
        free: int = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return (pages - free) * self._page_size

    @property
    def dropped_total(self) -> int:
        return self._dropped_total

    # -- for the CLI, through the agent (no other process can open the file while it runs) -----

    @_typed
    def summary(self) -> BufferSummary:
        """What ``clinic-agent buffer`` shows (``summarize`` reads the same from a closed file)."""
        return _summary(self._db, self.path)

    @_typed
    def export_chunk(self, start: float | None, end: float | None, *, rejected: bool,
                     after: int, limit: int) -> list[tuple[StoredReading, str]]:
        """Up to ``limit`` readings stamped in [start, end) with seq > ``after``, oldest first,
        each with why it was set aside ("" for waiting ones): ``buffer export`` in slices, so
        the writer never waits long behind it."""
        return list(_between(self._db, start, end, rejected=rejected, after=after, limit=limit))

    @_typed
    def recent_events(self, since: float, limit: int = 1000) -> tuple[list[Event], list[Active]]:
        """``clinic-agent events``: recent events and the conditions on now."""
        from agent.events import store as events_store
        if self.recorder is None and not events_store.has_events(self._db):
            return [], []
        return events_store.recent(self._db, since, limit), events_store.active(self._db)

    # -- bounds --------------------------------------------------------------------------------

    def run_clock(self) -> float:
        """Seconds the agent has run with this buffer, summed over restarts (clock-independent)."""
        return self._run_base + (time.monotonic() - self._opened_mono)

    @_typed
    def mark(self, run_s: float | None = None) -> None:
        """Note the run clock against the newest sequence number (the age cap's reference)."""
        with self._db:
            self._mark_rows(run_s)

    def _mark_rows(self, run_s: float | None = None) -> None:
        run_s = self.run_clock() if run_s is None else run_s
        self._db.execute("INSERT OR REPLACE INTO marks (seq, run_s) VALUES (?, ?)",
                         (self._last_seq, run_s))
        self._set_meta("run_clock_ms", int(run_s * 1000))
        self.mark_due = False

    @_typed
    def enforce_bounds(self, *, run_now: float | None = None) -> int:
        """Drop the oldest readings beyond the size and age caps. Returns how many were dropped."""
        dropped = 0
        if self.max_age_s > 0:
            run_now = self.run_clock() if run_now is None else run_now
            row = self._db.execute("SELECT MAX(seq) FROM marks WHERE run_s < ?",
                                   (run_now - self.max_age_s,)).fetchone()
            if row and row[0] is not None:
                with self._db:
                    self._db.execute("DELETE FROM marks WHERE seq <= ?", (row[0],))
                dropped += self._drop_upto(row[0], reason="older than max_age_days")
        # Size: drop the oldest in slices until under the cap (pages freed are reused by SQLite,
        # so the file stops growing at the cap).
        while self.bytes_used() > self.max_bytes:
            depth = self.depth()
            if depth == 0:
                break
            n = self._drop_oldest(max(depth // 20, 1000))
            dropped += n
            if n == 0:
                break
        if dropped:
            log.warning("buffer over its cap: dropped %d oldest readings (%d dropped in total)",
                        dropped, self._dropped_total)
        return dropped

    def _drop_oldest(self, n: int) -> int:
        row = self._db.execute(
            "SELECT seq FROM readings ORDER BY seq LIMIT 1 OFFSET ?", (max(n - 1, 0),)).fetchone()
        if row is None:
            row = self._db.execute("SELECT MAX(seq) FROM readings").fetchone()
            if row is None or row[0] is None:
                return 0
        return self._drop_upto(row[0], reason="size cap")

    def _drop_upto(self, seq: int, *, reason: str) -> int:
        with self._db:
            n = self._db.execute("DELETE FROM readings WHERE seq <= ?", (seq,)).rowcount
            self._set_meta("dropped_total", self._dropped_total + n)
            self._note_last_seq()
        self._dropped_total += n   # only once the delete is on disk
        self._depth -= n
        log.debug("dropped %d readings up to seq %d (%s)", n, seq, reason)
        return n

    # -- internals -----------------------------------------------------------------------------

    def _meta_int(self, key: str, default: int) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row and row[0] is not None else default

    def _set_meta(self, key: str, value: Any) -> None:
        self._db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def _note_last_seq(self) -> None:
        """In a transaction that deletes readings without adding any: the newest row may be
        gone, so the last number used is kept in ``meta`` (open takes the higher of the two)."""
        self._set_meta("last_seq", self._last_seq)

    def _reserve(self, upto: int) -> None:
        """Persist a mark above ``upto`` before any number below it is used (fsync'ed)."""
        mark = upto + SEQ_RESERVE_BLOCK
        tmp = self._seq_file.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(f"{mark}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._seq_file)
        _fsync_dir(self._seq_file.parent)
        self._reserved = mark


class AsyncStore:
    """The store as the event loop sees it: every call runs on one dedicated thread, so SQLite's
    fsyncs never block the loop, and nothing else touches the ``ReadingStore``. Changes go
    through ``agent.runtime.writer.StoreWriter`` only (one writer); reads are free for all."""

    def __init__(self, store: ReadingStore) -> None:
        self._store = store
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *, max_bytes: int,
                   max_age_s: float) -> AsyncStore:
        store = await asyncio.to_thread(ReadingStore.open, path, max_bytes=max_bytes,
                                        max_age_s=max_age_s)
        return cls(store)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)

    # -- facts fixed at open, or only ever changed on the store thread (read as a snapshot) ----

    @property
    def path(self) -> Path:
        return self._store.path

    @property
    def recovered_from(self) -> Path | None:
        """Where an unreadable buffer was moved at open, if it was."""
        return self._store.recovered_from

    @property
    def last_seq(self) -> int:
        """The newest sequence number assigned (an int read is atomic; it only grows)."""
        return self._store.last_seq

    def depth(self) -> int:
        return self._store.depth()

    # -- reads ---------------------------------------------------------------------------------

    async def fetch(self, after: int, limit: int, upto: int | None = None) -> list[StoredReading]:
        return await self._call(self._store.fetch, after, limit, upto)

    async def stats(self) -> BufferStats:
        return await self._call(self._store.stats)

    async def depth_outside(self, ranges: Sequence[tuple[int, int]]) -> int:
        return await self._call(self._store.depth_outside, ranges)

    async def summary(self) -> BufferSummary:
        return await self._call(self._store.summary)

    async def export_chunk(self, start: float | None, end: float | None, *, rejected: bool,
                           after: int, limit: int) -> list[tuple[StoredReading, str]]:
        return await self._call(lambda: self._store.export_chunk(
            start, end, rejected=rejected, after=after, limit=limit))

    async def recent_events(self, since: float,
                            limit: int = 1000) -> tuple[list[Event], list[Active]]:
        return await self._call(self._store.recent_events, since, limit)

    # -- changes: for the writer -----------------------------------------------------------------

    async def write(self, readings: Sequence[Reading], acked: Sequence[tuple[int, int]],
                    acks: EventAcks | None = None) -> tuple[tuple[int, int], list[Event]]:
        """One transaction; returns the seq range stored and the events it decided."""
        def write() -> tuple[tuple[int, int], list[Event]]:
            rng = self._store.write(readings, acked, acks)
            return rng, self._store.new_events
        return await self._call(write)

    async def attach_events(self, cfg: EventsConfig, *, site: str,
                            evidence: RestartEvidence | None = None) -> None:
        await self._call(lambda: self._store.attach_events(cfg, site=site, evidence=evidence))

    async def reconfigure_events(self, cfg: EventsConfig, devices: list[str]) -> list[Event]:
        return await self._call(self._store.reconfigure_events, cfg, devices)

    async def tick_events(self) -> list[Event]:
        return await self._call(self._store.tick_events)

    async def unsent_events(self, limit: int) -> list[Event]:
        return await self._call(self._store.unsent_events, limit)

    async def unsent_summaries(self) -> list[dict[str, Any]]:
        return await self._call(self._store.unsent_summaries)

    def active_events(self) -> list[Active]:
        """Conditions on now (the engine's view; a snapshot of a list replaced on each write)."""
        return self._store.active_events()

    @property
    def events_enabled(self) -> bool:
        return self._store.recorder is not None

    def events_due(self) -> float:
        """When the engine's timers next need ``tick_events`` (monotonic; inf: none runs). A
        float replaced by each write or tick: safe to read from the event loop."""
        return self._store.events_due()

    async def commit(self, readings: Sequence[Reading]) -> tuple[int, int]:
        return (await self.write(readings, ()))[0]

    async def ack(self, ranges: Sequence[tuple[int, int]]) -> int:
        return await self._call(self._store.ack, ranges)

    async def set_aside(self, ranges: Sequence[tuple[int, int]], why: str) -> int:
        return await self._call(self._store.set_aside, ranges, why)

    async def maintain(self) -> int:
        """Note the run clock and apply the size and age caps; returns readings dropped."""
        def both() -> int:
            if self._store.mark_due:
                self._store.mark()      # nothing was written since the last time: on its own
            else:
                self._store.mark_due = True
            return self._store.enforce_bounds()
        return await self._call(both)

    async def set_limits(self, *, max_bytes: int, max_age_s: float) -> None:
        def change() -> None:
            self._store.max_bytes = max_bytes
            self._store.max_age_s = max_age_s
        await self._call(change)

    async def close(self) -> None:
        await self._call(self._store.close)
        self._pool.shutdown(wait=True)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.isolation_level = "DEFERRED"   # `with conn:` wraps a transaction
    try:
        # Before the first access, or SQLite would already have mapped the -shm file.
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        _small_pages(conn, path)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreCorrupt(f"cannot use WAL journal (got {mode})")
        conn.execute("PRAGMA synchronous=FULL")
        # Keep the WAL from growing without bound between checkpoints.
        conn.execute("PRAGMA journal_size_limit=8388608")
        # 1 MiB of page cache (the default is 2 MiB): the hot pages are the tail being written and
        # the head being sent, and the agent's memory is a budgeted figure (docs/benchmarks.md).
        conn.execute("PRAGMA cache_size=-1024")
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise StoreCorrupt(f"integrity check failed: {check}")
        conn.executescript(_SCHEMA)
    except BaseException:
        conn.close()
        raise
    return conn


def _small_pages(conn: sqlite3.Connection, path: Path) -> None:
    """Use 512-byte pages. Each transaction rewrites the pages it touches in full (the WAL, then
    the checkpoint): with a tick's ~10 KB of readings, small pages halve the bytes written to the
    clinic PC's flash compared with SQLite's default 4 KiB, and 512 bytes save another tenth
    over 1 KiB on the pages every transaction touches besides the readings' (docs/benchmarks.md,
    disk writes).
    A new file gets them at once; a small existing one is converted (VACUUM, outside WAL); a
    large one keeps its pages rather than delay the start."""
    if conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE:
        return
    has_tables = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
    if not has_tables:
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        return
    if _file_bytes(path) > CONVERT_PAGES_MAX_BYTES:
        return
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
    conn.execute("VACUUM")


def _row(r: tuple[Any, ...]) -> StoredReading:
    seq, ts, device, metric, value, unit, flags = r
    if flags & _BOOL:
        value = bool(value)
    return StoredReading(seq, device, metric, value, unit, ts, flags & ~_BOOL)


def _code(exc: sqlite3.Error) -> int:
    # Primary result code (extended codes carry extra bits above the low byte).
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(path) + suffix)
        if src.exists():
            os.replace(src, Path(str(target) + suffix))
    return target


def _read_seq_reservation(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def _file_bytes(path: Path) -> int:
    total = 0
    for suffix in ("", "-wal"):
        try:
            total += os.stat(str(path) + suffix).st_size
        except OSError:
            pass
    return total


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- read-only access (the technician CLI, while the agent may be writing) -------------------------

@dataclass(frozen=True)
class BufferSummary:
    """What ``clinic-agent buffer`` shows, read from the file without the agent's help."""

    path: str
    depth: int
    oldest_ts: float | None
    newest_ts: float | None
    last_seq: int
    dropped_total: int
    rejected: int
    file_bytes: int
    first_seq: int | None = None   # oldest waiting


def open_read_only(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open the buffer of a stopped agent for reading only, creating no file.

    The file is opened immutable when it has no -wal (a plain read-only open would create -wal
    and -shm files owned by whoever runs the CLI, root with sudo, which the agent's own user
    could then not open), read-only otherwise (a WAL left by a killed agent is read, not
    replayed). A running agent holds the file exclusively: that is ``StoreBusy``.
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"no buffer file at {path}")
    uri = path.resolve().as_uri()
    mode = "mode=ro" if Path(str(path) + "-wal").exists() else "immutable=1"
    try:
        conn = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=1)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.Error as exc:
        conn.close()
        if _code(exc) in (SQLITE_BUSY, SQLITE_LOCKED):
            raise StoreBusy(f"{path} is held by a running agent ({exc})") from exc
        raise StoreError(f"cannot read {path}: {exc}") from exc


def _summary(conn: sqlite3.Connection, path: Path) -> BufferSummary:
    q: Callable[[str], Any] = lambda sql: conn.execute(sql).fetchone()   # noqa: E731
    depth, oldest, newest = q("SELECT COUNT(*), MIN(ts), MAX(ts) FROM readings")
    meta = dict(conn.execute("SELECT key, value FROM meta WHERE key IN "
                             "('last_seq', 'dropped_total')").fetchall())
    rejected = q("SELECT COUNT(*) FROM rejected")[0]
    first = q("SELECT ts, seq FROM readings ORDER BY seq LIMIT 1")
    newest_seq = q("SELECT COALESCE(MAX(seq), 0) FROM readings")[0]
    return BufferSummary(path=str(path), depth=depth, oldest_ts=first[0] if first else oldest,
                         newest_ts=newest,
                         last_seq=max(int(meta.get("last_seq") or 0), newest_seq),
                         dropped_total=int(meta.get("dropped_total") or 0), rejected=rejected,
                         file_bytes=_file_bytes(path), first_seq=first[1] if first else None)


def summarize(path: str | os.PathLike[str]) -> BufferSummary:
    """Depth, age, drops and size of a stopped agent's buffer at ``path`` (opened read-only)."""
    conn = open_read_only(path)
    try:
        return _summary(conn, Path(path))
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc
    finally:
        conn.close()


def _between(conn: sqlite3.Connection, start: float | None, end: float | None, *,
             rejected: bool, after: int = 0,
             limit: int = -1) -> Iterator[tuple[StoredReading, str]]:
    table, why = ("rejected", "why") if rejected else ("readings", "''")
    cur = conn.execute(
        f"SELECT seq, ts, device, metric, value, unit, flags, {why} FROM {table} "
        "WHERE seq > ? AND ts >= ? AND ts < ? ORDER BY seq LIMIT ?",
        (after, start if start is not None else float("-inf"),
         end if end is not None else float("inf"), limit))
    for row in cur:
        yield _row(row[:7]), row[7]


def readings_between(path: str | os.PathLike[str], start: float | None, end: float | None, *,
                     rejected: bool = False) -> Iterable[tuple[StoredReading, str]]:
    """Readings waiting in a stopped agent's buffer (or set aside, with ``rejected``) stamped in
    [start, end), oldest first, each with why it was set aside ("" for waiting ones)."""
    conn = open_read_only(path)
    try:
        yield from _between(conn, start, end, rejected=rejected)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc
    finally:
        conn.close()
