"""``clinic-agent tail [DEVICE...]``: the readings live, as the running agent polls them."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from agent.cli.common import (
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_PROBLEM,
    Located,
    add_common,
    connect,
    fmt_value,
)
from agent.cli.common import term as make_term
from agent.control.server import ControlError
from agent.i18n import Messages, Text
from agent.readings import REASON_CODE_METRIC, decode_reason_code
from agent.term import Term


def register(p: argparse.ArgumentParser, t: Messages) -> None:
    add_common(p, t)
    p.add_argument("devices", nargs="*", metavar=t("help.meta.device"), help=t("help.tail.devices"))
    p.set_defaults(func=cmd_tail)


def cmd_tail(args: argparse.Namespace) -> int:
    term = make_term(args)
    t = term.t
    loc = Located(args.config)
    client, code = connect(term, loc)
    if code is not None:
        return code
    if client is None:
        term.print(t("tail.not_running"), err=True)
        term.print("  " + t("hint.agent_stopped"), err=True)
        return EXIT_PROBLEM
    with client:
        known = list((client.request("status").get("devices") or {}).keys())
        unknown = [d for d in args.devices if d not in known]
        if unknown:
            term.print(t("poll.no_device", device=", ".join(unknown), names=", ".join(known)),
                       err=True)
            return EXIT_CONFIG
        width = max((len(n) for n in (args.devices or known)), default=6)
        if not args.json:
            term.print(term.paint(t("tail.header"), "dim"), err=True)
        try:
            for msg in client.stream("tail", devices=args.devices or None):
                r = msg.get("reading")
                if r is None:
                    continue
                if args.json:
                    term.print(json.dumps(r, ensure_ascii=False, default=str))
                else:
                    term.print(_tail_line(term, r, width))
        except KeyboardInterrupt:
            if not args.json:
                term.print("", err=True)
            return EXIT_OK
        except (ControlError, OSError):
            pass
    term.print(t("tail.agent_stopped"), err=True)
    return EXIT_PROBLEM


def _tail_line(term: Term, r: dict[str, Any], width: int) -> str:
    from agent.cli.status import status_word
    when = datetime.fromtimestamp(r["ts"]).strftime("%H:%M:%S")
    value = f"{fmt_value(r['value'], term)} {r['unit']}".rstrip()
    if r["metric"] == "poll.status":
        value = term.paint(status_word(str(r["value"]), term.t),
                           "ok" if r["value"] == "ok" else "fail")
    elif r["metric"] == "poll.reason":
        value = term.paint(value, "warn")
    elif r["metric"] == REASON_CODE_METRIC:
        # The same reason, in the reader's language (poll.reason above is in English).
        coded = Text.from_doc(decode_reason_code(r["value"]))
        if coded is not None:
            value = term.paint(coded.render(term.t), "warn")
    return f"{term.paint(when, 'dim')}  {r['device']:<{width}}  {r['metric']:<28}  {value}"
