"""``clinic-agent status``: is everything working? One screen, exit 1 when not.

    running agent -> its status document over the control socket (agent.control)
    config file   -> which config is in effect (local file or a pushed version)
    buffer file   -> what waits for the broker, read read-only

Active problems of the clinic (the agent's ``problems``: power, internet, each
``{"code", "device", "since", "args"}``, the code a condition of docs/events.md) come first, in
plain words (agent.events.render), then what else is wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.cli.buffer import NoAgentAnswer, summary_of
from agent.cli.common import (
    EXIT_OK,
    EXIT_PROBLEM,
    STATUS_MARK,
    Located,
    add_common,
    age,
    print_json,
    render_problem,
)
from agent.cli.common import term as make_term
from agent.control.server import ControlClient, ControlError, NoPermission
from agent.diagnose.doctor import device_hint
from agent.errors import StoreError
from agent.events.model import FLAPPING, RAISE, Active
from agent.events.render import active_lines
from agent.i18n import Messages, Text
from agent.status import DEVICE_STATUSES
from agent.term import Term, ago, size

if TYPE_CHECKING:
    from agent.store.outbox import BufferSummary


def register(p: argparse.ArgumentParser, t: Messages) -> None:
    add_common(p, t)
    p.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    term = make_term(args)
    t = term.t
    loc = Located(args.config)
    doc: dict[str, Any] = {"site": loc.cfg.site_id if loc.cfg else None,
                           "agent": {"running": False, "socket": loc.socket},
                           "broker": None, "buffer": None, "devices": [],
                           "config": _config_state(loc), "problems": [], "active_problems": []}
    problems: list[tuple[str, str | None]] = []   # (message, hint)
    snap = None
    live_summary: BufferSummary | None = None
    try:
        client = ControlClient.connect(loc.socket, timeout=15)
    except NoPermission:
        client = None
        problems.append((t("agent.no_permission", path=loc.socket), t("hint.no_permission")))
    if client is not None:
        with client:
            try:
                snap = client.request("status")
            except (ControlError, OSError) as exc:
                problems.append((t("status.agent_error", error=str(exc)), None))
            if snap is not None:
                # The agent holds its buffer file: it counts the set-aside readings for us.
                with contextlib.suppress(ControlError, NoAgentAnswer, OSError):
                    live_summary = summary_of(client.request("summary"))
    now = time.time()
    if snap is not None:
        active = active_problems(snap)
        doc["active_problems"] = active
        problems.extend((describe_active(p, t, now), None) for p in active)
        doc["site"] = snap.get("site_id") or doc["site"]
        doc["agent"].update(running=True, pid=snap.get("pid"),
                            uptime_s=round(now - snap["started_at"], 1)
                            if snap.get("started_at") else None)
        link = snap.get("broker") or {}
        doc["broker"] = {"connected": bool(link.get("connected")), "broker": link.get("broker", ""),
                         "since": link.get("since"), "last_error": link.get("last_error", ""),
                         "last_publish": link.get("last_ack"),
                         "last_publish_age_s": age(now, link.get("last_ack"))}
        if isinstance(link.get("last_error_code"), dict):
            doc["broker"]["last_error_code"] = link["last_error_code"]
        buf = snap.get("buffer") or {}
        doc["buffer"] = {"depth": buf.get("depth", 0),
                         "oldest_age_s": age(now, buf.get("oldest_ts")),
                         "dropped_total": buf.get("dropped_total", 0),
                         "file_bytes": buf.get("file_bytes", 0),
                         "held_in_memory": snap.get("held_in_memory", 0)}
        for name, d in snap.get("devices", {}).items():
            entry = {"name": name, "kind": d.get("kind", ""), "status": d["status"],
                     "reason": d.get("reason", ""), "last_ok": d.get("last_ok"),
                     "last_ok_age_s": age(now, d.get("last_ok")),
                     "last_poll_age_s": age(now, d.get("last_poll"))}
            if isinstance(d.get("reason_code"), dict):
                entry["reason_code"] = d["reason_code"]
            doc["devices"].append(entry)
        for name in snap.get("disabled", []):
            doc["devices"].append({"name": name, "kind": "", "status": "disabled", "reason": "",
                                   "last_ok": None, "last_ok_age_s": None, "last_poll_age_s": None})
        if not link.get("connected"):
            problems.append((t("status.problem.broker", error=broker_error(doc["broker"], t)),
                             t("hint.agent_disconnected")))
        for d in doc["devices"]:
            if d["status"] not in ("ok", "disabled", "unknown"):
                problems.append((t("status.problem.device", device=d["name"],
                                   status=status_word(d["status"], t), reason=reason_of(d, t)),
                                 t(device_hint(d["kind"], d["status"]))))
        if snap.get("held_in_memory"):
            problems.append((t("status.problem.store", n=snap["held_in_memory"]), None))
    elif client is None and not problems:
        problems.append((t("status.problem.not_running"), t("hint.agent_stopped")))
    if doc["buffer"] is None or snap is not None:
        try:
            from agent.store.outbox import summarize
            summary = live_summary if live_summary is not None else summarize(loc.buffer_path)
        except StoreError:
            summary = None
        if summary is not None:
            if doc["buffer"] is None:
                doc["buffer"] = {"depth": summary.depth,
                                 "oldest_age_s": age(now, summary.oldest_ts),
                                 "dropped_total": summary.dropped_total,
                                 "file_bytes": summary.file_bytes, "held_in_memory": 0}
            doc["buffer"]["rejected"] = summary.rejected
    if loc.problems:
        problems.append((t("status.problem.config", path=loc.config_path, n=len(loc.problems)),
                         t("hint.config")))
    doc["problems"] = [p for p, _ in problems]
    doc["ok"] = not problems
    if args.json:
        doc["config"]["problems"] = [str(p) for p in doc["config"]["problems"]]
        print_json(term, doc)
    else:
        _render_status(term, doc, problems)
    return EXIT_OK if not problems else EXIT_PROBLEM


# -- the words for what the agent reports ------------------------------------------------------

def status_word(status: str, t: Messages) -> str:
    """A device status (ok, timeout, refused, bad_answer, ...) in the reader's language."""
    return t(f"devstatus.{status}") if f"devstatus.{status}" in _KNOWN_STATUS else status


_KNOWN_STATUS = {f"devstatus.{s}" for s in DEVICE_STATUSES}


def reason_of(d: dict[str, Any], t: Messages) -> str:
    """A device's failure reason in the reader's language (the code when there is one)."""
    coded = Text.from_doc(d.get("reason_code"))
    return coded.render(t) if coded is not None else str(d.get("reason") or "")


def broker_error(link: dict[str, Any], t: Messages) -> str:
    coded = Text.from_doc(link.get("last_error_code"))
    return coded.render(t) if coded is not None else str(link.get("last_error") or "-")


def active_problems(snap: dict[str, Any]) -> list[dict[str, Any]]:
    """The clinic's active problems from the agent's status document (key ``problems``)."""
    raw = snap.get("problems")
    if not isinstance(raw, list):
        return []
    out = []
    for p in raw:
        if isinstance(p, dict) and isinstance(p.get("code"), str):
            out.append({"code": p["code"], "device": str(p.get("device") or ""),
                        "since": p.get("since")
                        if isinstance(p.get("since"), (int, float)) else None,
                        "args": p.get("args") if isinstance(p.get("args"), dict) else {},
                        "estimated": p.get("estimated") is True,
                        "flapping": p.get("flapping") is True})
    return out


def describe_active(p: dict[str, Any], t: Messages, now: float) -> str:
    """An active problem in plain words, as ``clinic-agent events`` says it (agent.events.render):
    "ups: no mains power, running on battery since 14:03 (5 min); about 42 min of battery left".
    A condition code the catalogue does not know is shown as it is."""
    active = Active(0, FLAPPING if p["flapping"] else RAISE, p["code"], p["device"] or "-",
                    p["since"] if p["since"] is not None else now, p["args"], p["estimated"])
    return active_lines([active], t, now=now)[0]


# -- screen ------------------------------------------------------------------------------------

def _config_state(loc: Located) -> dict[str, Any]:
    """Which configuration is in effect: the local file, or a pushed version (agent.remote)."""
    state: dict[str, Any] = {"file": loc.config_path, "valid": loc.cfg is not None,
                             "problems": loc.problems, "source": "local", "version": None,
                             "state": "local"}
    try:
        remote = json.loads((Path(loc.state_dir) / "remote_state.json").read_text())
    except (OSError, ValueError):
        return state
    if not isinstance(remote, dict):
        return state
    active = remote.get("active") if isinstance(remote.get("active"), dict) else None
    state["highest_version"] = remote.get("highest_version")
    if active:
        state.update(source="pushed", version=active.get("version"),
                     applied_at=active.get("applied_at"),
                     state="confirming" if remote.get("confirming") else "applied")
    if isinstance(remote.get("set_aside"), dict):
        state["set_aside_version"] = remote["set_aside"].get("version")
    return state


def _mark(term: Term, status: str) -> tuple[str, str]:
    return (term.t(f"mark.{status}"), STATUS_MARK.get(status, status))


def _render_status(term: Term, doc: dict[str, Any], problems: list[tuple[str, str | None]]) -> None:
    t = term.t
    term.print(term.paint(t("status.title", site=doc["site"] or "?"), "bold"))
    if doc["active_problems"]:
        # What the clinic is living through comes before how the agent is doing.
        now = time.time()
        for p in doc["active_problems"]:
            term.print("  " + term.paint(describe_active(p, t, now), "fail"))
        term.print()
    rows: list[list[Any]] = []
    agent = doc["agent"]
    if agent["running"]:
        rows.append([t("status.agent"), t("status.agent.running", pid=agent.get("pid"),
                                            up=ago(agent.get("uptime_s"), t)), _mark(term, "ok")])
    else:
        rows.append([t("status.agent"), t("status.agent.stopped"), _mark(term, "fail")])
    broker = doc["broker"]
    if broker is not None:
        if broker["connected"]:
            rows.append([t("status.broker"), t("status.broker.connected", broker=broker["broker"]),
                         _mark(term, "ok")])
        else:
            rows.append([t("status.broker"), t("status.broker.disconnected",
                                                error=broker_error(broker, t)),
                         _mark(term, "fail")])
        last = broker["last_publish_age_s"]
        rows.append([t("status.last_publish"),
                     t("time.ago", when=ago(last, t)) if last is not None else t("time.never"), ""])
    buf = doc["buffer"]
    if buf is not None:
        if buf["depth"]:
            text = t("status.buffer.value", n=buf["depth"], oldest=ago(buf["oldest_age_s"], t),
                     dropped=buf["dropped_total"], size=size(buf["file_bytes"]))
        else:
            text = t("status.buffer.empty", dropped=buf["dropped_total"],
                     size=size(buf["file_bytes"]))
        if buf.get("rejected"):
            text += "; " + t("status.buffer.rejected", n=buf["rejected"])
        rows.append([t("status.buffer"), text, ""])
    cfg = doc["config"]
    if cfg["source"] == "pushed":
        text = t("status.config.pushed", version=cfg["version"],
                 state=t(f"status.config.{cfg['state']}"))
    else:
        text = t("status.config.local", path=cfg["file"])
    rows.append([t("status.config"), text, _mark(term, "ok" if cfg["valid"] else "fail")])
    term.table(rows)
    if doc["devices"]:
        term.print(term.paint(t("status.devices"), "bold"))
        drows = []
        for d in doc["devices"]:
            style = "ok" if d["status"] == "ok" else "skip" if d["status"] == "disabled" else "fail"
            last = t("time.ago", when=ago(d["last_ok_age_s"], t)) \
                if d["last_ok_age_s"] is not None else t("time.never")
            drows.append([d["name"], d["kind"], (status_word(d["status"], t), style),
                          last if d["status"] != "disabled" else "-", reason_of(d, t)])
        term.table(drows, header=[t("col.device"), t("col.kind"), t("col.status"),
                                  t("col.last_good"), t("col.reason")])
    term.print()
    if not problems:
        term.print(term.paint(t("status.all_ok"), "ok"))
        return
    term.print(term.paint(t("status.problems", n=len(problems)), "fail"))
    for message, hint in problems:
        term.print(f"  - {message}")
        if hint:
            term.print(f"    {term.paint(t('hint.label'), 'warn')} {hint}")


__all__ = ["register", "cmd_status", "status_word", "reason_of", "render_problem"]
