"""``clinic-agent events [--since 2h|ISO] [--json]``: the problems on now, then recent events.

Asked of the running agent over its control socket (it holds the buffer file exclusively), or
read from the file, read-only, when it is stopped (agent.events.store.read_recent): it works
with the link down, since the events are decided and kept at the clinic. Exit 1 when a problem
is active, like ``status``.
"""

from __future__ import annotations

import argparse
import re
import time
from typing import Any

from agent.cli.buffer import _parse_when, unreadable, with_agent
from agent.cli.common import EXIT_CONFIG, EXIT_OK, EXIT_PROBLEM, Located, add_common, print_json
from agent.cli.common import term as make_term
from agent.control.server import ControlClient
from agent.errors import StoreError
from agent.events import render, store, wire
from agent.events.model import Active, Event
from agent.i18n import Messages

DEFAULT_SINCE = "24h"
_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def register(p: argparse.ArgumentParser, t: Messages) -> None:
    add_common(p, t)
    p.add_argument("--since", default=DEFAULT_SINCE, metavar="WHEN", help=t("help.events.since"))
    p.set_defaults(func=cmd_events)


def parse_since(text: str, now: float) -> float:
    """``2h`` -> two hours before ``now``; an ISO 8601 date or time as it says."""
    m = _RELATIVE.fullmatch(text.strip().lower())
    if m:
        return now - float(m[1]) * _UNIT_S[m[2]]
    return _parse_when(text)


def cmd_events(args: argparse.Namespace) -> int:
    term = make_term(args)
    t = term.t
    now = time.time()
    try:
        since = parse_since(args.since, now)
    except ValueError:
        term.print(t("events.bad_since", text=args.since), err=True)
        return EXIT_CONFIG
    loc = Located(args.config)
    def ask(client: ControlClient) -> tuple[list[Event], list[Active]]:
        doc = client.request("events", since=since)
        return ([Event.from_dict(e) for e in doc["events"]],
                [Active(**a) for a in doc["active"]])
    try:
        (events, active), _ = with_agent(loc, ask,
                                         lambda: store.read_recent(loc.buffer_path, since))
    except StoreError as exc:
        return unreadable(term, loc, exc)
    if args.json:
        doc: dict[str, Any] = {
            "since": since,
            "active": [{"id": a.id, "kind": a.kind, "cond": a.cond, "dev": a.dev,
                        "start": a.start, "values": dict(a.values),
                        "text": line} for a, line in
                       zip(active, render.active_lines(active, t, now=now), strict=False)],
            "events": [wire.event_doc(e) for e in events]}
        print_json(term, doc)
        return EXIT_PROBLEM if active else EXIT_OK
    if active:
        term.print(term.paint(t("events.active_title"), "fail"))
        for line in render.active_lines(active, t, now=now):
            term.print(f"  {line}")
    else:
        term.print(term.paint(t("events.none_active"), "ok"))
    term.print()
    shown = time.strftime("%Y-%m-%d %H:%M", time.localtime(since))
    if not events:
        term.print(t("events.none", since=shown))
    else:
        term.print(term.paint(t("events.title", since=shown), "bold"))
        term.table([render.event_row(e, t) for e in events],
                   header=[t("col.time"), t("col.device"), t("col.event"), t("col.duration")])
    return EXIT_PROBLEM if active else EXIT_OK
