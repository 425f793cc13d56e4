"""``clinic-central status``: is the ingest keeping up, and is anything lost? From PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg


@dataclass(frozen=True)
class IngestRow:
    ingest_id: str
    age_s: float
    started_s: float
    stats: dict[str, Any]


@dataclass(frozen=True)
class CentralStatus:
    ingests: list[IngestRow]
    sites_total: int
    sites_seen_5min: int
    sites_online: int
    readings_stored: int
    readings_per_s: float          # over the last minute, from the sites' edge times
    lag_p50_s: float | None
    lag_max_s: float | None
    unacked_sites: int              # sites whose stored seqs are ahead of the published ack
    gaps: int
    readings_lost: int
    lost_by_reason: dict[str, int]
    set_aside_by_reason: dict[str, int]
    worst_gaps: list[tuple[str, int, int, str]]

    def as_dict(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["ingests"] = [r.__dict__ for r in self.ingests]
        return d


def collect(conn: psycopg.Connection[Any], *, live_s: float = 30.0) -> CentralStatus:
    q = conn.execute
    ingests = [IngestRow(i, float(a), float(s), st) for i, a, s, st in q(
        "SELECT ingest_id, extract(epoch FROM now() - updated_at), "
        "extract(epoch FROM now() - started_at), "
        "stats FROM ingest_stats ORDER BY ingest_id").fetchall()]
    live = [r for r in ingests if r.age_s < live_s]
    total, seen, online, stored, unacked = q(
        "SELECT count(*), count(*) FILTER (WHERE last_seen > now() - interval '5 minutes'), "
        "count(*) FILTER (WHERE status = 'online'), coalesce(sum(stored_total), 0), "
        "count(*) FILTER (WHERE max_seq > acked_seq) FROM sites").fetchone()   # type: ignore[misc]
    gaps, lost = q("SELECT count(*), coalesce(sum(hi - lo + 1), 0) FROM gaps").fetchone()   # type: ignore[misc]
    by_reason = dict(q("SELECT reason, sum(hi - lo + 1) FROM gaps GROUP BY reason").fetchall())
    aside = dict(q("SELECT reason, count(*) FROM set_aside GROUP BY reason").fetchall())
    worst = q("SELECT site, lo, hi, reason FROM gaps ORDER BY hi - lo DESC LIMIT 5").fetchall()
    rate = sum(float(r.stats.get("readings_per_s") or 0) for r in live)
    p50 = [r.stats["lag_p50_s"] for r in live if r.stats.get("lag_p50_s") is not None]
    mx = [r.stats["lag_max_s"] for r in live if r.stats.get("lag_max_s") is not None]
    return CentralStatus(ingests, total, seen, online, int(stored), rate,
                         max(p50) if p50 else None, max(mx) if mx else None, unacked, gaps,
                         int(lost), {k: int(v) for k, v in by_reason.items()},
                         {k: int(v) for k, v in aside.items()},
                         [(s, lo, hi, r) for s, lo, hi, r in worst])


def render(st: CentralStatus, *, live_s: float = 30.0) -> tuple[str, bool]:
    """Plain text for the central team, and whether everything is fine."""
    ok = True
    out = ["clinic-central status"]
    if not st.ingests:
        out.append("  ingest:    none has ever run against this database")
        ok = False
    for r in st.ingests:
        alive = r.age_s < live_s
        ok = ok and alive
        s = r.stats
        state = "running" if alive else f"SILENT for {r.age_s:.0f} s"
        out.append(f"  ingest {r.ingest_id}: {state}, "
                   f"broker {'connected' if s.get('connected') else 'NOT connected'}, "
                   f"inbox {s.get('inbox', 0)}, {s.get('readings_per_s', 0):.0f} readings/s, "
                   f"stored {s.get('readings_stored', 0)}, "
                   f"duplicates {s.get('readings_duplicate', 0)}, "
                   f"set aside {s.get('readings_set_aside', 0)}")
    lag = "n/a" if st.lag_p50_s is None else f"p50 {st.lag_p50_s:.2f} s, max {st.lag_max_s:.2f} s"
    out += [f"  readings/s: {st.readings_per_s:.0f} (all ingests)",
            f"  lag (clinic poll -> stored): {lag}",
            f"  sites:     {st.sites_total} known, {st.sites_seen_5min} seen in the last 5 min, "
            f"{st.sites_online} online, {st.unacked_sites} with readings not yet acknowledged",
            f"  readings stored: {st.readings_stored}",
            f"  gaps:      {st.gaps} ({st.readings_lost} readings lost"
            + (": " + ", ".join(f"{k} {v}" for k, v in sorted(st.lost_by_reason.items()))
               if st.lost_by_reason else "")
            + ")"]
    for site, lo, hi, why in st.worst_gaps:
        out.append(f"    {site}: seq {lo}..{hi} ({hi - lo + 1} readings, {why})")
    if st.set_aside_by_reason:
        out.append("  set aside: "
                   + ", ".join(f"{k} {v}" for k, v in sorted(st.set_aside_by_reason.items())))
    return "\n".join(out), ok
