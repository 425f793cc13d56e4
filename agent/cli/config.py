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
import sys
import time
from pathlib import Path
from typing import Any

from agent.config import load_config, parse_toml_text
from agent.errors import ConfigError
from agent.remote.push import LOCAL_ONLY_NAMES
from agent.remote.state import RemoteState, StateStore

EXIT_OK, EXIT_PROBLEM, EXIT_CONFIG = 0, 1, 2
STATUS_FILE = "status.json"      # written by the running agent; holds its pid


def register(subparsers: argparse._SubParsersAction) -> None:
    from agent.cli import DEFAULT_CONFIG   # here, not at the top: agent.cli imports this module

    cfg = subparsers.add_parser("config", help="pushed config: show it, compare it with the local "
                                "file, go back to the local file")
    cfg.set_defaults(func=lambda args: (cfg.print_help(), EXIT_CONFIG)[1])
    sub = cfg.add_subparsers(metavar="ACTION")

    p = sub.add_parser("show-pushed", help="the config pushed to this site and what became of it")
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="the local config file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_show_pushed)

    p = sub.add_parser("diff", help="differences between the pushed config and the local file")
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="the local config file")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("use-local", help="set the pushed config aside and run the local file")
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="the local config file")
    p.set_defaults(func=cmd_use_local)


# -- show-pushed -----------------------------------------------------------------------------------

def cmd_show_pushed(args: argparse.Namespace) -> int:
    store = StateStore(_state_dir(args.config))
    state = store.load()
    text = store.read_config((state.latest_push or {}).get("file"))
    if args.json:
        print(json.dumps({"state": state.to_dict(), "pushed_config": text}, indent=2))
        return EXIT_OK
    print(_in_effect(state, args.config))
    if state.latest_push is None:
        print("No config has been pushed to this site.")
        return EXIT_OK
    print(f"Newest push: {_describe(state.latest_push)}; {_fate(state)}")
    if state.last_event:
        print(f"Last event: {_event(state.last_event)}")
    if text is None:
        print("(the pushed text is no longer in the state directory)")
        return EXIT_OK
    print(f"--- pushed config v{state.latest_push.get('version')} "
          f"({store.state_dir / state.latest_push['file']}) ---")
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


def _in_effect(state: RemoteState, config_path: str) -> str:
    if state.active is None:
        return f"In effect: the local file {config_path}"
    suffix = " (waiting to reach the broker)" if state.confirming else ""
    return f"In effect: pushed config {_describe(state.active)}{suffix}"


def _describe(meta: dict[str, Any]) -> str:
    return (f"v{meta.get('version')}, sha256 {str(meta.get('sha256'))[:16]}, signed by key "
            f"{meta.get('key_id')}, applied {_when(meta.get('applied_at'))}")


def _fate(state: RemoteState) -> str:
    latest = state.latest_push or {}
    if state.active is not None and state.active.get("version") == latest.get("version"):
        return "in effect"
    if state.set_aside and state.set_aside.get("version") == latest.get("version"):
        return f"set aside on site {_when(state.set_aside.get('at'))}"
    event = state.last_event or {}
    if event.get("type") == "rolled_back" and event.get("version") == latest.get("version"):
        return f"rolled back {_when(event.get('at'))}"
    return "not in effect"


def _event(event: dict[str, Any]) -> str:
    words = f"{event.get('type')} v{event.get('version')} {_when(event.get('at'))}"
    if event.get("reason"):
        words += f": {event['reason']}"
    if event.get("detail"):
        words += f" - {event['detail']}"
    return words + "".join(f"\n  {p}" for p in event.get("problems", ()))


def _when(ts: Any) -> str:
    if not isinstance(ts, (int, float)):
        return "at an unknown time"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


# -- diff ------------------------------------------------------------------------------------------

def cmd_diff(args: argparse.Namespace) -> int:
    """Exit 0 when they are the same, 1 when they differ (like diff(1))."""
    store = StateStore(_state_dir(args.config))
    state = store.load()
    pushed = store.read_config((state.latest_push or {}).get("file"))
    if pushed is None:
        print("No config has been pushed to this site.")
        return EXIT_OK
    try:
        local = Path(args.config).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    lines = list(difflib.unified_diff(local.splitlines(keepends=True), pushed.splitlines(keepends=True),
                                      fromfile=f"{args.config} (local)",
                                      tofile=f"pushed v{state.latest_push.get('version')}"))
    if not lines:
        print("The pushed config and the local file are the same.")
        return EXIT_OK
    sys.stdout.writelines(line if line.endswith("\n") else line + "\n" for line in lines)
    print(f"# {', '.join(LOCAL_ONLY_NAMES)}: always taken from the local file, whatever a push says.")
    return EXIT_PROBLEM


# -- use-local -------------------------------------------------------------------------------------

def cmd_use_local(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)   # a broken local file is refused here (exit 2, every problem)
    store = StateStore(cfg.state_dir)
    now = time.time()
    before = store.load()
    if before.active is None and not before.confirming:
        print(f"Already using the local file {args.config}.")
        return EXIT_OK
    version = before.active.get("version") if before.active else before.confirming.get("version")

    def set_aside(s: RemoteState) -> None:
        s.set_aside = {"version": version, "at": now, "by": "clinic-agent config use-local"}
        s.active = s.confirming = None
        s.last_event = {"type": "set_aside", "version": version, "at": now,
                        "detail": f"the technician returned to the local file {args.config}"}
    store.update(set_aside)
    print(f"Pushed config v{version} set aside; the local file {args.config} is the config now.")
    pid = _running_agent(cfg.state_dir)
    if pid is None:
        print("The agent is not running; it will use the local file when it starts.")
        return EXIT_OK
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as exc:
        print(f"Could not tell the agent (pid {pid}): {exc.strerror}; run "
              "`systemctl reload clinic-agent`.", file=sys.stderr)
        return EXIT_PROBLEM
    print(f"Told the running agent (pid {pid}) to switch now.")
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
        doc = parse_toml_text(Path(config_path).read_text(encoding="utf-8"), source=config_path)
        if isinstance(doc.get("state_dir"), str):
            return doc["state_dir"]
    except (OSError, UnicodeDecodeError, ConfigError):
        pass
    return "/var/lib/clinic-agent"
