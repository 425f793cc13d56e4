"""The one log-once helper: a problem is one line when it starts, debug while it lasts, one line
when it ends; a new kind of problem (``change``) is said again."""

from __future__ import annotations

import logging

from agent.logs import OnceLog


def lines(caplog) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "test.once"]


def test_a_lasting_problem_is_one_warning_debug_repeats_and_one_recovery(caplog):
    caplog.set_level(logging.DEBUG, logger="test.once")
    once = OnceLog(logging.getLogger("test.once"))
    assert not once.ok("dev", "never broken")
    for attempt in range(3):
        once.problem("dev", "ups: no answer (attempt %d)", attempt)
    assert once.active("dev")
    assert once.ok("dev", "ups: answering again")
    assert not once.ok("dev", "ups: answering again"), "said once"
    once.problem("dev", "ups: no answer again")
    assert lines(caplog) == [
        ("WARNING", "ups: no answer (attempt 0)"),
        ("DEBUG", "ups: no answer (attempt 1)"),
        ("DEBUG", "ups: no answer (attempt 2)"),
        ("INFO", "ups: answering again"),
        ("WARNING", "ups: no answer again"),
    ]


def test_a_change_is_a_new_problem_and_keys_are_independent(caplog):
    caplog.set_level(logging.DEBUG, logger="test.once")
    once = OnceLog(logging.getLogger("test.once"))
    once.problem("a", "%s: timeout", "ups", change="timeout", again="%s: still timeout")
    once.problem("a", "%s: timeout", "ups", change="timeout", again="%s: still timeout")
    once.problem("a", "%s: refused", "ups", change="refused")
    once.problem("b", "%s: quirk", "router", level=logging.INFO)
    once.problem("b", "%s: quirk", "router", level=logging.INFO)
    assert lines(caplog) == [
        ("WARNING", "ups: timeout"),
        ("DEBUG", "ups: still timeout"),
        ("WARNING", "ups: refused"),
        ("INFO", "router: quirk"),
        ("DEBUG", "router: quirk"),
    ]
