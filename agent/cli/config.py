"""``clinic-agent config ...``: the technician's view of remote management, so nobody on site is
ever locked out by a push (docs/remote-management.md).

    show-pushed   what is in effect, the newest push, the last event, and the pushed TOML
    diff          the pushed config against the local file
    use-local     go back to the local file now; the push is recorded as set aside

They read the state directory directly (they work while the agent is stopped, and the local file
does not even have to be valid for ``show-pushed`` and ``diff``); ``use-local`` then tells the
running agent with SIGHUP, the same signal as ``systemctl reload``.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from agent.cli.common import add_common, add_lang
from agent.cli.common import term as make_term
from agent.cli.defaults import DEFAULT_STATE_DIR, EXIT_CONFIG, EXIT_OK, EXIT_PROBLEM
from agent.config import load_config, read_document
from agent.errors import ConfigError
from agent.i18n import Messages
from agent.oserror import os_error
from agent.remote.push import LOCAL_ONLY_NAMES
from agent.remote.state import RemoteState, StateStore

STATUS_FILE = "status.json"      # written by the running agent; holds its pid


def register(cfg: argparse.ArgumentParser, t: Messages) -> None:
    """Add show-pushed, diff and use-local to ``clinic-agent config``."""
    add_lang(cfg, t)
    def show_help(args: argparse.Namespace) -> int:
        cfg.print_help()
        return EXIT_CONFIG

    cfg.set_defaults(func=show_help)
    sub = cfg.add_subparsers(metavar=t("help.meta.action"), title=t("help.title.actions"))

    p = sub.add_parser("show-pushed", help=t("help.config.show_pushed"),
                       description=t("help.config.show_pushed"))
    add_common(p, t)
    p.set_defaults(func=cmd_show_pushed)

    p = sub.add_parser("diff", help=t("help.config.diff"), description=t("help.config.diff"))
    add_common(p, t, json_output=False)
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("use-local", help=t("help.config.use_local"),
                       description=t("help.config.use_local"))
    add_common(p, t, json_output=False)
    p.set_defaults(func=cmd_use_local)


# -- show-pushed -----------------------------------------------------------------------------------

def cmd_show_pushed(args: argparse.Namespace) -> int:
    term = make_term(args)
    t = term.t
    store = StateStore(_state_dir(args.config))
    state = store.load()
    text = store.read_config((state.latest_push or {}).get("file"))
    if args.json:
        term.print(json.dumps({"state": state.to_dict(), "pushed_config": text}, indent=2))
        return EXIT_OK
    term.print(_in_effect(t, state, args.config))
    if state.latest_push is None:
        term.print(t("cfgcmd.none_pushed"))
        return EXIT_OK
    term.print(t("cfgcmd.newest", push=_describe(t, state.latest_push), fate=_fate(t, state)))
    if state.last_event:
        term.print(t("cfgcmd.last_event", event=_event(t, state.last_event)))
    if text is None:
        term.print(t("cfgcmd.text_gone"))
        return EXIT_OK
    term.print(t("cfgcmd.pushed_header", version=state.latest_push.get("version"),
                 file=str(store.state_dir / state.latest_push["file"])))
    term.print(text.rstrip("\n"))
    return EXIT_OK


def _in_effect(t: Messages, state: RemoteState, config_path: str) -> str:
    if state.active is None:
        return t("cfgcmd.in_effect_local", path=config_path)
    if state.confirming:
        return t("cfgcmd.in_effect_confirming", push=_describe(t, state.active))
    return t("cfgcmd.in_effect_pushed", push=_describe(t, state.active))


def _describe(t: Messages, meta: dict[str, Any]) -> str:
    return t("cfgcmd.describe", version=meta.get("version"), sha=str(meta.get("sha256"))[:16],
             key=meta.get("key_id"), when=_when(t, meta.get("applied_at")))


def _fate(t: Messages, state: RemoteState) -> str:
    latest = state.latest_push or {}
    if state.active is not None and state.active.get("version") == latest.get("version"):
        return t("cfgcmd.fate.in_effect")
    if state.set_aside and state.set_aside.get("version") == latest.get("version"):
        return t("cfgcmd.fate.set_aside", when=_when(t, state.set_aside.get("at")))
    event = state.last_event or {}
    if event.get("type") == "rolled_back" and event.get("version") == latest.get("version"):
        return t("cfgcmd.fate.rolled_back", when=_when(t, event.get("at")))
    if event.get("type") == "reverted" and event.get("reverted") == latest.get("version"):
        return t("cfgcmd.fate.reverted", when=_when(t, event.get("at")))
    return t("cfgcmd.fate.not_in_effect")


_EVENT_TYPES = ("applied", "rejected", "rolled_back", "reverted", "set_aside", "confirmed")


def _event(t: Messages, event: dict[str, Any]) -> str:
    kind = str(event.get("type"))
    words = t("cfgcmd.event", type=t(f"cfgcmd.event.{kind}") if kind in _EVENT_TYPES else kind,
              version=event.get("version"), when=_when(t, event.get("at")))
    if event.get("reason"):
        words += f": {event['reason']}"
    if event.get("detail"):
        words += f" - {event['detail']}"
    return words + "".join(f"\n  {p}" for p in event.get("problems", ()))


def _when(t: Messages, ts: Any) -> str:
    if not isinstance(ts, (int, float)):
        return t("cfgcmd.when_unknown")
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


# -- diff ------------------------------------------------------------------------------------------

def cmd_diff(args: argparse.Namespace) -> int:
    """Exit 0 when they are the same, 1 when they differ (like diff(1))."""
    term = make_term(args)
    t = term.t
    store = StateStore(_state_dir(args.config))
    state = store.load()
    pushed = store.read_config((state.latest_push or {}).get("file"))
    if pushed is None:
        term.print(t("cfgcmd.none_pushed"))
        return EXIT_OK
    assert state.latest_push is not None   # a pushed file is read only from the latest push
    try:
        local = Path(args.config).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        term.print(t("cfgcmd.cannot_read", path=args.config,
                     error=os_error(exc) if isinstance(exc, OSError)
                     else t("os.not_utf8")), err=True)
        return EXIT_CONFIG
    lines = list(difflib.unified_diff(local.splitlines(keepends=True),
                                      pushed.splitlines(keepends=True),
                                      fromfile=t("cfgcmd.diff_local", path=args.config),
                                      tofile=t("cfgcmd.diff_pushed",
                                               version=state.latest_push.get("version"))))
    if not lines:
        term.print(t("cfgcmd.same"))
        return EXIT_OK
    for line in lines:
        term.print(line.rstrip("\n"))
    term.print("# " + t("cfgcmd.local_only", names=", ".join(LOCAL_ONLY_NAMES)))
    return EXIT_PROBLEM


# -- use-local -------------------------------------------------------------------------------------

def cmd_use_local(args: argparse.Namespace) -> int:
    term = make_term(args)
    t = term.t
    cfg = load_config(args.config)   # a broken local file is refused here (exit 2, every problem)
    store = StateStore(cfg.state_dir)
    now = time.time()
    before = store.load()
    if before.active is None and not before.confirming:
        term.print(t("cfgcmd.already_local", path=args.config))
        return EXIT_OK
    version = before.active.get("version") if before.active \
        else (before.confirming or {}).get("version")

    def set_aside(s: RemoteState) -> None:
        s.set_aside = {"version": version, "at": now, "by": "clinic-agent config use-local"}
        s.active = s.confirming = None
        s.last_event = {"type": "set_aside", "version": version, "at": now,
                        "detail": f"the technician returned to the local file {args.config}"}
    store.update(set_aside)
    term.print(t("cfgcmd.set_aside", version=version, path=args.config))
    pid = _running_agent(cfg.state_dir)
    if pid is None:
        term.print(t("cfgcmd.not_running"))
        return EXIT_OK
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as exc:
        term.print(t("cfgcmd.cannot_signal", pid=pid, error=os_error(exc)), err=True)
        return EXIT_PROBLEM
    term.print(t("cfgcmd.signalled", pid=pid))
    return EXIT_OK


def _running_agent(state_dir: str) -> int | None:
    """The pid of the agent using ``state_dir``, if it runs (checked, so a stale pid that now
    belongs to another program never gets the signal)."""
    try:
        pid = int(json.loads((Path(state_dir) / STATUS_FILE).read_text())["pid"])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if any(b"agent" in part for part in cmdline) and b"run" in cmdline else None


# -- helpers ---------------------------------------------------------------------------------------

def _state_dir(config_path: str) -> str:
    """The state directory named by the local file, even when the file is otherwise invalid."""
    try:
        return load_config(config_path).state_dir
    except ConfigError:   # fall back to reading just this key
        pass
    try:
        doc = read_document(config_path)
        if isinstance(doc.get("state_dir"), str):
            return str(doc["state_dir"])
    except ConfigError:
        pass
    return DEFAULT_STATE_DIR
