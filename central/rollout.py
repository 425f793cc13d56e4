"""Staged rollouts: one signed push (a whole config or an overlay) to many sites, canary first.

    create:   signed bundle (agent.remote.bundle: envelopes of the same push, each for some of
              the sites; or one envelope) + chosen sites
              -> rollouts (the bundle), rollout_sites (canary = stage 1; which envelope lists it)
    start:    stage 1: publish (retained) to each canary's config/set the envelope listing it
              -> wait for each site's outcome in sites.config_state (stored by the ingest from
                 the agents' retained PREFIX/SITE/config/state) or the stage timeout
              -> more than max_failure_share rejected / rolled back, or no canary applied: stop
                 (retained pushes without an answer withdrawn; the rest never get it)
              -> else stage 2, the rest, judged the same way
    rollback: a signed revert ("go back to the config before vN") to the sites that applied it
    status:   the rollout and every site's state, as plain JSON-able dicts (CLI --json, web page)

The centre never holds an operator's private key unless the CLI is given ``--key``: the
bundle can be signed elsewhere (``clinic-agent fleet sign``) and handed over as bytes. Whatever
is published is exactly one line of the signed bytes stored in ``rollouts.envelope``. Every step
is recorded in ``operator_actions`` with the actor.

Each step reads and writes PostgreSQL only, so ``status`` (another process, the web page) sees
progress as it happens, and ``start`` run again after an interruption carries on where it was.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from agent.errors import AgentError
from agent.publish.topics import Topics
from agent.remote.bundle import parse_bundle
from agent.remote.envelope import EnvelopeError
from central.commands import Publisher

log = logging.getLogger(__name__)

CANARY, REST = 1, 2
FAILED = ("rejected", "rolled_back")
ANSWERED = ("applied", *FAILED)
POLL_S = 0.5
RUNNER_LOCK = 0x726f6c6c     # advisory lock namespace: one `rollout start` per rollout


class RolloutError(AgentError):
    """A rollout that cannot be created or carried on (the message says why)."""


@dataclass(frozen=True)
class Plan:
    """How a rollout proceeds."""

    canary_share: float = 0.1         # of the sites, at least one
    max_failure_share: float = 0.1    # a stage with more rejected/rolled back than this stops
    stage_timeout_s: float = 900.0    # a site silent this long into its stage: no_answer

    def check(self) -> None:
        if not 0 < self.canary_share <= 1:
            raise RolloutError("canary share must be more than 0 and at most 1")
        if not 0 <= self.max_failure_share < 1:
            raise RolloutError("failure share must be at least 0 and less than 1")
        if not 0 < self.stage_timeout_s <= 7 * 86400:
            raise RolloutError("stage timeout must be more than 0 s and at most 7 days")


# -- choosing sites --------------------------------------------------------------------------------

def sites_from_inventory(conn: psycopg.Connection[Any], *, like: str | None = None,
                         status: str | None = None, config_version: str | None = None,
                         seen_within_s: float | None = None) -> list[str]:
    """Sites of the ``sites`` table matching every filter given (SQL LIKE on the site id, the
    retained status, the config version in effect, seen recently)."""
    rows = conn.execute(
        """SELECT site FROM sites
            WHERE (%(like)s::text IS NULL OR site LIKE %(like)s)
              AND (%(status)s::text IS NULL OR status = %(status)s)
              AND (%(cv)s::text IS NULL OR config_version = %(cv)s)
              AND (%(seen)s::float8 IS NULL OR last_seen > now() - make_interval(secs => %(seen)s))
            ORDER BY site""",
        {"like": like, "status": status, "cv": config_version, "seen": seen_within_s}).fetchall()
    return [r[0] for r in rows]


def canary_of(sites: Sequence[str], share: float, salt: str) -> set[str]:
    """A spread-out, repeatable choice of ``ceil(share * n)`` sites (at least one): ordered by a
    hash of the envelope and the site, so it is not always the first sites of a region."""
    n = max(1, math.ceil(share * len(sites) - 1e-9))
    ranked = sorted(sites, key=lambda s: hashlib.sha256(f"{salt}/{s}".encode()).digest())
    return set(ranked[:n])


# -- create ----------------------------------------------------------------------------------------

def create(conn: psycopg.Connection[Any], envelope: bytes, sites: Iterable[str], *, actor: str,
           plan: Plan, note: str | None = None, canary: Iterable[str] | None = None) -> int:
    """Record a rollout of ``envelope`` (signed bytes: a bundle file, or one envelope) to
    ``sites``; returns its id.

    Every site must be among the signed ``sites`` of an envelope of the bundle: the signature is
    what a site checks, so a rollout can only narrow it, never widen it. The envelopes of a
    bundle must be one push (``parse_bundle``: same key, version, content, validity).
    """
    plan.check()
    try:
        bundle = parse_bundle(envelope)
    except EnvelopeError as exc:
        raise RolloutError(f"not a signed envelope or bundle: {exc}") from exc
    env = bundle.first
    body = env.payload.body
    if env.payload.kind != "config" or not isinstance(body.get("version"), int) \
            or not ({"config", "overlay"} & set(body)):
        raise RolloutError("the envelope is not a config or overlay push")
    chosen = sorted(set(sites))
    if not chosen:
        raise RolloutError("no site chosen")
    outside = [s for s in chosen if s not in bundle.index]
    if outside:
        raise RolloutError(f"{len(outside)} chosen site(s) are not among the envelope's signed "
                           f"sites, e.g. {', '.join(outside[:5])}")
    if env.payload.not_after <= time.time():
        raise RolloutError("the envelope has expired (its not_after has passed)")
    stored = bundle.to_bytes()      # a bundle of one: exactly the envelope, as before bundles
    first = set(canary) if canary is not None else canary_of(chosen, plan.canary_share,
                                                             bundle.sha256)
    if not first or not first <= set(chosen):
        raise RolloutError("the canary must be some of the chosen sites")
    kind = "overlay" if "overlay" in body else "config"
    with conn.transaction():
        rid = conn.execute(
            """INSERT INTO rollouts (created_by, kind, version, key_id, envelope, envelope_sha256,
                                     not_after, note, canary_share, max_failure_share,
                                     stage_timeout_s)
               VALUES (%s, %s, %s, %s, %s, %s, to_timestamp(%s), %s, %s, %s, %s) RETURNING id""",
            (actor, kind, body["version"], env.key_id, stored, bundle.sha256,
             env.payload.not_after, note, plan.canary_share, plan.max_failure_share,
             plan.stage_timeout_s)).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO rollout_sites (rollout_id, site, stage, envelope_index) "
            "SELECT %s, s, st, e FROM unnest(%s::text[], %s::int[], %s::int[]) AS u(s, st, e)",
            (rid, chosen, [CANARY if s in first else REST for s in chosen],
             [bundle.index[s] for s in chosen]))
        _audit(conn, actor, "rollout_create", rid, len(chosen),
               {"version": body["version"], "kind": kind, "canary": len(first), "note": note,
                "envelopes": len({bundle.index[s] for s in chosen})})
    return int(rid)


# -- start -----------------------------------------------------------------------------------------

def start(conn: psycopg.Connection[Any], rollout_id: int, link: Publisher, *, actor: str,
          prefix: str = "clinics", poll_s: float = POLL_S,
          progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the rollout to its end (done or stopped) and return its status.

    Safe to run again after an interruption: a stage already published is not published again,
    only waited for.
    """
    r = _rollout(conn, rollout_id)
    if r["state"] in ("done", "stopped"):
        return status(conn, rollout_id)
    # One runner per rollout (a second `start` would judge the same stage twice).
    if not conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                        (RUNNER_LOCK, rollout_id)).fetchone()[0]:  # type: ignore[index]
        raise RolloutError(f"rollout {rollout_id} is already being run by another process")
    try:
        return _run(conn, r, link, actor=actor, prefix=prefix, poll_s=poll_s, progress=progress)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s, %s)", (RUNNER_LOCK, rollout_id))


def _run(conn: psycopg.Connection[Any], r: dict[str, Any], link: Publisher, *, actor: str,
         prefix: str, poll_s: float,
         progress: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
    rollout_id = r["id"]
    for stage in (CANARY, REST):
        if _rollout(conn, rollout_id)["state"] == "stopped":   # rolled back meanwhile
            return status(conn, rollout_id)
        if r["stage"] < stage:
            _publish_stage(conn, r, stage, link, actor=actor, prefix=prefix)
        _wait_stage(conn, r, stage, poll_s=poll_s, progress=progress)
        verdict = _judge(conn, r, stage)
        if verdict is not None:
            _stop(conn, r, verdict, link, actor=actor, prefix=prefix)
            return status(conn, rollout_id)
    _set_state(conn, rollout_id, "done")
    return status(conn, rollout_id)


def _publish_stage(conn: psycopg.Connection[Any], r: dict[str, Any], stage: int,
                   link: Publisher, *, actor: str, prefix: str) -> None:
    sites = conn.execute(
        "SELECT site, envelope_index FROM rollout_sites WHERE rollout_id = %s AND stage = %s "
        "ORDER BY site", (r["id"], stage)).fetchall()
    bundle = parse_bundle(r["envelope"])
    if r["not_after"] <= time.time():
        raise RolloutError(f"rollout {r['id']}: the envelope has expired; sign a new one")
    # Recorded first: a publish that happened is never missing from the record.
    with conn.transaction():
        conn.execute("UPDATE rollouts SET stage = %s, state = %s, updated_at = now() "
                     "WHERE id = %s", (stage, "canary" if stage == CANARY else "rest", r["id"]))
        conn.execute("UPDATE rollout_sites SET state = 'sent', sent_at = now() "
                     "WHERE rollout_id = %s AND stage = %s AND state = 'pending'",
                     (r["id"], stage))
        _audit(conn, actor, "rollout_stage", r["id"], len(sites), {"stage": stage})
    r["stage"] = stage
    for site, index in sites:
        # The envelope that lists the site (rollouts recorded before bundles: their only one).
        link.publish(Topics(prefix, site).config_set, bundle.envelopes[index or 0].raw,
                     retain=True)
    log.info("rollout %s: stage %d published to %d site(s)", r["id"], stage, len(sites))


def _wait_stage(conn: psycopg.Connection[Any], r: dict[str, Any], stage: int, *, poll_s: float,
                progress: Callable[[dict[str, Any]], None] | None) -> None:
    deadline = time.monotonic() + r["stage_timeout_s"]
    while True:
        waiting = refresh(conn, r["id"], stage=stage)
        if progress is not None:
            progress(status(conn, r["id"]))
        if not waiting:
            return
        if time.monotonic() >= deadline:
            conn.execute("UPDATE rollout_sites SET state = 'no_answer', outcome_at = now() "
                         "WHERE rollout_id = %s AND stage = %s AND state = 'sent'",
                         (r["id"], stage))
            return
        time.sleep(poll_s)


def _judge(conn: psycopg.Connection[Any], r: dict[str, Any], stage: int) -> str | None:
    """Why the rollout must stop after ``stage``, or None to go on."""
    counts = dict(conn.execute(
        "SELECT state, count(*) FROM rollout_sites WHERE rollout_id = %s AND stage = %s "
        "GROUP BY state", (r["id"], stage)).fetchall())
    total = sum(counts.values())
    failed = sum(counts.get(s, 0) for s in FAILED)
    if total and failed / total > r["max_failure_share"]:
        return (f"{failed} of {total} site(s) of stage {stage} rejected it or rolled it back "
                f"(more than {r['max_failure_share']:.0%})")
    if stage == CANARY and not counts.get("applied"):
        return "no canary site applied it"
    return None


def _stop(conn: psycopg.Connection[Any], r: dict[str, Any], why: str, link: Publisher, *,
          actor: str, prefix: str) -> None:
    # Sites that never answered still hold the retained push: withdraw it (an empty retained
    # message, which agents ignore), so nothing changes later where nobody is looking.
    # Those that rejected it lose nothing either (they would report it again after a restart).
    silent = [row[0] for row in conn.execute(
        "SELECT site FROM rollout_sites WHERE rollout_id = %s "
        "AND state IN ('sent', 'no_answer', 'rejected')", (r["id"],)).fetchall()]
    for site in silent:
        link.publish(Topics(prefix, site).config_set, b"", retain=True)
    with conn.transaction():
        conn.execute("UPDATE rollout_sites SET state = 'withdrawn' WHERE rollout_id = %s "
                     "AND state IN ('sent', 'no_answer')", (r["id"],))
        conn.execute("UPDATE rollouts SET state = 'stopped', stopped_reason = %s, "
                     "updated_at = now() WHERE id = %s", (why, r["id"]))
        _audit(conn, actor, "rollout_stop", r["id"], len(silent), {"reason": why})
    log.warning("rollout %s stopped: %s", r["id"], why)


# -- outcomes --------------------------------------------------------------------------------------

def outcome(doc: Any, version: int, *, revert: bool = False) -> tuple[str, str | None,
                                                                      str | None] | None:
    """A site's state for ``version`` from its retained config state document, or None while it
    has not decided: (state, reason, detail)."""
    if not isinstance(doc, dict):
        return None
    event = e if isinstance(e := doc.get("event"), dict) else {}
    kind = event.get("type")
    if event.get("version") == version:
        if revert and kind == "reverted":
            return "reverted", None, None
        if revert and kind == "rejected":
            return "revert_refused", _s(event.get("reason")), _detail(event)
        if not revert and kind in ANSWERED:
            return str(kind), _s(event.get("reason")), _detail(event)
    cfg = c if isinstance(c := doc.get("config"), dict) else {}
    if not revert and cfg.get("version") == version and doc.get("state") == "applied":
        return "applied", None, None       # e.g. the event was replaced by a later one
    return None


def refresh(conn: psycopg.Connection[Any], rollout_id: int, *, stage: int | None = None) -> int:
    """Bring each waiting site's state up to date from ``sites.config_state``; returns how many
    still wait."""
    r = _rollout(conn, rollout_id)
    waiting = conn.execute(
        """SELECT rs.site, rs.state, s.config_state FROM rollout_sites rs
             LEFT JOIN sites s ON s.site = rs.site
            WHERE rs.rollout_id = %s AND rs.state IN ('sent', 'reverting', 'no_answer')
              AND (%s::int IS NULL OR rs.stage = %s)""",
        (rollout_id, stage, stage)).fetchall()
    left = 0
    for site, state, doc in waiting:
        # A site silent through its stage still has the retained push (unless the rollout
        # stopped and withdrew it): its late answer is recorded too.
        revert = state == "reverting"
        found = outcome(doc, r["revert_version"] if revert else r["version"], revert=revert)
        if found is None:
            if state != "no_answer":
                left += 1
            continue
        conn.execute("UPDATE rollout_sites SET state = %s, reason = %s, detail = %s, "
                     "outcome_at = now() WHERE rollout_id = %s AND site = %s",
                     (*found, rollout_id, site))
    return left


# -- rollback --------------------------------------------------------------------------------------

def rollback(conn: psycopg.Connection[Any], rollout_id: int, revert_envelope: bytes,
             link: Publisher, *, actor: str, prefix: str = "clinics", wait_s: float = 0.0,
             poll_s: float = POLL_S) -> dict[str, Any]:
    """Send a signed revert of this rollout's version to every site that applied it; with
    ``wait_s``, wait that long for them to report it. Stops the rollout if it was running."""
    r = _rollout(conn, rollout_id)
    try:
        bundle = parse_bundle(revert_envelope)
    except EnvelopeError as exc:
        raise RolloutError(f"not a signed envelope or bundle: {exc}") from exc
    env = bundle.first
    body = env.payload.body
    if env.payload.kind != "config" or body.get("revert") != r["version"] \
            or not isinstance(body.get("version"), int):
        raise RolloutError(f"the envelope is not a revert of v{r['version']}")
    applied = [row[0] for row in conn.execute(
        "SELECT site FROM rollout_sites WHERE rollout_id = %s AND state = 'applied' "
        "ORDER BY site", (rollout_id,)).fetchall()]
    outside = [s for s in applied if s not in bundle.index]
    if outside:
        raise RolloutError(f"{len(outside)} site(s) that applied it are not among the revert's "
                           f"signed sites, e.g. {', '.join(outside[:5])}")
    with conn.transaction():
        conn.execute("UPDATE rollouts SET revert_version = %s, state = 'stopped', "
                     "stopped_reason = COALESCE(stopped_reason, 'rolled back by ' || %s), "
                     "updated_at = now() WHERE id = %s", (body["version"], actor, rollout_id))
        conn.execute("UPDATE rollout_sites SET state = 'reverting', reason = NULL, "
                     "detail = NULL, sent_at = now() WHERE rollout_id = %s AND state = 'applied'",
                     (rollout_id,))
        _audit(conn, actor, "rollout_revert", rollout_id, len(applied),
               {"revert_version": body["version"], "reverts": r["version"]})
    for site in applied:
        link.publish(Topics(prefix, site).config_set, bundle.for_site(site), retain=True)
    deadline = time.monotonic() + wait_s
    while refresh(conn, rollout_id) and time.monotonic() < deadline:
        time.sleep(poll_s)
    if wait_s > 0:
        conn.execute("UPDATE rollout_sites SET state = 'revert_no_answer' WHERE rollout_id = %s "
                     "AND state = 'reverting'", (rollout_id,))
    return status(conn, rollout_id)


# -- reading ---------------------------------------------------------------------------------------

def status(conn: psycopg.Connection[Any], rollout_id: int) -> dict[str, Any]:
    """The rollout and every site's state, JSON-able (the CLI's --json and the web page)."""
    r = _rollout(conn, rollout_id)
    rows = conn.execute(
        """SELECT site, stage, state, reason, detail, extract(epoch FROM sent_at),
                  extract(epoch FROM outcome_at), COALESCE(envelope_index, 0)
             FROM rollout_sites WHERE rollout_id = %s ORDER BY stage, site""",
        (rollout_id,)).fetchall()
    sites = [{"site": s, "stage": st, "state": state, "reason": reason, "detail": detail,
              "sent_at": _f(sent), "outcome_at": _f(out), "envelope": env}
             for s, st, state, reason, detail, sent, out, env in rows]
    counts: dict[str, int] = {}
    for s in sites:
        counts[s["state"]] = counts.get(s["state"], 0) + 1
    doc = {k: v for k, v in r.items() if k != "envelope"}
    # Stored one envelope a line (Bundle.to_bytes): counted without parsing.
    doc["envelopes"] = r["envelope"].count(b"\n") + 1
    return {**doc, "counts": counts, "sites": sites}


def list_rollouts(conn: psycopg.Connection[Any], limit: int = 50) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT id FROM rollouts ORDER BY id DESC LIMIT %s", (limit,)).fetchall()
    out = []
    for (rid,) in rows:
        st = status(conn, rid)
        del st["sites"]
        out.append(st)
    return out


def actions(conn: psycopg.Connection[Any], *, rollout_id: int | None = None,
            limit: int = 100) -> list[dict[str, Any]]:
    """The audit trail: who did what, newest first."""
    rows = conn.execute(
        """SELECT id, extract(epoch FROM at), actor, action, rollout_id, sites, detail
             FROM operator_actions WHERE (%(r)s::bigint IS NULL OR rollout_id = %(r)s)
            ORDER BY id DESC LIMIT %(n)s""", {"r": rollout_id, "n": limit}).fetchall()
    return [{"id": i, "at": _f(at), "actor": a, "action": act, "rollout_id": rid, "sites": n,
             "detail": d} for i, at, a, act, rid, n, d in rows]


def _rollout(conn: psycopg.Connection[Any], rollout_id: int) -> dict[str, Any]:
    row = conn.execute(
        """SELECT id, extract(epoch FROM created_at), created_by, kind, version, key_id,
                  envelope, envelope_sha256, extract(epoch FROM not_after), note, canary_share,
                  max_failure_share, stage_timeout_s, state, stage, stopped_reason,
                  revert_version, extract(epoch FROM updated_at)
             FROM rollouts WHERE id = %s""", (rollout_id,)).fetchone()
    if row is None:
        raise RolloutError(f"no rollout {rollout_id}")
    keys = ("id", "created_at", "created_by", "kind", "version", "key_id", "envelope",
            "envelope_sha256", "not_after", "note", "canary_share", "max_failure_share",
            "stage_timeout_s", "state", "stage", "stopped_reason", "revert_version", "updated_at")
    doc = dict(zip(keys, row, strict=True))
    for k in ("created_at", "not_after", "updated_at"):
        doc[k] = _f(doc[k])
    doc["envelope"] = bytes(doc["envelope"])
    return doc


def _set_state(conn: psycopg.Connection[Any], rollout_id: int, state: str) -> None:
    conn.execute("UPDATE rollouts SET state = %s, updated_at = now() WHERE id = %s",
                 (state, rollout_id))


def _audit(conn: psycopg.Connection[Any], actor: str, action: str, rollout_id: int | None,
           sites: int, detail: dict[str, Any]) -> None:
    conn.execute("INSERT INTO operator_actions (actor, action, rollout_id, sites, detail) "
                 "VALUES (%s, %s, %s, %s, %s)", (actor, action, rollout_id, sites, Jsonb(detail)))


def _f(x: Any) -> float | None:
    return None if x is None else float(x)


def _s(x: Any) -> str | None:
    return x[:200] if isinstance(x, str) else None


def _detail(event: dict[str, Any]) -> str | None:
    detail = _s(event.get("detail"))
    problems = event.get("problems")
    if isinstance(problems, list) and problems:
        detail = f"{detail or ''}: " + "; ".join(str(p)[:200] for p in problems[:10])
    return detail
