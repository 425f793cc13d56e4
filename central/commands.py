"""Remote commands from the centre, and what the sites answer, kept in PostgreSQL.

    clinic-central command NAME --site ... --key K   -> signed envelope -> PREFIX/SITE/cmd
                                                      -> commands_sent (who, what, to whom)
    sites: PREFIX/SITE/cmd/result, PREFIX/SITE/diagnostics -> the ingest (shared subscription)
                                                      -> command_results (read_output, store)
    clinic-central commands [--site S] [--id ID]     -> list_commands (sent, with the answers)

The answers are stored whoever sent the command (``clinic-agent fleet command`` too), so a
diagnostics report can be read afterwards instead of only by a subscriber that was listening.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from psycopg.types.json import Jsonb

from agent.publish.topics import Topics
from agent.remote.envelope import seal
from agent.remote.fleet import command_payload

# Read by the ingest, shared among its processes (each answer stored once).
COMMAND_LEAVES = ("cmd/result", "diagnostics")


@dataclass(frozen=True)
class CommandOutput:
    """One answer from a site, as the ingest stores it."""

    dedup_key: str
    site: str
    leaf: str
    command_id: str | None
    command: str | None
    ok: bool | None
    at: float | None
    doc: dict[str, Any]


def read_output(site: str, leaf: str, payload: bytes, doc: dict[str, Any]) -> CommandOutput:
    """A ``cmd/result`` or ``diagnostics`` document (already parsed) to a row; never raises."""
    at = doc.get("at") if leaf == "cmd/result" else doc.get("ts")
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at) \
            or not 0 <= at < 2**33:
        at = None
    cid, name, ok = doc.get("id"), doc.get("command"), doc.get("ok")
    key = hashlib.sha256(f"{site}/{leaf}\0".encode() + payload).hexdigest()[:40]
    return CommandOutput(key, site, leaf, cid[:64] if isinstance(cid, str) else None,
                         name[:64] if isinstance(name, str) else None,
                         ok if isinstance(ok, bool) else None, at, doc)


def store(conn: psycopg.Connection[Any], outputs: Sequence[CommandOutput]) -> None:
    """Inside the ingest's batch transaction; a redelivered answer is stored once."""
    for o in outputs:
        conn.execute(
            """INSERT INTO command_results (dedup_key, site, leaf, command_id, command, ok, at, doc)
               VALUES (%s, %s, %s, %s, %s, %s, to_timestamp(%s), %s)
               ON CONFLICT (dedup_key) DO NOTHING""",
            (o.dedup_key, o.site, o.leaf, o.command_id, o.command, o.ok, o.at, Jsonb(o.doc)))


# -- sending ---------------------------------------------------------------------------------------

class Publisher(Protocol):
    """What sending needs from a broker connection (``agent.remote.fleet.OperatorLink``)."""

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None: ...


def send(conn: psycopg.Connection[Any], link: Publisher, key: Any, *, name: str,
         args: dict[str, Any], sites: Iterable[str], actor: str,
         prefix: str = "clinics") -> str:
    """Sign a command with ``key`` (an Ed25519 private key), record who sent it, publish it.

    Recorded before it is published: a command that went out is never missing from the record.
    """
    payload = command_payload(name, args, sites=sites)
    envelope = seal(payload, key)
    with conn.transaction():
        conn.execute("INSERT INTO commands_sent (command_id, actor, command, args, sites) "
                     "VALUES (%s, %s, %s, %s, %s)",
                     (payload["id"], actor, name, Jsonb(args), payload["sites"]))
        conn.execute("INSERT INTO operator_actions (actor, action, sites, detail) "
                     "VALUES (%s, 'command', %s, %s)",
                     (actor, len(payload["sites"]), Jsonb({"command": name, "id": payload["id"],
                                                           "args": args})))
    for site in payload["sites"]:
        link.publish(Topics(prefix, site).command, envelope)
    return str(payload["id"])


# -- reading ---------------------------------------------------------------------------------------

def list_commands(conn: psycopg.Connection[Any], *, site: str | None = None,
                  command_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Commands sent from here (newest first), each with every answer stored for it, plus
    answers to commands sent from elsewhere (``sent`` is then None). Plain JSON-able dicts."""
    rows = conn.execute(
        """SELECT r.site, r.leaf, r.command_id, r.command, r.ok, extract(epoch FROM r.at),
                  extract(epoch FROM r.received_at), r.doc,
                  s.actor, extract(epoch FROM s.at), s.command, s.args, s.sites
             FROM command_results r LEFT JOIN commands_sent s ON s.command_id = r.command_id
            WHERE (%(site)s::text IS NULL OR r.site = %(site)s)
              AND (%(id)s::text IS NULL OR r.command_id = %(id)s)
            ORDER BY r.received_at DESC, r.id DESC LIMIT %(limit)s""",
        {"site": site, "id": command_id, "limit": limit}).fetchall()
    out = [{"site": r[0], "leaf": r[1], "command_id": r[2], "command": r[3] or r[10],
            "ok": r[4], "at": _f(r[5]), "received_at": _f(r[6]), "answer": r[7],
            "sent": None if r[8] is None else {"actor": r[8], "at": _f(r[9]), "args": r[11],
                                               "sites": r[12]}}
           for r in rows]
    if command_id is not None or site is not None:
        # Sent but not (yet) answered: listed too, so "no answer" is visible.
        answered = {(o["site"], o["command_id"]) for o in out}
        sent = conn.execute(
            """SELECT command_id, actor, extract(epoch FROM at), command, args, sites
                 FROM commands_sent
                WHERE (%(id)s::text IS NULL OR command_id = %(id)s)
                  AND (%(site)s::text IS NULL OR %(site)s = ANY(sites))
                ORDER BY at DESC LIMIT %(limit)s""",
            {"site": site, "id": command_id, "limit": limit}).fetchall()
        for cid, actor, at, name, args, sites in sent:
            for s in sites:
                if (site is None or s == site) and (s, cid) not in answered:
                    out.append({"site": s, "leaf": "cmd/result", "command_id": cid,
                                "command": name, "ok": None, "at": None, "received_at": None,
                                "answer": None, "sent": {"actor": actor, "at": _f(at),
                                                         "args": args, "sites": sites}})
    return out


def _f(x: Any) -> float | None:
    return None if x is None else float(x)
