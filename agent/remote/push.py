"""Config pushes: from the bytes received on ``config/set`` to a validated config or a rejection.

    bytes -> size -> well-formed -> trusted signature -> this site -> not expired
          -> version newer than the applied one -> parse_config (the local file's validator)
          -> Accepted(config, text, meta)          any step: Rejection(reason, detail, problems)

``check_push`` is pure: everything it needs (the time, the trusted keys, the applied version, the
local file it inherits from) comes in a ``PushContext``, and it touches no file, socket or global.
Applying the result is ``agent.remote.service``'s job.

What a push inherits from the site's local file, and may not change (``LOCAL_ONLY``): the site id,
the state directory, the secrets file, the control socket, the buffer file and the ``[remote]``
table, so one push
can serve many sites
and a bad push can neither move a site's identity nor take remote management away from the
technician. MQTT credentials are never pushed: they stay in the local file or its secrets file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.config import AgentConfig, load_secrets, merge_secrets, parse_config, parse_toml_text
from agent.config.fields import show
from agent.errors import ConfigError
from agent.remote.checks import Ignored, Reason, Rejection, common_checks
from agent.remote.envelope import sha256_hex
from agent.remote.overlay import apply_overlay, parse_overlay

if TYPE_CHECKING:
    from agent.remote.envelope import PublicKey

# control_socket: the agent deletes a stale socket there at start, so a push must not aim it at a
# file.
LOCAL_ONLY = ("site_id", "state_dir", "secrets_file", "control_socket", "remote")
# The buffer file holds readings not yet sent: moving it by push would strand them at the next
# start.
LOCAL_ONLY_IN_TABLES = (("buffer", "path"),)
LOCAL_ONLY_NAMES = (*LOCAL_ONLY[:-1], "buffer.path", "[remote]")
MAX_VERSION = 2**53          # stays exact in every JSON reader
CONNECT_MARGIN_S = 2.0       # MqttLink waits connect_timeout_s + 2 s for the broker's answer


@dataclass(frozen=True)
class PushMeta:
    """What identifies an applied push: retained on the config state topic and kept on disk."""

    version: int
    sha256: str                 # of the config's TOML text
    key_id: str
    issued_at: float
    not_after: float
    envelope_sha256: str
    overlay_sha256: str | None = None   # overlays: of the overlay (sha256: of the merged)


@dataclass(frozen=True)
class Accepted:
    config: AgentConfig
    text: str
    meta: PushMeta


@dataclass(frozen=True)
class RevertAccepted:
    """A signed "go back to the config before push N": applied by the service from its state."""

    version: int                # this push's own version (replay protection)
    reverts: int                # N, the push in effect being undone
    key_id: str
    envelope_sha256: str


@dataclass(frozen=True)
class LocalBasis:
    """What a pushed config inherits from the site's local file (read before checking a push)."""

    doc: Mapping[str, Any]                 # the local file as written, secrets not merged
    secrets: Mapping[str, Any] | None      # the local secrets file, if it names one
    path: str
    text: str = ""                         # the local file's text (kept as last-known-good)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> LocalBasis:
        """Read the local file (and its secrets file). Raises ``ConfigError``."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"cannot read the file: {exc}"], source=str(path)) from exc
        doc = parse_toml_text(text, source=str(path))
        secrets = None
        name = doc.get("secrets_file")
        if isinstance(name, str) and name:
            secrets_path = Path(name) if Path(name).is_absolute() else path.parent / name
            secrets = load_secrets(secrets_path)
        return cls(doc, secrets, str(path), text)

    @classmethod
    def of(cls, cfg: AgentConfig) -> LocalBasis:
        """For an agent started without a config file (tests, embedding)."""
        return cls({"site_id": cfg.site_id, "state_dir": cfg.state_dir,
                    "remote": asdict(cfg.remote)}, None, cfg.source)


@dataclass(frozen=True)
class PushContext:
    site_id: str
    now: float
    trusted_keys: Mapping[str, PublicKey]
    max_bytes: int
    highest_version: int             # the newest version ever applied here (persisted)
    handled: frozenset[str]          # sha256 of envelopes already handled: re-deliveries are no-ops
    local: LocalBasis
    confirm_timeout_s: float
    # What an overlay is merged onto: the document of the config in effect (a push's TOML, or
    # the local file). None: the local file.
    base_doc: Mapping[str, Any] | None = None
    # The push in effect that a revert may undo (None when there is nothing known to go back to).
    revertible: int | None = None


def check_push(data: bytes, ctx: PushContext) -> Accepted | RevertAccepted | Rejection | Ignored:
    """Run every check in order; the first that fails decides the rejection."""
    if not data:
        return Ignored("empty message (a retained push being cleared)")
    checked = common_checks(data, kind="config", site_id=ctx.site_id, now=ctx.now,
                            max_bytes=ctx.max_bytes, trusted_keys=ctx.trusted_keys)
    if isinstance(checked, Rejection):
        if checked.reason is Reason.TOO_LARGE:
            return checked
        if sha256_hex(data) in ctx.handled:   # e.g. the retained push, again after a reconnect
            return Ignored("already handled")
        return checked
    env = checked
    if env.sha256 in ctx.handled:
        return Ignored("already handled")
    body = env.payload.body
    version = body.get("version")
    if not _well_formed(body) or not isinstance(version, int):
        # Checked after the signature only because the envelope framing is generic; a signed
        # payload of the wrong shape is an operator tool bug, reported as malformed.
        return Rejection(Reason.MALFORMED, "payload: a config push carries exactly an integer "
                         f"version (1-{MAX_VERSION}) and one of: the config as TOML text, an "
                         "overlay as TOML text, or the version to revert",
                         key_id=env.key_id)
    if version <= ctx.highest_version:
        return Rejection(Reason.REPLAY, f"version {version} is not newer than version "
                         f"{ctx.highest_version}, already applied here", key_id=env.key_id,
                         version=version)
    if "revert" in body:
        return _check_revert(body["revert"], version, env.key_id, env.sha256, ctx)
    overlay_sha = None
    if "overlay" in body:
        overlay_sha = sha256_hex(body["overlay"].encode("utf-8"))
        try:
            overlay = parse_overlay(body["overlay"], source=f"push v{version} (overlay)")
            base = ctx.base_doc if ctx.base_doc is not None else ctx.local.doc
            text = apply_overlay(base, overlay)
        except ConfigError as exc:
            return Rejection(Reason.INVALID_CONFIG, f"{len(exc.problems)} problem(s) in the "
                             "overlay", tuple(exc.problems), key_id=env.key_id, version=version)
    else:
        text = body["config"]
    try:
        cfg = load_effective(text, ctx.local, source=f"push v{version}")
    except ConfigError as exc:
        return Rejection(Reason.INVALID_CONFIG, f"{len(exc.problems)} problem(s) in the config",
                         tuple(exc.problems), key_id=env.key_id, version=version)
    if cfg.mqtt.connect_timeout_s + CONNECT_MARGIN_S >= ctx.confirm_timeout_s:
        problem = (f"mqtt.connect_timeout_s: {cfg.mqtt.connect_timeout_s:g} s leaves no time to "
                   f"reach the broker within this site's [remote] confirm_timeout_s "
                   f"({ctx.confirm_timeout_s:g} s): the push would always be rolled back")
        return Rejection(Reason.INVALID_CONFIG, "1 problem(s) in the config", (problem,),
                         key_id=env.key_id, version=version)
    meta = PushMeta(version=version, sha256=sha256_hex(text.encode("utf-8")), key_id=env.key_id,
                    issued_at=env.payload.issued_at, not_after=env.payload.not_after,
                    envelope_sha256=env.sha256, overlay_sha256=overlay_sha)
    return Accepted(cfg, text, meta)


def _well_formed(body: Mapping[str, Any]) -> bool:
    """Exactly a version and one of config (TOML), overlay (TOML), revert (a version)."""
    version = body.get("version")
    if isinstance(version, bool) or not isinstance(version, int) \
            or not 1 <= version <= MAX_VERSION or len(body) != 2:
        return False
    if "revert" in body:
        undo = body["revert"]
        return isinstance(undo, int) and not isinstance(undo, bool) and 1 <= undo <= MAX_VERSION
    return any(isinstance(text := body.get(k), str) and _utf8(text) for k in ("config", "overlay"))


def _utf8(text: str) -> bool:
    """JSON can carry a lone surrogate (``"\\ud800"``) that no UTF-8 file or hash can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_revert(reverts: int, version: int, key_id: str, envelope_sha: str,
                  ctx: PushContext) -> RevertAccepted | Rejection:
    if ctx.revertible != reverts:
        now = f"v{ctx.revertible}" if ctx.revertible is not None else \
            "no push that can be undone"
        return Rejection(Reason.NOT_IN_EFFECT, f"asked to undo config v{reverts}; in effect here: "
                         f"{now}", key_id=key_id, version=version)
    return RevertAccepted(version, reverts, key_id, envelope_sha)


def load_effective(text: str, local: LocalBasis, *, source: str) -> AgentConfig:
    """A pushed config's TOML text, completed from the local file, validated by ``parse_config``.

    Raises ``ConfigError`` with every problem, by key path, exactly as the local file would.
    """
    data = parse_toml_text(text, source=source)
    problems = inherit_local(data, local.doc)
    try:
        if local.secrets is not None:
            data = merge_secrets(data, dict(local.secrets), source=f"{source} + local secrets_file")
        cfg = parse_config(data, source=source)
    except ConfigError as exc:
        raise ConfigError(problems + exc.problems, source=source) from None
    if problems:
        raise ConfigError(problems, source=source)
    return cfg


def inherit_local(data: dict[str, Any], local_doc: Mapping[str, Any]) -> list[str]:
    """Fill ``data`` (a pushed document, changed in place) from the local file; list what a push
    tried to change that only the site may."""
    problems: list[str] = []
    for key in LOCAL_ONLY:
        if key in data and data[key] != local_doc.get(key):
            where = f"[{key}]" if key == "remote" else key
            now = "" if key == "remote" else \
                f" (the site has {show(local_doc.get(key, 'the default'))})"
            problems.append(f"{where}: set in the site's local file only; a push cannot change "
                            f"it{now}")
        if key in local_doc:
            data[key] = local_doc[key]
        else:
            data.pop(key, None)
    for table, key in LOCAL_ONLY_IN_TABLES:
        local_t = lt if isinstance(lt := local_doc.get(table), dict) else {}
        pushed_t = data.get(table)
        if isinstance(pushed_t, dict):
            pushed_t = data[table] = dict(pushed_t)
            if key in pushed_t and pushed_t[key] != local_t.get(key):
                problems.append(f"{table}.{key}: set in the site's local file only; a push cannot "
                                "change it")
            if key in local_t:
                pushed_t[key] = local_t[key]
            else:
                pushed_t.pop(key, None)
        elif table not in data and key in local_t:
            data[table] = {key: local_t[key]}
    mqtt = data.get("mqtt")
    local_mqtt = local_doc.get("mqtt")
    if isinstance(mqtt, dict):
        mqtt = data["mqtt"] = dict(mqtt)
        if "password" in mqtt:
            # Never echo the value: this message is published on the config state topic.
            problems.append("mqtt.password: credentials are never pushed; they stay in the site's "
                            "local file or its secrets_file")
        elif "username" not in mqtt and isinstance(local_mqtt, dict):
            for k in ("username", "password"):
                if k in local_mqtt:
                    mqtt[k] = local_mqtt[k]
    return problems
