"""Events, the engine's state and daily summaries, kept in the buffer's SQLite file.

Functions on a given ``sqlite3.Connection``, so the writer runs them inside the same transaction
as the poll's readings (agent.store.outbox: WAL, ``synchronous=FULL``): an event is on disk,
with the engine state that produced it, before anything tries to publish it, and a kill -9 or a
power cut loses neither or both. None of these functions commits; wrap them in ``with conn:``
(``record`` does, for callers that have nothing else to write).

    events        id (the event id, per site, never reused), kind, cond, dev, start, end, dur_s,
                  est, values (JSON), flags, acked (0 waiting for the broker, 1 acknowledged)
    event_state   one row: the engine's snapshot (active conditions, next id, evidence)
    summaries     day, document (JSON), acked

Acknowledged events stay for ``clinic-agent events`` and the daily summary until ``prune``.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agent.errors import StoreError
from agent.events.model import CLEAR, RAISE, Active, Event
from agent.store.outbox import open_read_only

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id      INTEGER PRIMARY KEY,
    kind    TEXT    NOT NULL,
    cond    TEXT    NOT NULL,
    dev     TEXT    NOT NULL,
    start   REAL    NOT NULL,
    "end"   REAL,
    dur_s   REAL,
    est     INTEGER NOT NULL DEFAULT 0,
    "values" TEXT   NOT NULL DEFAULT '{}',
    flags   INTEGER NOT NULL DEFAULT 0,
    acked   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_waiting ON events (id) WHERE acked = 0;
CREATE INDEX IF NOT EXISTS events_by_start ON events (start);
CREATE TABLE IF NOT EXISTS event_state (k INTEGER PRIMARY KEY CHECK (k = 1), doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS summaries (
    day   TEXT PRIMARY KEY,
    doc   TEXT    NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0
);
"""
_COLUMNS = 'id, kind, cond, dev, start, "end", dur_s, est, "values", flags'


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the tables if missing (idempotent; runs its own statements)."""
    conn.executescript(SCHEMA)


# -- the writer --------------------------------------------------------------------------------

def insert(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    """Store new events, waiting for the broker. An id already stored is an error (never reused)."""
    conn.executemany(
        f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(e.id, e.kind, e.cond, e.dev, e.start, e.end, e.dur_s, int(e.est), _json(e.values),
          e.flags) for e in events])


def stored_ids(conn: sqlite3.Connection, ids: Sequence[int]) -> set[int]:
    """Which of these event ids are in the file."""
    if not ids:
        return set()
    marks = ",".join("?" * len(ids))
    return {r[0] for r in conn.execute(f"SELECT id FROM events WHERE id IN ({marks})", ids)}


def save_state(conn: sqlite3.Connection, state: Mapping[str, Any]) -> None:
    conn.execute("INSERT INTO event_state (k, doc) VALUES (1, ?) "
                 "ON CONFLICT(k) DO UPDATE SET doc = excluded.doc", (_json(state),))


def load_state(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """The engine's last snapshot, or None on a fresh buffer."""
    row = conn.execute("SELECT doc FROM event_state WHERE k = 1").fetchone()
    return json.loads(row[0]) if row else None


def next_id_floor(conn: sqlite3.Connection) -> int:
    """Above every id stored: ``EventEngine.restore(..., id_floor=...)``."""
    return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]) + 1


def record(conn: sqlite3.Connection, events: Sequence[Event], state: Mapping[str, Any]) -> None:
    """Events and the state that produced them, in one transaction of their own."""
    with conn:
        insert(conn, events)
        save_state(conn, state)


def save_summary(conn: sqlite3.Connection, doc: Mapping[str, Any]) -> None:
    """A day's summary, waiting for the broker (a day computed again replaces the older one)."""
    conn.execute("INSERT INTO summaries (day, doc) VALUES (?, ?) ON CONFLICT(day) DO UPDATE "
                 "SET doc = excluded.doc, acked = 0", (doc["day"], _json(doc)))


# -- the forwarder -----------------------------------------------------------------------------

def unsent(conn: sqlite3.Connection, limit: int = 100) -> list[Event]:
    """Events not yet acknowledged by the broker, oldest first."""
    cur = conn.execute(f"SELECT {_COLUMNS} FROM events WHERE acked = 0 ORDER BY id LIMIT ?",
                       (limit,))
    return [_event(r) for r in cur]


def ack(conn: sqlite3.Connection, ids: Iterable[int]) -> int:
    """The broker has these events. Returns how many were waiting."""
    return sum(conn.execute("UPDATE events SET acked = 1 WHERE id = ? AND acked = 0",
                            (i,)).rowcount for i in ids)


def unsent_summaries(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [json.loads(r[0]) for r in
            conn.execute("SELECT doc FROM summaries WHERE acked = 0 ORDER BY day")]


def ack_summaries(conn: sqlite3.Connection, days: Iterable[str]) -> int:
    return sum(conn.execute("UPDATE summaries SET acked = 1 WHERE day = ?", (d,)).rowcount
               for d in days)


def prune(conn: sqlite3.Connection, before: float) -> int:
    """Forget acknowledged events that ended before ``before``; a raise still open is kept."""
    return conn.execute(
        'DELETE FROM events WHERE acked = 1 AND COALESCE("end", start) < ? AND NOT ('
        "kind = 'raise' AND NOT EXISTS (SELECT 1 FROM events c WHERE c.kind = 'clear' AND "
        "c.dev = events.dev AND c.cond = events.cond AND c.start = events.start))",
        (before,)).rowcount


# -- reading -----------------------------------------------------------------------------------

def recent(conn: sqlite3.Connection, since: float, limit: int = 1000) -> list[Event]:
    """Events that began, ended or were told at or after ``since``, in id order (the newest
    ``limit``)."""
    cur = conn.execute(
        f'SELECT {_COLUMNS} FROM events WHERE start >= ? OR "end" >= ? '
        "ORDER BY id DESC LIMIT ?", (since, since, limit))
    return [_event(r) for r in reversed(cur.fetchall())]


def active(conn: sqlite3.Connection) -> list[Active]:
    """Conditions on now, from the engine's last saved state."""
    state = load_state(conn)
    return active_from_state(state) if state else []


def active_from_state(state: Mapping[str, Any]) -> list[Active]:
    out: list[Active] = []
    for t in state.get("tracks") or ():
        for key in ("open", "flap"):
            d = t.get(key)
            if d:
                out.append(Active(int(d["id"]), str(d["kind"]), str(d["cond"]), str(d["dev"]),
                                  float(d["start"]), dict(d.get("values") or {}),
                                  bool(d.get("est", False))))
    return sorted(out, key=lambda a: a.id)


def intervals(conn: sqlite3.Connection, conds: Sequence[str], lo: float, hi: float, *,
              now: float) -> list[tuple[float, float, bool, bool]]:
    """(start, end, estimated, on_battery) of the conditions (any part) that overlap [lo, hi);
    one still open ends ``now``. ``on_battery``: told by a UPS (not a meter's dead phases)."""
    where = " OR ".join("cond = ? OR cond LIKE ?" for _ in conds)
    args: list[Any] = [x for c in conds for x in (c, c + ".%")]
    rows = conn.execute(
        f'SELECT start, "end", est, "values" FROM events WHERE kind = \'{CLEAR}\' AND ({where}) '
        'AND start < ? AND "end" > ?', (*args, hi, lo)).fetchall()
    rows += conn.execute(
        f"SELECT start, ?, est, \"values\" FROM events r WHERE kind = '{RAISE}' AND ({where}) "
        "AND start < ? AND NOT EXISTS (SELECT 1 FROM events c WHERE c.kind = 'clear' AND "
        "c.dev = r.dev AND c.cond = r.cond AND c.start = r.start)", (now, *args, hi)).fetchall()
    return [(float(s), max(float(s), float(e)), bool(est), '"on_battery"' in values)
            for s, e, est, values in rows if float(e) > lo]


# -- read-only, for the technician CLI ---------------------------------------------------------

def read_recent(path: str | os.PathLike[str], since: float,
                limit: int = 1000) -> tuple[list[Event], list[Active]]:
    """Recent events and the active set from the buffer file, read-only (no agent needed)."""
    conn = open_read_only(path)
    try:
        if not has_events(conn):
            return [], []
        return recent(conn, since, limit), active(conn)
    except (sqlite3.DatabaseError, ValueError) as exc:
        raise StoreError(f"cannot read events from {path}: {exc}") from exc
    finally:
        conn.close()


def has_events(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
                        ).fetchone() is not None


def _json(doc: Any) -> str:
    # JSON has no NaN: a meter's NaN is stored (and sent) as null, like readings.
    return json.dumps(_scrub(doc), separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=str)


def _scrub(doc: Any) -> Any:
    if isinstance(doc, float) and not math.isfinite(doc):
        return None
    if isinstance(doc, Mapping):
        return {k: _scrub(v) for k, v in doc.items()}
    if isinstance(doc, (list, tuple)):
        return [_scrub(v) for v in doc]
    return doc


def _event(r: tuple[Any, ...]) -> Event:
    id_, kind, cond, dev, start, end, dur, est, values, flags = r
    return Event(int(id_), kind, cond, dev, float(start), end, dur, bool(est), json.loads(values),
                 int(flags))
