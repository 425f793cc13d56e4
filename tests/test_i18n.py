"""One catalogue of messages: every one in both languages with the same placeholders, every id the
code uses present, and the language chosen from the locale as a technician's shell sets it."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from agent.i18n import LANGUAGES, MESSAGES, Messages, language

AGENT = Path(__file__).resolve().parents[1] / "agent"


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("msg_id", sorted(MESSAGES))
def test_every_message_is_in_both_languages_with_the_same_placeholders(msg_id):
    entry = MESSAGES[msg_id]
    assert set(entry) == set(LANGUAGES)
    assert all(entry[lang].strip() for lang in LANGUAGES)
    assert placeholders(entry["en"]) == placeholders(entry["es"])


def test_every_message_id_the_cli_uses_is_in_the_catalogue():
    used: set[str] = set()
    for name in ("cli/common.py", "cli/status.py", "cli/poll.py", "cli/tail.py", "cli/buffer.py",
                 "cli/doctor.py", "cli/scan.py", "diagnose/doctor.py", "term.py"):
        text = (AGENT / name).read_text()
        used |= set(re.findall(r'"((?:doctor|hint|status|scan|buffer|export|poll|tail|agent|'
                               r'config|time|col|value)\.[a-z0-9_.]+)"', text))
    used = {u for u in used if not u.endswith(".sqlite") and u != "poll.status" and u != "poll.reason"}
    missing = sorted(u for u in used if u not in MESSAGES)
    assert not missing
    # Ids built at run time: each of their variants exists.
    for prefix, variants in {"mark": ("ok", "warn", "fail", "skip"),
                             "step": ("config", "agent", "clock", "dns", "tcp", "tls", "cert",
                                      "mqtt", "device"),
                             "poll.via": ("agent", "direct"),
                             "status.config": ("applied", "confirming"),
                             "table": ("holding", "input")}.items():
        for v in variants:
            assert f"{prefix}.{v}" in MESSAGES


def test_device_hints_exist_for_each_kind_and_failure():
    from agent.diagnose.doctor import device_hint
    for kind in ("snmp", "modbus"):
        for status in ("timeout", "refused", "bad_answer"):
            assert device_hint(kind, status) == f"hint.device.{kind}.{status}"
    assert device_hint("host", "error") == "hint.device.error"
    assert device_hint("host", "timeout") == "hint.device.timeout"


@pytest.mark.parametrize("env, expected", [
    ({"LANG": "es_MX.UTF-8"}, "es"),
    ({"LANG": "es"}, "es"),
    ({"LANG": "C"}, "en"),
    ({"LANG": "C.UTF-8"}, "en"),
    ({}, "en"),
    ({"LANG": "es_MX.UTF-8", "LC_ALL": "C"}, "en"),
    ({"LANG": "C", "LC_MESSAGES": "es_ES.UTF-8"}, "es"),
    ({"LANG": "C", "LC_ALL": "es_AR.UTF-8", "LC_MESSAGES": "C"}, "es"),
    ({"LANG": "es_MX.UTF-8", "LC_ALL": ""}, "es"),
])
def test_the_language_follows_the_locale(env, expected):
    assert language(env) == expected


def test_a_message_is_filled_in_and_an_unknown_id_shows_itself():
    assert Messages("es")("time.ago", when="3 s") == "hace 3 s"
    assert Messages("en")("time.ago", when="3 s") == "3 s ago"
    assert Messages("fr")("time.never") == "never"
    assert Messages("en")("no.such.id") == "no.such.id"
