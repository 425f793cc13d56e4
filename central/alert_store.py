"""The alerts' state in PostgreSQL: events in, alerts due for a post out, what was sent recorded.

    events ──trigger──> alert_queue ──take_queue──> alerts (one row per event: start to clear)
    alerts ──due──> post to Alertmanager ──sent──> hold_from / resolved_at / state

Everything the alerts process knows is in these rows, so a restart (of it, of Alertmanager, of
PostgreSQL) loses nothing and repeats nothing that Alertmanager would tell twice: posting the same
alert again is how Alertmanager is meant to be fed, and it notifies a receiver once per change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from central.alert_payload import StoredAlert
from central.alert_rules import AlertsConfig

log = logging.getLogger(__name__)
MAX_NAME = 200                # characters of a device or condition name kept in the key
ALERTS_LOCK = 0x636c6962      # advisory lock: one alerts process posts at a time
# A raise and its clear that reached the centre within this many seconds of each other came
# together (the backlog of a clinic whose link was down): the event was over before anyone at
# the centre could have been told. Live, a clear follows its raise by a poll at least.
TOGETHER_S = 2.0

FIRE, RESOLVE, RESOLVE_AGAIN, DONE = "fire", "resolve", "resolve_again", "done"

_COLUMNS = ("aid, site, dev, cond, extract(epoch FROM start_at), severity, vals, flapping, "
            "extract(epoch FROM end_at), dur_s, est, late, raise_id, clear_id")


def _stored(row: tuple[Any, ...]) -> StoredAlert:
    (site, dev, cond, start, sev, vals, flapping, end, dur, est, late, raise_id,
     clear_id) = row[1:14]
    return StoredAlert(site=site, dev=dev, cond=cond, start=float(start), severity=sev,
                       values=vals if isinstance(vals, dict) else {}, flapping=flapping,
                       end=None if end is None else float(end), dur_s=dur, est=est, late=late,
                       raise_id=raise_id, clear_id=clear_id)


@dataclass(frozen=True)
class Due:
    aid: int                 # the row (its key holds a timestamp: not a float to match again)
    alert: StoredAlert
    action: str


@dataclass(frozen=True)
class Taken:
    events: int = 0          # taken from the queue
    opened: int = 0          # new alerts
    closed: int = 0          # alerts their clear reached
    not_reported: int = 0    # over before the centre heard of them, not told (report_ended off)


def take_queue(conn: psycopg.Connection[Any], cfg: AlertsConfig, limit: int = 500) -> Taken:
    """Turn up to ``limit`` queued events into alert rows, in one transaction (exactly once)."""
    opened = closed = quiet = 0
    with conn.transaction():
        queued = conn.execute(
            """SELECT q.n, e.site, e.id, e.kind, e.cond, e.dev, e.start_at, e.end_at, e.dur_s,
                      e.est, e.vals, e.received_at
                 FROM alert_queue q LEFT JOIN events e ON e.site = q.site AND e.id = q.event_id
                ORDER BY q.n LIMIT %s FOR UPDATE OF q SKIP LOCKED""", (limit,)).fetchall()
        for (_, site, eid, kind, cond, dev, start, end, dur, est, vals, received) in queued:
            if site is None:
                continue            # the event row is gone (deleted by hand): nothing to tell
            sev = cfg.severity_of(cond)
            if sev is None:
                continue
            # The ingest takes names of any length; an index entry cannot be (8 KiB at most),
            # and a label is cut at 256 characters anyway.
            key = (site, dev[:MAX_NAME], cond[:MAX_NAME], start)
            try:
                with conn.transaction():    # a savepoint: one bad event never blocks the queue
                    o, c, q = _take_one(conn, cfg, key, sev, eid, kind, end, dur, est, vals,
                                        received)
            except psycopg.Error as exc:
                log.error("alerts: event %d of site %s left out: %s", eid, site,
                          str(exc).strip().splitlines()[0] if str(exc).strip() else exc)
                continue
            opened, closed, quiet = opened + o, closed + c, quiet + q
        if queued:
            conn.execute("DELETE FROM alert_queue WHERE n = ANY(%s)", ([q[0] for q in queued],))
    return Taken(len(queued), opened, closed, quiet)


def _take_one(conn: psycopg.Connection[Any], cfg: AlertsConfig, key: tuple[Any, ...], sev: str,
              eid: int, kind: str, end: Any, dur: float | None, est: bool, vals: Any,
              received: Any) -> tuple[int, int, int]:
    """One event into the alerts table: (alerts opened, closed, closed without being told)."""
    start = key[3]
    if kind in ("raise", "flapping"):
        cur = conn.execute(
            """INSERT INTO alerts (site, dev, cond, start_at, raise_id, flapping,
                                   severity, vals)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (site, dev, cond, start_at) DO UPDATE
                  SET raise_id = COALESCE(alerts.raise_id, excluded.raise_id),
                      flapping = alerts.flapping OR excluded.flapping,
                      vals = CASE WHEN alerts.raise_id IS NULL THEN excluded.vals
                                  ELSE alerts.vals END
               RETURNING xmax = 0""",
            (*key, eid, kind == "flapping", sev, Jsonb(vals)))
        row = cur.fetchone()
        return (1 if row and row[0] else 0), 0, 0
    # A clear: the alert it ends, and whether the centre heard of it while it was on.
    row = conn.execute(
        """SELECT a.end_at IS NOT NULL, a.hold_from IS NOT NULL, r.received_at
             FROM alerts a LEFT JOIN events r ON r.site = a.site AND r.id = a.raise_id
            WHERE a.site = %s AND a.dev = %s AND a.cond = %s AND a.start_at = %s
              FOR UPDATE OF a""", key).fetchone()
    if row is not None and row[0]:
        return 0, 0, 0      # cleared already (a second clear of one start: keep the first)
    posted = row is not None and row[1]
    raised_at = row[2] if row is not None else None
    late = not posted and (raised_at is None
                           or (received - raised_at).total_seconds() < TOGETHER_S)
    state = "not_reported" if late and not cfg.report_ended else "firing"
    conn.execute(
        """INSERT INTO alerts (site, dev, cond, start_at, clear_id, severity, vals,
                               end_at, dur_s, est, end_vals, late, state)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (site, dev, cond, start_at) DO UPDATE
              SET clear_id = excluded.clear_id, end_at = excluded.end_at,
                  dur_s = excluded.dur_s, est = excluded.est,
                  end_vals = excluded.end_vals, late = excluded.late,
                  state = CASE WHEN alerts.state = 'firing' THEN excluded.state
                               ELSE alerts.state END""",
        (*key, eid, sev, Jsonb(vals), end if end is not None else start, dur, est,
         Jsonb(vals), late, state))
    return 0, 1, int(state == "not_reported")


def due(conn: psycopg.Connection[Any], cfg: AlertsConfig,
        limit: int = 1000) -> list[Due]:
    """Alerts to post now, each with what to do: FIRE (first post, or again every repost_s),
    RESOLVE (cleared, and firing in Alertmanager for hold_s), RESOLVE_AGAIN (within hold_s of
    the resolution, in case Alertmanager restarts before it notified), DONE (nothing more)."""
    rows = conn.execute(
        f"""SELECT {_COLUMNS}, state,
                   end_at IS NOT NULL AND hold_from <= now() - make_interval(secs => %(hold)s),
                   resolved_at <= now() - make_interval(secs => %(hold)s)
              FROM alerts
             WHERE state = 'firing' AND (posted_at IS NULL OR hold_from IS NULL
                        OR posted_at <= now() - make_interval(secs => %(repost)s)
                        OR end_at IS NOT NULL
                           AND hold_from <= now() - make_interval(secs => %(hold)s))
                OR state = 'resolved' AND (posted_at IS NULL
                        OR posted_at <= now() - make_interval(secs => %(repost)s)
                        OR resolved_at <= now() - make_interval(secs => %(hold)s))
             ORDER BY start_at LIMIT %(limit)s""",
        {"hold": cfg.hold_s, "repost": cfg.repost_s, "limit": limit}).fetchall()
    out = []
    for r in rows:
        state, hold_over, resolve_over = r[14], r[15], r[16]
        if state == "firing":
            out.append(Due(r[0], _stored(r), RESOLVE if hold_over else FIRE))
        else:
            out.append(Due(r[0], _stored(r), DONE if resolve_over else RESOLVE_AGAIN))
    return out


def sent(conn: psycopg.Connection[Any], done: list[Due]) -> None:
    """Record what Alertmanager accepted (or, for DONE, that nothing more is to be sent)."""
    with conn.transaction():
        for d in done:
            key, action = (d.aid,), d.action
            if action == FIRE:
                conn.execute("""UPDATE alerts SET posted_at = now(),
                                       hold_from = COALESCE(hold_from, now())
                                 WHERE aid = %s""", key)
            elif action == RESOLVE:
                conn.execute("""UPDATE alerts SET state = 'resolved', resolved_at = now(),
                                       posted_at = now()
                                 WHERE aid = %s""", key)
            elif action == RESOLVE_AGAIN:
                conn.execute("""UPDATE alerts SET posted_at = now()
                                 WHERE aid = %s""", key)
            else:
                conn.execute("""UPDATE alerts SET state = 'done'
                                 WHERE aid = %s""", key)


def refused(conn: psycopg.Connection[Any], d: Due, why: str) -> None:
    conn.execute("UPDATE alerts SET state = 'refused', error = %s WHERE aid = %s",
                 (why[:1000], d.aid))


def enable(conn: psycopg.Connection[Any]) -> bool:
    """From now on the ingest queues every event it stores; True the first time."""
    return conn.execute("INSERT INTO alerts_enabled DEFAULT VALUES "
                        "ON CONFLICT DO NOTHING").rowcount == 1


def restart_holds(conn: psycopg.Connection[Any]) -> int:
    """Alertmanager may have lost every alert (it keeps them in memory): post all again, and
    count each hold from now, as if the alerts were posted for the first time."""
    with conn.transaction():
        n = conn.execute("""UPDATE alerts SET posted_at = NULL,
                                   hold_from = CASE WHEN hold_from IS NOT NULL THEN now() END
                             WHERE state = 'firing'""").rowcount
        n += conn.execute("""UPDATE alerts SET posted_at = NULL, resolved_at = now()
                              WHERE state = 'resolved'""").rowcount
    return n
