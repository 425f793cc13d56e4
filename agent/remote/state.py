"""What remote management keeps on disk, in the site's state directory.

    STATE_DIR/remote_state.json              the one commit point, replaced atomically: the newest
                                             version applied (replay protection), the push in
                                             effect, the last-known-good, a confirm in progress,
                                             a push set aside, the last event
    STATE_DIR/remote/v<N>.toml               text of pushed config N, kept while referenced
    STATE_DIR/remote/last-known-good.toml    the config that ran before the latest push
    STATE_DIR/remote/.lock                   serialises the agent and ``clinic-agent config ...``

Config texts are written (fsync, rename, fsync of the directory) before the state that refers to
them, so a power cut leaves either the old state or the new one, each with its files.
``clinic-agent status`` and ``config show-pushed`` read the same file.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STATE_FILE = "remote_state.json"
CONFIG_DIR = "remote"
LKG_FILE = f"{CONFIG_DIR}/last-known-good.toml"
HANDLED_KEEP = 32          # envelope hashes remembered, so re-deliveries stay no-ops
COMMANDS_KEEP = 1000       # command ids remembered until they expire (at most an hour each)

Doc = dict[str, Any]       # a JSON object, as kept in the state file


@dataclass
class RemoteState:
    highest_version: int = 0
    active: Doc | None = None            # the push in effect (meta + applied_at + file);
                                         # None: the local file
    last_known_good: Doc | None = None   # what ran before the latest push
                                         # ({"source": "local"|"push", ...})
    latest_push: Doc | None = None       # the newest push accepted, also once rolled back or
                                         # set aside
    confirming: Doc | None = None        # {"version", "since", "timeout_s"} while
                                         # commit-confirmed runs
    set_aside: Doc | None = None         # {"version", "at", "by"}: the technician chose the
                                         # local file
    last_event: Doc | None = None        # the last thing that happened, as published
    handled: list[str] = field(default_factory=list)
    # Commands carried out, id -> not_after: kept across restarts, so a captured command cannot
    # be replayed to a restarted agent before it expires.
    commands_seen: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: Any) -> RemoteState:
        if not isinstance(doc, dict):
            return cls()
        known = {f.name for f in fields(cls)}
        state = cls(**{k: v for k, v in doc.items() if k in known})
        if not isinstance(state.highest_version, int):
            state.highest_version = 0
        if not isinstance(state.handled, list):
            state.handled = []
        seen = state.commands_seen if isinstance(state.commands_seen, dict) else {}
        state.commands_seen = {k: float(v) for k, v in seen.items()
                               if isinstance(k, str) and isinstance(v, (int, float))
                               and not isinstance(v, bool)}
        return state

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def remember(self, envelope_sha256: str) -> None:
        self.handled = (self.handled + [envelope_sha256])[-HANDLED_KEEP:]

    def remember_command(self, command_id: str, not_after: float, now: float) -> None:
        """Add a command carried out; forget the expired ones (a replay of those is refused as
        expired anyway)."""
        seen = {k: t for k, t in self.commands_seen.items() if t >= now}
        seen[command_id] = not_after
        self.commands_seen = dict(sorted(seen.items(), key=lambda kv: kv[1])[-COMMANDS_KEEP:])


class StateStore:
    """Reads and atomically rewrites the remote state and config texts of one state directory."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / STATE_FILE
        self.config_dir = self.state_dir / CONFIG_DIR

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        with open(self.config_dir / ".lock", "a") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def load(self) -> RemoteState:
        try:
            return RemoteState.from_dict(json.loads(self.path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return RemoteState()
        except (OSError, ValueError) as exc:
            # Losing it would reopen replays of old versions: keep the bad file for a look.
            aside = self.path.with_name(f"{STATE_FILE}.bad-{int(time.time())}")
            log.error("%s is unreadable (%s); moved to %s, starting from the local config",
                      self.path, exc, aside.name)
            try:
                os.replace(self.path, aside)
            except OSError:
                pass
            return RemoteState()

    def save(self, state: RemoteState) -> None:
        write_atomic(self.path, json.dumps(state.to_dict(), indent=1, sort_keys=True) + "\n")

    def update(self, change: Callable[[RemoteState], None]) -> RemoteState:
        """Load, ``change(state)`` in place, save: under the lock, so the CLI and agent never
        race."""
        with self.locked():
            state = self.load()
            change(state)
            self._prune(state)
            self.save(state)
            return state

    def write_config(self, rel: str, text: str) -> None:
        write_atomic(self.state_dir / rel, text)

    def read_config(self, rel: str | None) -> str | None:
        if not rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
            return None
        try:
            return (self.state_dir / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def _prune(self, state: RemoteState) -> None:
        """Delete pushed config texts nothing refers to any more."""
        keep = {Path(m["file"]).name
                for m in (state.active, state.last_known_good, state.latest_push)
                if isinstance(m, dict) and isinstance(m.get("file"), str)}
        for path in self.config_dir.glob("v*.toml"):
            if path.name not in keep:
                try:
                    path.unlink()
                except OSError:
                    pass


def pushed_file(version: int) -> str:
    return f"{CONFIG_DIR}/v{version}.toml"


def write_atomic(path: Path, text: str) -> None:
    """Write, fsync, rename, fsync the directory: the file is either old or new, never partial."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
