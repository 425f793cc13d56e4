"""Writing the clinic's settings: agent.toml, secrets.toml, the certificates and the keys.

A new install (or an agent.toml that is still the example) gets a short agent.toml made for this
clinic; an agent.toml the technician edited keeps everything but the keys given, and a copy of the
file before. The files given (CA, client certificate and key, the operators' keys) are copied
into the configuration directory, so the agent never depends on a USB stick. Every file written
is returned with the mode and owners install.sh gives it (and records in its manifest).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config.remote import DEFAULT_TRUSTED_KEYS_DIR
from agent.i18n import Messages, Text, text
from agent.install.settings import SiteSettings
from agent.install.toml_edit import EditError, literal, set_keys

EXAMPLES_DIR = "/opt/clinic-agent/share/examples"
STATE_DIR = "/var/lib/clinic-agent"


@dataclass(frozen=True)
class Owned:
    """A path as the installed system sees it, and who should own it."""

    mode: str
    owner: str
    group: str
    path: str


@dataclass(frozen=True)
class Target:
    """Where to write: ``root`` is / or install.sh's --root; ``etc`` the config directory."""

    root: Path
    etc: str
    user: str

    def at(self, path: str) -> Path:
        return self.root / path.lstrip("/")


Say = Callable[[Text], None]


def write_all(s: SiteSettings, target: Target, *, state: str, example_secrets: Path | None,
              t: Messages, say: Say, systemd: bool) -> list[Owned]:
    """Write everything ``s`` holds; returns the files written, for ownership."""
    owned: list[Owned] = []
    files = _install_files(s, target, say, owned)
    config = target.at(f"{target.etc}/agent.toml")
    if state in ("new", "example"):
        _write_text(config, new_config(s, target, files, t), 0o640)
        say(text("inst.config.created", path=f"{target.etc}/agent.toml", site=s.site_id,
                 broker=f"{s.broker_host}:{s.broker_port}"))
    else:
        _edit(config, f"{target.etc}/agent.toml", config_changes(s, target, files), 0o640, say)
    _write_secrets(s, target, example_secrets, fresh=state in ("new", "example"), t=t, say=say)
    if s.timezone:
        _set_timezone(s.timezone, target, systemd=systemd, say=say)
    return owned


# -- the files given ----------------------------------------------------------------------------

def _install_files(s: SiteSettings, target: Target, say: Say, owned: list[Owned]) -> dict[str, str]:
    """Copy the CA, client certificate and key and the trusted keys; their installed paths."""
    etc, user = target.etc, target.user
    placed: dict[str, str] = {}
    for key, source, name, mode, owner, msg in (
            ("ca_file", s.ca_file, "ca.crt", "0640", "root", "inst.file.ca"),
            ("cert_file", s.client_cert, "client.crt", "0640", "root", "inst.file.client_cert"),
            ("key_file", s.client_key, "client.key", "0600", user, "inst.file.client_key")):
        if source is None:
            continue
        dest = f"{etc}/{name}"
        _copy(Path(source), target.at(dest), int(mode, 8))
        owned.append(Owned(mode, owner, user, dest))
        placed[key] = dest
        say(text(msg, path=dest))
    if s.trusted_keys is not None:
        dest_dir = f"{etc}/trusted-keys"
        local = target.at(dest_dir)
        local.mkdir(parents=True, exist_ok=True)
        local.chmod(0o750)
        owned.append(Owned("0750", "root", user, dest_dir))
        sources = sorted(Path(s.trusted_keys).glob("*.pub"))
        names = {p.name for p in sources}
        for old in sorted(local.glob("*.pub")):
            if old.name not in names:
                old.unlink()
                say(text("inst.file.trusted_removed", name=old.name))
        for src in sources:
            _copy(src, local / src.name, 0o640)
            owned.append(Owned("0640", "root", user, f"{dest_dir}/{src.name}"))
        say(text("inst.file.trusted_keys", n=len(sources), path=dest_dir,
                 names=", ".join(sorted(names))))
        placed["trusted_keys_dir"] = dest_dir
    return placed


def _copy(src: Path, dest: Path, mode: int) -> None:
    if dest.exists() and os.path.samefile(src, dest):
        dest.chmod(mode)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f, src.open("rb") as r:
        shutil.copyfileobj(r, f)
    os.chmod(tmp, mode)
    os.replace(tmp, dest)


def _write_text(path: Path, content: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(content)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# -- agent.toml ---------------------------------------------------------------------------------

def new_config(s: SiteSettings, target: Target, files: dict[str, str], t: Messages) -> str:
    """A short agent.toml for this clinic, its comments in the technician's language."""
    def comment(msg_id: str, **args: Any) -> str:
        return f"# {t(msg_id, **args)}"
    lines = [
        comment("inst.cfg.head", site=s.site_id, date=time.strftime("%Y-%m-%d")),
        comment("inst.cfg.example", path=f"{EXAMPLES_DIR}/agent.example.toml"),
        comment("inst.cfg.after_edit"),
        "",
        comment("inst.cfg.site_id"),
        f"site_id = {literal(s.site_id)}",
        comment("inst.cfg.language"),
        f"language = {literal(s.language or 'es')}",
        f"state_dir = {literal(STATE_DIR)}",
        comment("inst.cfg.secrets"),
        f"secrets_file = {literal(target.etc + '/secrets.toml')}",
        'log_level = "info"',
        "",
        "[mqtt]",
        comment("inst.cfg.broker"),
        f"host = {literal(s.broker_host)}",
        f"port = {literal(s.broker_port or 8883)}",
        "tls = true",
    ]
    if "ca_file" in files:
        lines.append(f"ca_file = {literal(files['ca_file'])}")
    else:
        lines.append(comment("inst.cfg.system_ca"))
    if "cert_file" in files:
        lines += [f"cert_file = {literal(files['cert_file'])}",
                  f"key_file = {literal(files['key_file'])}"]
    if s.mqtt_user:
        lines.append(f"username = {literal(s.mqtt_user)}")
    if s.password is not None:
        lines.append(comment("inst.cfg.password"))
    lines += [
        "",
        comment("inst.cfg.devices"),
        "[[devices]]",
        'name = "pc"',
        'kind = "host"',
        "interval_s = 60",
        "",
        comment("inst.cfg.remote"),
        "[remote]",
        "enabled = true",
        f"trusted_keys_dir = {literal(files.get('trusted_keys_dir', DEFAULT_TRUSTED_KEYS_DIR))}",
    ]
    return "\n".join(lines) + "\n"


def config_changes(s: SiteSettings, target: Target,
                   files: dict[str, str]) -> dict[tuple[str, str], Any]:
    """The keys of an edited agent.toml that the given settings change."""
    changes: dict[tuple[str, str], Any] = {}
    if s.site_id is not None:
        changes[("", "site_id")] = s.site_id
    if s.language is not None:
        changes[("", "language")] = s.language
    if s.broker_host is not None:
        changes[("mqtt", "host")] = s.broker_host
        changes[("mqtt", "port")] = s.broker_port
    for key in ("ca_file", "cert_file", "key_file"):
        if key in files:
            changes[("mqtt", key)] = files[key]
    if s.mqtt_user is not None:
        changes[("mqtt", "username")] = s.mqtt_user
    if "trusted_keys_dir" in files:
        changes[("remote", "trusted_keys_dir")] = files["trusted_keys_dir"]
    return changes


def _edit(path: Path, shown: str, changes: dict[tuple[str, str], Any], mode: int, say: Say,
          *, secret: bool = False) -> None:
    """Set ``changes`` in the file at ``path``, keeping the file before beside it."""
    if not changes:
        return
    before = path.read_text(encoding="utf-8-sig")
    try:
        after = set_keys(before, changes)
    except EditError as exc:
        say(text("inst.config.cannot_edit", path=shown, keys=", ".join(exc.keys)))
        return
    if after == before:
        say(text("inst.config.unchanged", path=shown))
        return
    backup = path.with_name(f"{path.name}.before-{time.strftime('%Y%m%d-%H%M%S')}")
    _write_text(backup, before, mode)
    _write_text(path, after, mode)
    if not secret:
        keys = ", ".join(f"{t}.{k}" if t else k for t, k in changes)
        say(text("inst.config.updated", path=shown, keys=keys, backup=backup.name))


# -- secrets.toml -------------------------------------------------------------------------------

def _write_secrets(s: SiteSettings, target: Target, example: Path | None, *, fresh: bool,
                   t: Messages, say: Say) -> None:
    shown = f"{target.etc}/secrets.toml"
    path = target.at(shown)
    is_example = example is not None and path.exists() and example.exists() \
        and path.read_bytes() == example.read_bytes()
    if not path.exists() or (fresh and is_example):
        lines = [f"# {t('inst.sec.head')}", f"# {t('inst.sec.devices')}"]
        if s.password is not None:
            lines += ["", "[mqtt]", f"password = {literal(s.password.reveal())}"]
        _write_text(path, "\n".join(lines) + "\n", 0o600)
        say(text("inst.secrets.created", path=shown))
    elif s.password is not None:
        _edit(path, shown, {("mqtt", "password"): s.password.reveal()}, 0o600, say, secret=True)
    if s.password is not None:
        say(text("inst.secrets.password", path=shown))


# -- the time zone ------------------------------------------------------------------------------

def current_timezone(root: Path) -> str | None:
    """The zone of the system at ``root`` (/etc/timezone, else where /etc/localtime points)."""
    try:
        return (root / "etc/timezone").read_text().strip() or None
    except OSError:
        pass
    try:
        link = os.readlink(root / "etc/localtime")
    except OSError:
        return None
    return link.split("zoneinfo/", 1)[1] if "zoneinfo/" in link else None


def _set_timezone(zone: str, target: Target, *, systemd: bool, say: Say) -> None:
    before = current_timezone(target.root)
    if before == zone:
        say(text("inst.tz.same", zone=zone))
        return
    if systemd:
        res = subprocess.run(["timedatectl", "set-timezone", zone], capture_output=True,
                             text=True, check=False)
        if res.returncode != 0:
            say(text("inst.tz.failed", zone=zone, error=res.stderr.strip() or res.returncode))
            return
    else:
        # What Debian's tzdata does: /etc/localtime points into the zone files,
        # /etc/timezone names it.
        etc = target.at("/etc")
        etc.mkdir(parents=True, exist_ok=True)
        tmp = etc / ".localtime.new"
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(f"/usr/share/zoneinfo/{zone}", tmp)
        os.replace(tmp, etc / "localtime")
        _write_text(etc / "timezone", zone + "\n", 0o644)
    say(text("inst.tz.set", zone=zone, before=before or text("inst.tz.unknown")))


# -- a view of the config from outside --root ---------------------------------------------------

ROOTED_KEYS = (("", "secrets_file"), ("", "state_dir"), ("buffer", "path"), ("mqtt", "ca_file"),
               ("mqtt", "cert_file"), ("mqtt", "key_file"), ("remote", "trusted_keys_dir"))


def rooted(config_text: str, data: dict[str, Any], *, root: Path, config_dir: Path,
           socket: str) -> str:
    """The config with its absolute paths moved into ``root`` (to check an install made with
    --root from outside it); the control socket is ``socket``, where no agent listens."""
    changes: dict[tuple[str, str], Any] = {("", "control_socket"): socket}
    defaults = {("", "state_dir"): STATE_DIR,
                ("remote", "trusted_keys_dir"): DEFAULT_TRUSTED_KEYS_DIR}
    for table, key in ROOTED_KEYS:
        holder = data if table == "" else data.get(table)
        value = holder.get(key) if isinstance(holder, dict) else None
        value = value if isinstance(value, str) and value else defaults.get((table, key))
        if value is None:
            continue
        if value.startswith("/"):
            changes[(table, key)] = str(root / value.lstrip("/"))
        elif key == "secrets_file":
            changes[(table, key)] = str(config_dir / value)
    return set_keys(config_text, changes)
