"""Driving ``clinic-agent`` as a technician would: as a process, in a language, or in tmux."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from helpers import require_binary, wait_until

ROOT = Path(__file__).resolve().parents[1]
ENGLISH = "C"
SPANISH = "es_MX.UTF-8"


def cli_env(lang: str = ENGLISH, **extra: str) -> dict[str, str]:
    """The environment of a technician's shell in ``lang`` (nothing else deciding the language)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE", "NO_COLOR")}
    env.update(LANG=lang, PYTHONPATH=str(ROOT), **extra)
    return env


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)

    def __repr__(self) -> str:   # shown when an assertion fails
        return f"exit {self.code}\n--- stdout ---\n{self.out}\n--- stderr ---\n{self.err}"


def run_cli(*args: str, lang: str = ENGLISH, timeout: float = 60, **extra_env: str) -> Result:
    """``clinic-agent ARGS`` in a fresh process; its exit code and both outputs."""
    proc = subprocess.run([sys.executable, "-m", "agent", *map(str, args)], capture_output=True,
                          text=True, env=cli_env(lang, **extra_env), cwd=ROOT, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def agent_config(state_dir: Path, broker_port: int, devices_toml: str = "", *,
                 host_interval: float = 0.5, extra: str = "") -> str:
    """A whole agent config: the PC itself plus ``devices_toml``, publishing to ``broker_port``."""
    return f"""
site_id = "TEST001"
state_dir = "{state_dir}"
status_interval_s = 0.5
{extra}
[mqtt]
host = "127.0.0.1"
port = {broker_port}
tls = false
keepalive_s = 5
connect_timeout_s = 2
reconnect_max_s = 1

[[devices]]
name = "pc"
kind = "host"
interval_s = {host_interval}

{devices_toml}
"""


def wait_for_agent(config: Path, *, timeout: float = 20) -> dict:
    """Wait until the agent answers ``status`` with every device polled at least once."""
    def ready():
        r = run_cli("status", "-c", config, "--json")
        if not r.out.strip():
            return None
        doc = r.json
        polled = doc["agent"]["running"] and doc["devices"] and \
            all(d["last_poll_age_s"] is not None for d in doc["devices"])
        return doc if polled else None
    return wait_until(ready, timeout=timeout, interval=0.2, what="the agent to answer status")


class Tmux:
    """A private tmux server: one window per command, read back with capture-pane."""

    def __init__(self, workdir: Path) -> None:
        self.binary = require_binary("tmux")
        self.socket = workdir / f"tmux-{uuid.uuid4().hex[:8]}"
        self.windows: list[str] = []

    def _tmux(self, *args: str) -> str:
        return subprocess.run([self.binary, "-S", str(self.socket), *args], capture_output=True,
                              text=True, check=True, timeout=10).stdout

    def start(self, args: list[str], *, lang: str = ENGLISH, width: int = 160, **env: str) -> str:
        """Run ``clinic-agent ARGS`` in a new terminal; "EXIT=<code>" is printed when it ends."""
        name = f"w{len(self.windows)}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in cli_env(lang, **env).items()
                           if k in ("LANG", "PYTHONPATH", *env))
        command = (f"cd {shlex.quote(str(ROOT))} && env -u LC_ALL -u LC_MESSAGES -u NO_COLOR "
                   f"{exports} {shlex.quote(sys.executable)} -m agent "
                   + " ".join(shlex.quote(str(a)) for a in args)
                   + "; echo EXIT=$?; sleep 600")
        if not self.windows:
            self._tmux("new-session", "-d", "-s", "t", "-n", name, "-x", str(width), "-y", "50",
                       "bash", "-c", command)
        else:
            self._tmux("new-window", "-d", "-t", "t", "-n", name, "bash", "-c", command)
        self.windows.append(name)
        return name

    def screen(self, window: str, *, colours: bool = False) -> str:
        return self._tmux("capture-pane", "-p", *(["-e"] if colours else []), "-t", f"t:{window}")

    def keys(self, window: str, *keys: str) -> None:
        self._tmux("send-keys", "-t", f"t:{window}", *keys)

    def wait_for(self, window: str, text: str, *, timeout: float = 20, colours: bool = False) -> str:
        return wait_until(lambda: (s := self.screen(window, colours=colours)) and text in s and s,
                          timeout=timeout, interval=0.05,
                          what=f"{text!r} on the screen of {window}")

    def close(self) -> None:
        subprocess.run([self.binary, "-S", str(self.socket), "kill-server"], capture_output=True)
