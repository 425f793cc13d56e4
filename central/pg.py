"""PostgreSQL: the de-duplication state, events, site inventory and status, set-aside messages.

One transaction per batch of messages, whatever the number of sites in it: every statement works
on arrays (``unnest``), so the cost is per batch, not per reading or per site. The sites' rows are
locked in sorted order at the start of the transaction, so several ingest processes never count a
reading twice and never deadlock.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from central import commands, seqranges
from central.commands import CommandOutput
from central.documents import ActiveEvents, ConfigState, Event, Status
from central.seqranges import Range
from central.vm import StoreUnavailable

log = logging.getLogger(__name__)
MIGRATION_LOCK = 0x636c696e   # advisory lock: one process applies the schema at a time
ACKER_LOCK = 0x636c6961       # advisory lock: one process publishes the acks


def connect(dsn: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise StoreUnavailable(f"PostgreSQL: {_brief(exc)}") from exc


def _brief(exc: BaseException) -> str:
    # psycopg's message never holds the password; keep only its first line.
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def migrate(conn: psycopg.Connection[Any]) -> None:
    ddl = resources.files("central").joinpath("schema.sql").read_text(encoding="utf-8")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(ddl)


@dataclass
class SiteWork:
    """What one batch brings for one site."""

    ranges: list[Range] = field(default_factory=list)   # seqs accounted for (stored or set aside)
    received: int = 0          # readings in the batch, duplicates included
    set_aside: int = 0
    boot: str | None = None
    boot_seq: int = 0
    max_seq: int = 0
    newest_ts: float | None = None
    drained_seq: int = 0       # highest seq of a buffer.depth == 0 reading
    markers: list[tuple[str, str, int]] = field(default_factory=list)   # (kind, key, seq)


@dataclass
class SetAside:
    key: str
    site: str | None
    topic: str
    reason: str
    detail: str
    readings: int
    payload: bytes


@dataclass
class BatchWork:
    sites: dict[str, SiteWork] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    events: list[tuple[str, str | None, Event]] = field(default_factory=list)
    active: dict[str, ActiveEvents] = field(default_factory=dict)
    summaries: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    statuses: dict[str, Status] = field(default_factory=dict)
    metas: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    configs: dict[str, ConfigState] = field(default_factory=dict)
    set_aside: list[SetAside] = field(default_factory=list)
    command_outputs: list[CommandOutput] = field(default_factory=list)   # cmd/result, diagnostics

    def site(self, name: str) -> SiteWork:
        w = self.sites.get(name)
        if w is None:
            w = self.sites[name] = SiteWork()
        return w


@dataclass
class CommitResult:
    stored: int = 0
    duplicates: int = 0
    events_new: int = 0
    events_dup: int = 0


def ranges_of(conn: psycopg.Connection[Any], sites: Sequence[str]) -> dict[str, list[Range]]:
    out: dict[str, list[Range]] = {s: [] for s in sites}
    rows = conn.execute("SELECT site, lo, hi FROM seq_ranges WHERE site = ANY(%s) "
                        "ORDER BY site, lo", (list(sites),)).fetchall()
    for site, lo, hi in rows:
        out[site].append((lo, hi))
    return out


def commit_batch(conn: psycopg.Connection[Any], work: BatchWork) -> CommitResult:
    """Record one batch in one transaction (after its readings were written to VictoriaMetrics)."""
    res = CommitResult()
    with conn.transaction():
        seen = sorted(work.seen)
        # Upserting the site rows in sorted order also locks them: concurrent batches of other
        # ingest processes touching the same sites wait here, in the same order (no deadlock).
        conn.execute("INSERT INTO sites (site, last_seen) "
                     "SELECT s, now() FROM unnest(%s::text[]) AS s "
                     "ORDER BY s ON CONFLICT (site) DO UPDATE SET last_seen = now()", (seen,))
        with_readings = sorted(work.sites)
        if with_readings:
            _commit_readings(conn, work, with_readings, res)
        _commit_documents(conn, work, res)
    return res


def _commit_readings(conn: psycopg.Connection[Any], work: BatchWork, sites: list[str],
                     res: CommitResult) -> None:
    existing = ranges_of(conn, sites)   # under the row locks: exact
    changed: list[str] = []
    new_lo: list[int] = []
    new_hi: list[int] = []
    new_site: list[str] = []
    upd: dict[str, list[Any]] = {k: [] for k in ("site", "max_seq", "stored", "dup", "aside", "ts",
                                                  "boot", "drained")}
    for site in sites:
        w = work.sites[site]
        have = existing[site]
        fresh = seqranges.merge(w.ranges)
        newly = sum(seqranges.count(seqranges.uncovered(lo, hi, have)) for lo, hi in fresh)
        merged = seqranges.merge(have + fresh)
        if merged != have:
            changed.append(site)
            for lo, hi in merged:
                new_site.append(site)
                new_lo.append(lo)
                new_hi.append(hi)
        stored = max(newly - w.set_aside, 0)
        res.stored += stored
        res.duplicates += w.received - newly
        for k, v in (("site", site), ("max_seq", w.max_seq), ("stored", stored),
                     ("dup", w.received - newly), ("aside", min(w.set_aside, newly)),
                     ("ts", w.newest_ts), ("boot", w.boot), ("drained", w.drained_seq)):
            upd[k].append(v)
    if changed:
        conn.execute("DELETE FROM seq_ranges WHERE site = ANY(%s)", (changed,))
        conn.execute("INSERT INTO seq_ranges (site, lo, hi) SELECT * FROM "
                     "unnest(%s::text[], %s::bigint[], %s::bigint[])", (new_site, new_lo, new_hi))
    conn.execute(
        """UPDATE sites SET max_seq = GREATEST(sites.max_seq, u.max_seq),
                stored_total = stored_total + u.stored, duplicates_total = duplicates_total + u.dup,
                set_aside_total = set_aside_total + u.aside,
                last_reading_at = GREATEST(last_reading_at, to_timestamp(u.ts)),
                boot = CASE WHEN u.max_seq >= sites.max_seq AND u.boot IS NOT NULL
                            THEN u.boot ELSE sites.boot END,
                boot_seen = CASE WHEN u.boot IS DISTINCT FROM sites.boot
                            AND u.max_seq >= sites.max_seq
                            AND u.boot IS NOT NULL THEN now() ELSE sites.boot_seen END,
                drained_seq = GREATEST(sites.drained_seq, u.drained),
                ack_due = sites.ack_due OR u.dup > 0
           FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[],
                       %s::float8[], %s::text[], %s::bigint[])
                AS u(site, max_seq, stored, dup, aside, ts, boot, drained)
          WHERE sites.site = u.site""",
        tuple(upd[k]
              for k in ("site", "max_seq", "stored", "dup", "aside", "ts", "boot", "drained")))
    markers = [(s, kind, key, seq) for s in sites for kind, key, seq in work.sites[s].markers]
    if markers:
        conn.execute(
            """INSERT INTO loss_markers (site, kind, key, seq)
               SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[])
               ON CONFLICT (site, kind, key)
               DO UPDATE SET seq = LEAST(loss_markers.seq, excluded.seq)""",
            tuple(map(list, zip(*markers, strict=False))))


def _commit_documents(conn: psycopg.Connection[Any], work: BatchWork, res: CommitResult) -> None:
    if work.events:
        rows = [(site, e.id, e.kind, e.cond, e.dev, e.start, e.end, e.dur_s, e.est,
                 json.dumps(e.values), e.flags, boot) for site, boot, e in work.events]
        cur = conn.execute(
            """INSERT INTO events (site, id, kind, cond, dev, start_at, end_at, dur_s, est, vals,
                                   flags, boot)
               SELECT site, id, kind, cond, dev, to_timestamp(st), to_timestamp(en), dur, est,
                      vals::jsonb, flags, boot
                 FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::text[], %s::text[],
                             %s::float8[], %s::float8[], %s::float8[], %s::bool[], %s::text[],
                             %s::int[], %s::text[])
                      AS u(site, id, kind, cond, dev, st, en, dur, est, vals, flags, boot)
               ON CONFLICT (site, id) DO NOTHING""",
            tuple(map(list, zip(*rows, strict=False))))
        res.events_new = cur.rowcount
        res.events_dup = len(rows) - cur.rowcount
    for site, act in work.active.items():
        conn.execute(
            """INSERT INTO events_active (site, at, active) VALUES (%s, to_timestamp(%s), %s)
               ON CONFLICT (site) DO UPDATE SET at = excluded.at, active = excluded.active,
                      received_at = now()
               WHERE events_active.at IS NULL OR excluded.at IS NULL
                     OR excluded.at >= events_active.at""",
            (site, act.ts, Jsonb(act.active)))
    for (site, day), doc in work.summaries.items():
        conn.execute("""INSERT INTO daily_summaries (site, day, doc) VALUES (%s, %s, %s)
                        ON CONFLICT (site, day)
                        DO UPDATE SET doc = excluded.doc, received_at = now()""",
                     (site, day, Jsonb(doc)))
    for site, st in work.statuses.items():
        # A retained status can come again (or late, through another ingest): keep the newest.
        conn.execute(
            """UPDATE sites SET status = %s, status_at = COALESCE(to_timestamp(%s), now()),
                      agent_version = COALESCE(%s, agent_version)
                WHERE site = %s AND (status_at IS NULL OR %s::float8 IS NULL
                                     OR to_timestamp(%s) >= status_at)""",
            (st.state, st.ts, st.version, site, st.ts, st.ts))
    for site, units in work.metas.items():
        conn.execute("UPDATE sites SET units = %s WHERE site = %s", (Jsonb(units), site))
    for site, cs in work.configs.items():
        conn.execute("UPDATE sites SET config_state = %s, config_version = %s WHERE site = %s",
                     (Jsonb(cs.doc), cs.version, site))
    commands.store(conn, work.command_outputs)
    if work.set_aside:
        rows2 = [(a.key, a.site, a.topic, a.reason, a.detail[:1000], a.readings, a.payload[:65536])
                 for a in work.set_aside]
        conn.execute(
            """INSERT INTO set_aside (dedup_key, site, topic, reason, detail, readings, payload)
               SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                                    %s::bigint[], %s::bytea[])
               ON CONFLICT (dedup_key) DO NOTHING""",
            tuple(map(list, zip(*rows2, strict=False))))


# -- series registry (per-site cap) ----------------------------------------------------------------

def register_series(conn: psycopg.Connection[Any], wanted: dict[str, list[str]],
                    cap: int) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """Of the series ``wanted`` per site, which may be written (known, or new within the cap).

    Returns (allowed, refused) as sets of (site, key). New allowed ones are recorded at once.
    """
    allowed: set[tuple[str, str]] = set()
    refused: set[tuple[str, str]] = set()
    sites = sorted(wanted)
    with conn.transaction():
        known = conn.execute(
            "SELECT site, key FROM series "
            "WHERE (site, key) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
            ([s for s in sites for _ in wanted[s]],
             [k for s in sites for k in wanted[s]])).fetchall()
        allowed.update((s, k) for s, k in known)
        counts = dict(conn.execute("SELECT site, count(*) FROM series WHERE site = ANY(%s) "
                                   "GROUP BY site",
                                   (sites,)).fetchall())
        add_site: list[str] = []
        add_key: list[str] = []
        for s in sites:
            n = counts.get(s, 0)
            for k in wanted[s]:
                if (s, k) in allowed:
                    continue
                if n < cap:
                    n += 1
                    allowed.add((s, k))
                    add_site.append(s)
                    add_key.append(k)
                else:
                    refused.add((s, k))
        if add_site:
            conn.execute("INSERT INTO series (site, key) "
                         "SELECT * FROM unnest(%s::text[], %s::text[]) "
                         "ON CONFLICT DO NOTHING", (add_site, add_key))
    return allowed, refused


# -- acknowledgement and gaps (one process at a time: the holder of ACKER_LOCK) --------------------

@dataclass(frozen=True)
class AckCandidate:
    site: str
    acked_seq: int
    drained_seq: int
    ack_due: bool
    covered: list[Range]      # stored ranges and final gaps, merged


def ack_candidates(conn: psycopg.Connection[Any]) -> tuple[Any, list[AckCandidate]]:
    """Sites whose ack may move, with what covers their seqs; and the time of this snapshot."""
    with conn.transaction():
        now = conn.execute("SELECT clock_timestamp()").fetchone()[0]   # type: ignore[index]
        rows = conn.execute("SELECT site, acked_seq, drained_seq, ack_due FROM sites "
                            "WHERE max_seq > acked_seq OR ack_due").fetchall()
        sites = [r[0] for r in rows]
        cover = ranges_of(conn, sites)
        for site, lo, hi in conn.execute("SELECT site, lo, hi FROM gaps WHERE site = ANY(%s)",
                                         (sites,)):
            cover[site].append((lo, hi))
    return now, [AckCandidate(s, a, d, due, seqranges.merge(cover[s])) for s, a, d, due in rows]


def record_gaps(conn: psycopg.Connection[Any], site: str,
                holes: Iterable[Range]) -> list[tuple[Range, str]]:
    """Record holes as final loss, each with the agent's reason when it gave one."""
    markers = conn.execute("SELECT kind, key, seq FROM loss_markers WHERE site = %s ORDER BY seq",
                           (site,)).fetchall()
    out = []
    for lo, hi in holes:
        reason = _reason(markers, lo, hi)
        conn.execute("INSERT INTO gaps (site, lo, hi, reason) VALUES (%s, %s, %s, %s) "
                     "ON CONFLICT DO NOTHING", (site, lo, hi, reason))
        out.append(((lo, hi), reason))
    return out


def _reason(markers: Sequence[tuple[str, str, int]], lo: int, hi: int) -> str:
    """The agent's first loss report after the hole explains it, if it is new since before it."""
    before = max((float(k) for kind, k, seq in markers if kind == "dropped_by_cap" and seq < lo),
                 default=0.0)
    for kind, key, seq in markers:
        if seq <= hi:
            continue
        if kind == "buffer_replaced":
            return "buffer_replaced"
        if kind == "dropped_by_cap" and float(key) > before:
            return "dropped_by_cap"
    return "unknown"


def flushed_before(conn: psycopg.Connection[Any], stale_s: float) -> Any:
    """The time before which every live ingest's VictoriaMetrics writes are confirmed on disk."""
    row = conn.execute("SELECT min(flushed_at) FROM ingest_stats "
                       "WHERE updated_at > now() - make_interval(secs => %s)",
                       (stale_s,)).fetchone()
    return row[0] if row else None


def set_acked(conn: psycopg.Connection[Any], acks: dict[str, int]) -> None:
    if acks:
        conn.execute("""UPDATE sites SET acked_seq = GREATEST(acked_seq, u.seq), acked_at = now(),
                               ack_due = false
                          FROM unnest(%s::text[], %s::bigint[]) AS u(site, seq)
                         WHERE sites.site = u.site""",
                     (list(acks), list(acks.values())))


def write_stats(conn: psycopg.Connection[Any], ingest_id: str, started: float,
                stats: dict[str, Any], flushed_at: Any | None) -> None:
    conn.execute("""INSERT INTO ingest_stats (ingest_id, started_at, updated_at, flushed_at, stats)
                    VALUES (%s, to_timestamp(%s), now(), %s, %s)
                    ON CONFLICT (ingest_id) DO UPDATE SET started_at = excluded.started_at,
                        updated_at = now(), stats = excluded.stats,
                        flushed_at = COALESCE(excluded.flushed_at, ingest_stats.flushed_at)""",
                 (ingest_id, started, flushed_at, Jsonb(stats)))
