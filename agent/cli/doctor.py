"""``clinic-agent doctor``: every link checked in order, printed as it is known (agent.diagnose)."""

from __future__ import annotations

import argparse

from agent.cli.common import (
    EXIT_OK,
    EXIT_PROBLEM,
    STATUS_MARK,
    Located,
    add_common,
    print_json,
    render_problem,
)
from agent.cli.common import term as make_term
from agent.diagnose.doctor import Check
from agent.i18n import Messages
from agent.term import Term, width


def register(p: argparse.ArgumentParser, t: Messages) -> None:
    add_common(p, t)
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    from agent.cli.poll import poll_directly
    from agent.diagnose import doctor
    term = make_term(args)
    t = term.t
    checks = []
    if not args.json:
        term.print(term.paint(t("doctor.title"), "bold"))
    loc = Located(args.config)
    for check in doctor.run(args.config, poll_direct=poll_directly,
                            fallback_socket=lambda: loc.socket):
        checks.append(check)
        if not args.json:
            _render_check(term, check)
    failed = [c for c in checks if c.status == "fail"]
    if args.json:
        print_json(term, {"ok": not failed, "checks": [
            {"step": c.step, "subject": c.subject, "status": c.status, "id": c.msg,
             "message": t(c.msg, **c.params),
             "details": [render_problem(d, t) for d in c.details],
             "hint_id": c.hint, "hint": t(c.hint, **c.params) if c.hint else None}
            for c in checks]})
    else:
        term.print()
        if failed:
            term.print(term.paint(t("doctor.failed", n=len(failed)), "fail"))
        else:
            term.print(term.paint(t("doctor.all_ok"), "ok"))
    return EXIT_PROBLEM if failed else EXIT_OK


def _render_check(term: Term, check: Check) -> None:
    t = term.t
    mark = f"[{t(f'mark.{check.status}')}]"
    label = t(f"step.{check.step}")
    # Padded as plain text, then painted: escape codes take no room on the screen.
    term.print(f"  {term.paint(mark, STATUS_MARK[check.status])}{' ' * max(10 - width(mark), 1)} "
               f"{label}{' ' * max(12 - width(label), 1)} {t(check.msg, **check.params)}")
    indent = " " * 16
    for detail in check.details:
        term.print(f"{indent}{render_problem(detail, t)}")
    if check.hint and check.status in ("fail", "warn"):
        term.print(f"{indent}{term.paint(t('hint.label'), 'warn')} {t(check.hint, **check.params)}")
