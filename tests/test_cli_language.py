"""Every technician command in a terminal, in Spanish (LANG=es_MX.UTF-8, and with no locale at all
and the installer's ``language = "es"``): no English word of the catalogue left, no traceback,
and none either when piped into a reader that goes away (``| head``)."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.i18n import MESSAGES, Messages, language

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = [
    ["validate"], ["status"], ["doctor"], ["poll-once"], ["buffer"], ["tail"],
    ["config", "show-pushed"], ["config", "diff"], ["config", "use-local"],
    ["scan", "snmp", "--target", "127.0.0.1", "--port", "9", "--timeout", "0.2"],
    ["scan", "modbus", "--host", "127.0.0.1", "--tcp-port", "9", "--units", "1-2",
     "--timeout", "0.1"],
    ["--help"], ["status", "--help"], ["doctor", "--help"], ["validate", "--help"],
    ["poll-once", "--help"], ["tail", "--help"], ["buffer", "--help"], ["buffer", "export", "--help"],
    ["scan", "--help"], ["scan", "modbus", "--help"], ["scan", "snmp", "--help"],
    ["config", "--help"], ["config", "show-pushed", "--help"],
]


def english_only_words() -> set[str]:
    """Words the English catalogue uses and the Spanish one never does (e.g. "running")."""
    def words(lang: str) -> set[str]:
        found: set[str] = set()
        for entry in MESSAGES.values():
            found |= {w.lower() for w in re.findall(r"[A-Za-zÁÉÍÓÚáéíóúñÑü]{4,}", entry[lang])}
        return found
    return words("en") - words("es")


ENGLISH = english_only_words()


def clinic_config(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    config = tmp_path / "agent.toml"
    config.write_text(f'''language = "es"
site_id = "MCSSA001234"
state_dir = "{state}"

[mqtt]
host = "127.0.0.1"
port = 9
tls = false
connect_timeout_s = 1

[[devices]]
name = "pc"
kind = "host"
''', encoding="utf-8")
    return config


def run_in_terminal(args: list[str], env: dict[str, str], timeout: float = 60) -> str:
    """Run ``clinic-agent ARGS`` with a pseudo-terminal as its stdout and stderr; all it printed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "agent", *args], stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=slave, cwd=ROOT, env=env, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:   # the terminal closed: the command ended
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    os.close(master)
    return b"".join(chunks).decode("utf-8", errors="replace")


COMMAND_NAMES = set(__import__("agent.cli", fromlist=["COMMANDS"]).COMMANDS)


def english_left(output: str, config: Path) -> set[str]:
    text = output.replace(str(config.parent), "")
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
    # Metric names and config keys are identifiers, the same in every language (docs/mqtt.md).
    # So are command and option names (poll-once, --timeout, -h/--help).
    text = re.sub(r"[A-Za-z0-9_-]*[._-][A-Za-z0-9_.-]*", " ", text)
    words = {w.lower() for w in re.findall(r"[A-Za-zÁÉÍÓÚáéíóúñÑü]{4,}", text)} & ENGLISH
    return words - COMMAND_NAMES   # command names are identifiers too (clinic-agent events)


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE", "NO_COLOR")}
    env.update(PYTHONPATH=str(ROOT), **extra)
    return env


@pytest.mark.parametrize("locale", ["es_MX.UTF-8", None], ids=["LANG=es_MX", "no-locale"])
@pytest.mark.parametrize("args", COMMANDS,
                         ids=[" ".join(a[:2]) + (" --help" if "--help" in a[2:] else "")
                              for a in COMMANDS])
def test_every_command_speaks_spanish_in_a_terminal(args, locale, tmp_path):
    config = clinic_config(tmp_path)
    env = base_env(**({"LANG": locale} if locale else {}))
    # On a clinic PC the installed /etc/clinic-agent/agent.toml says language = "es"; here the
    # test's file stands in for it (--help reads it too: it is given after --help, never used).
    full = ["validate", str(config)] if args == ["validate"] else [*args, "-c", str(config)]
    out = run_in_terminal(full, env)
    assert "Traceback" not in out, out
    assert out.strip(), "it said something"
    assert not english_left(out, config), (english_left(out, config), out)


@pytest.mark.parametrize("args", [["--help"], ["doctor"], ["status"], ["validate"], ["buffer"],
                                  ["scan", "modbus", "--help"], ["config", "show-pushed"]],
                         ids=lambda a: " ".join(a))
def test_a_closed_pipe_never_prints_a_traceback(args, tmp_path):
    config = clinic_config(tmp_path)
    full = ["validate", str(config)] if args == ["validate"] else \
        [*args, *([] if "--help" in args else ["-c", str(config)])]
    # `clinic-agent ... | head -c 1`: the reader leaves after the first byte.
    shell = (f"{sys.executable} -m agent " + " ".join(f"'{a}'" for a in full)
             + " 2>&1 | (head -c 1 >/dev/null; sleep 1)")
    r = subprocess.run(["bash", "-c", shell + "; echo \"rc=${PIPESTATUS[0]}\" >&2"],
                       capture_output=True, text=True, cwd=ROOT, env=base_env(LANG="es_MX.UTF-8"),
                       timeout=90)
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr
    assert "Exception ignored" not in r.stderr, r.stderr


def test_the_language_setting():
    assert language({}, configured="es") == "es", "no locale: the installer's language key decides"
    assert language({"LANG": "C.UTF-8"}, configured="es") == "es"
    assert language({"LANG": "en_US.UTF-8"}, configured="es") == "en", "LANG can choose English"
    assert language({"LANG": "es_MX.UTF-8"}, configured="en") == "es"
    assert language({"LANG": "es_MX.UTF-8"}, option="en") == "en", "--lang wins"
    assert language({}) == "en"
    assert Messages("es")("devstatus.refused") == "rechazado"


def test_a_config_key_chooses_english_and_lang_option_spanish(tmp_path):
    config = clinic_config(tmp_path)
    config.write_text(config.read_text().replace('language = "es"', 'language = "en"'))
    out = run_in_terminal(["status", "-c", str(config)], base_env())
    assert "not running" in out
    out = run_in_terminal(["status", "-c", str(config), "--lang", "es"], base_env())
    assert "no está en marcha" in out
