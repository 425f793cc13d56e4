"""What the technician's commands share: where things are, the running agent, output helpers.

The CLI is the edge: the environment is read in ``agent.cli.main`` and nowhere below; each
command gets its language in ``args.lang``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from agent.cli.defaults import (  # the EXIT_* codes are re-exported for the command modules
    DEFAULT_CONFIG as DEFAULT_CONFIG,
)
from agent.cli.defaults import (
    DEFAULT_STATE_DIR,
)
from agent.cli.defaults import (
    EXIT_CONFIG as EXIT_CONFIG,
)
from agent.cli.defaults import (
    EXIT_OK as EXIT_OK,
)
from agent.cli.defaults import (
    EXIT_PROBLEM as EXIT_PROBLEM,
)
from agent.config import AgentConfig, load_config, read_document
from agent.control.server import SOCKET_NAME, ControlClient, NoPermission, socket_path
from agent.errors import ConfigError
from agent.i18n import Messages
from agent.term import Term

STATUS_MARK = {"ok": "ok", "warn": "warn", "fail": "fail", "skip": "skip"}


def add_common(p: argparse.ArgumentParser, t: Messages, *, config: bool = True,
               json_output: bool = True) -> argparse.ArgumentParser:
    """-c FILE, --json and --lang, as every technician command takes them."""
    if config:
        p.add_argument("-c", "--config", default=DEFAULT_CONFIG, metavar="FILE",
                       help=t("help.opt.config", default=DEFAULT_CONFIG))
    if json_output:
        p.add_argument("--json", action="store_true", help=t("help.opt.json"))
    add_lang(p, t)
    return p


def add_lang(p: argparse.ArgumentParser, t: Messages) -> None:
    # Read before parsing (agent.cli.choose_language); declared so that it is accepted anywhere.
    p.add_argument("--lang", choices=("es", "en"), default=argparse.SUPPRESS,
                   help=t("help.opt.lang"))


def term(args: argparse.Namespace) -> Term:
    """The terminal of this command, in its language."""
    env = os.environ
    probe = Term.from_env(env, sys.stdout, sys.stderr)
    return Term(lang=getattr(args, "lang_chosen", "en"), out=sys.stdout, err=sys.stderr,
                colour=probe.colour, progress=probe.show_progress)


def print_json(term: Term, doc: Any) -> None:
    term.print(json.dumps(doc, indent=2, ensure_ascii=False, default=str))


def render_problem(problem: object, t: Messages) -> str:
    """A config problem in the reader's language (a plain string as it is)."""
    render = getattr(problem, "render", None)
    return render(t) if callable(render) else str(problem)


def print_config_error(term: Term, exc: ConfigError) -> None:
    """``FILE: N problem(s):`` and each problem, on stderr."""
    term.print(term.t("config.invalid", path=exc.source, n=len(exc.details)), err=True)
    for problem in exc.details:
        term.print(f"  {render_problem(problem, term.t)}", err=True)


class Located:
    """Where things are, from the config file; from its raw TOML when it does not validate."""

    def __init__(self, config_path: str) -> None:
        self.config_path = config_path
        self.cfg: AgentConfig | None = None
        self.problems: list[object] = []
        try:
            self.cfg = load_config(config_path)
        except ConfigError as exc:
            self.problems = exc.details
        raw = self._raw() if self.cfg is None else {}
        cfg = self.cfg
        self.state_dir = cfg.state_dir if cfg else str(raw.get("state_dir") or DEFAULT_STATE_DIR)
        self.socket = socket_path(cfg) if cfg else \
            str(raw.get("control_socket") or os.path.join(self.state_dir, SOCKET_NAME))
        buf = b if isinstance(b := raw.get("buffer"), dict) else {}
        self.buffer_path = cfg.buffer.path if cfg else \
            str(buf.get("path") or os.path.join(self.state_dir, "buffer.sqlite"))

    def _raw(self) -> dict[str, Any]:
        try:
            data = read_document(self.config_path)
        except ConfigError:
            return {}
        return {k: v for k, v in data.items() if isinstance(v, (str, dict))}


def connect(term: Term, loc: Located, *,
            timeout: float = 15) -> tuple[ControlClient | None, int | None]:
    """The running agent, or None; an exit code when it is there but out of reach."""
    try:
        return ControlClient.connect(loc.socket, timeout=timeout), None
    except NoPermission:
        term.print(term.t("agent.no_permission", path=loc.socket), err=True)
        term.print("  " + term.t("hint.no_permission"), err=True)
        return None, EXIT_PROBLEM


def config_or_exit(term: Term, loc: Located) -> AgentConfig | None:
    """The valid config, or None after printing its problems."""
    if loc.cfg is None:
        term.print(term.t("config.invalid", path=loc.config_path, n=len(loc.problems)), err=True)
        for problem in loc.problems:
            term.print(f"  {render_problem(problem, term.t)}", err=True)
    return loc.cfg


def age(now: float, ts: float | None) -> float | None:
    return None if ts is None else round(now - ts, 1)


def fmt_value(v: Any, term: Term) -> str:
    if isinstance(v, bool):
        return term.t("value.yes") if v else term.t("value.no")
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)
