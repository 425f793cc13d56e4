"""The agent's configuration: one TOML file (plus an optional secrets file), validated once.

``load_config(path)`` and ``parse_config(data)`` return a frozen ``AgentConfig`` or raise
``ConfigError`` listing every problem by key path. The local file, ``clinic-agent validate`` and
remote config pushes all go through ``parse_config``, so they report the same errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from agent.config import events as events_cfg
from agent.config.devices import DeviceConfig, parse_devices
from agent.config.events import EventsConfig
from agent.config.fields import Problem, Problems, Table, show
from agent.config.remote import RemoteConfig
from agent.config.remote import parse as parse_remote
from agent.config.secret import Secret
from agent.config.syntax import parse_document, parse_text
from agent.errors import ConfigError
from agent.i18n import LANGUAGES, text
from agent.oserror import os_error

__all__ = ["AgentConfig", "MqttConfig", "BufferConfig", "DeviceConfig", "RemoteConfig", "Secret",
           "load_config", "parse_config", "parse_toml_text", "read_document", "salvage_config"]

SITE_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{1,39}"
TOPIC_WORD_PATTERN = r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*"


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int


@dataclass(frozen=True)
class MqttConfig:
    brokers: tuple[BrokerAddress, ...]
    tls: bool
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    username: str | None
    password: Secret | None
    protocol: str            # "3.1.1" or "5"
    keepalive_s: int
    topic_prefix: str
    client_id: str
    batch_max_readings: int
    max_payload_bytes: int
    connect_timeout_s: float
    reconnect_max_s: float


@dataclass(frozen=True)
class BufferConfig:
    path: str
    max_mb: float
    max_age_days: float
    backlog_kbps: float      # 0 = no limit
    compression: str         # "zlib" or "none"
    # "broker": a reading leaves the buffer on the broker's PUBACK. "central": only once the
    # central ingest's retained ack covers it (docs/mqtt.md, end-to-end acknowledgement).
    release: str = "broker"
    central_ack_timeout_s: float = 60.0    # sent, not centrally acked this long: sent again


@dataclass(frozen=True)
class AgentConfig:
    site_id: str
    state_dir: str
    mqtt: MqttConfig
    buffer: BufferConfig
    devices: tuple[DeviceConfig[Any], ...]
    log_level: str = "info"
    remote: RemoteConfig = RemoteConfig()
    status_interval_s: float = 30.0
    control_socket: str = ""     # "" = <state_dir>/control.sock (see agent.control)
    events: EventsConfig = EventsConfig()    # [events]: thresholds (agent.config.events)
    language: str = ""           # technician CLI: "es" or "en"; "" = the locale's (agent.i18n)
    source: str = field(default="config", compare=False)

    def device(self, name: str) -> DeviceConfig[Any] | None:
        return next((d for d in self.devices if d.name == name), None)


def parse_toml_text(text: str, *, source: str) -> dict[str, Any]:
    """TOML text to a dict, or ``ConfigError`` with each syntax mistake, its line and its fix."""
    data, problems = parse_text(text)
    if data is None:
        raise ConfigError(problems, source=source)
    return data


def read_document(path: str | os.PathLike[str], *, secret: bool = False) -> dict[str, Any]:
    """The TOML file at ``path`` (UTF-8, a byte-order mark allowed), or ``ConfigError``."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([Problem("", text("cfg.cannot_read", path=str(path),
                                            error=os_error(exc)))],
                          source=str(path)) from exc
    data, problems = parse_document(raw, secret=secret)
    if data is None:
        raise ConfigError(problems, source=str(path))
    return data


def load_config(path: str | os.PathLike[str]) -> AgentConfig:
    """Read, merge secrets into, and validate the config file at ``path``."""
    path = Path(path)
    data = read_document(path)
    secrets_path = data.get("secrets_file")
    if isinstance(secrets_path, str) and secrets_path:
        secrets_file = Path(secrets_path)
        if not secrets_file.is_absolute():
            secrets_file = path.parent / secrets_file
        data = merge_secrets(data, load_secrets(secrets_file), source=str(secrets_file))
    return parse_config(data, source=str(path))


def load_secrets(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([Problem("secrets_file", text("cfg.secrets_unreadable", path=str(path),
                                                        error=exc.__class__.__name__))],
                          source=str(path)) from exc
    # Syntax problems name the line and the fix, never the secret value written there.
    data, problems = parse_document(raw, secret=True)
    if data is None:
        raise ConfigError(problems, source=str(path)) from None
    return data


def merge_secrets(data: dict[str, Any], secrets: dict[str, Any], *, source: str) -> dict[str, Any]:
    """Overlay ``[mqtt]`` and ``[devices.NAME]`` tables of the secrets file onto the config."""
    merged = dict(data)
    problems: list[Problem] = []
    for key in secrets:
        if key not in ("mqtt", "devices"):
            problems.append(Problem(key, text("cfg.secrets_only_tables")))
    if isinstance(secrets.get("mqtt"), dict):
        merged["mqtt"] = {**(data.get("mqtt") or {}), **secrets["mqtt"]}
    dev_secrets = secrets.get("devices", {})
    if isinstance(dev_secrets, dict) and isinstance(data.get("devices"), list):
        names = {d.get("name") for d in data["devices"] if isinstance(d, dict)}
        for name in dev_secrets:
            if name not in names:
                problems.append(Problem(f"devices.{name}", text(
                    "cfg.secrets_no_device",
                    names=", ".join(sorted(n for n in names if n)) or "-")))
        merged["devices"] = [
            {**d, **dev_secrets.get(d.get("name"), {})} if isinstance(d, dict) else d
            for d in data["devices"]
        ]
    if problems:
        raise ConfigError(problems, source=source)
    return merged


def salvage_config(path: str | os.PathLike[str]) -> tuple[AgentConfig | None, list[str]]:
    """What a config with problems still says clearly, for ``doctor`` to check all it can.

    Settings with problems fall back to their defaults (a bad site id to a placeholder); each
    device is kept only if its own entry is valid. Returns the config (None when not even the
    file can be read, or [mqtt] is unusable) and the names (or indexes) of the devices left out.
    """
    path = Path(path)
    try:
        data = read_document(path)
    except ConfigError:
        return None, []
    secrets_path = data.get("secrets_file")
    if isinstance(secrets_path, str) and secrets_path:
        secrets_file = Path(secrets_path) if Path(secrets_path).is_absolute() \
            else path.parent / secrets_path
        try:
            data = merge_secrets(data, load_secrets(secrets_file), source=str(secrets_file))
        except ConfigError:
            pass
    base = {k: v for k, v in data.items() if k != "devices"}
    for _ in range(len(base) + 1):
        try:
            parse_config(base, source=str(path))
            break
        except ConfigError as exc:
            bad = {str(getattr(p, "path", "")).split(".")[0].split("[")[0] for p in exc.details}
            if "mqtt" in bad and "mqtt" in base:
                problems = cast("list[Problem]", exc.details)   # parse_config reports Problems
                mqtt_bad = {str(p.path) for p in problems if str(p.path).startswith("mqtt.")}
                if any(k in mqtt_bad for k in ("mqtt.host", "mqtt.port", "mqtt.tls")) \
                        or not isinstance(base["mqtt"], dict):
                    return None, []
                base["mqtt"] = {k: v for k, v in base["mqtt"].items()
                                if f"mqtt.{k}" not in mqtt_bad}
            for key in bad - {"mqtt", ""}:
                base.pop(key, None)
            base.setdefault("site_id", "unknown-site")
    else:
        return None, []
    kept, skipped = [], []
    devices = d if isinstance(d := data.get("devices"), list) else []
    for i, dev in enumerate(devices):
        try:
            parse_config({**base, "devices": [dev]}, source=str(path))
            kept.append(dev)
        except ConfigError:
            name = dev.get("name") if isinstance(dev, dict) else None
            skipped.append(str(name) if isinstance(name, str) and name else f"devices[{i}]")
    try:
        return parse_config({**base, "devices": kept}, source=str(path)), skipped
    except ConfigError:   # e.g. two kept devices of the same name
        return parse_config(base, source=str(path)), skipped + [
            str(d.get("name")) for d in kept if isinstance(d, dict)]


def parse_config(data: Any, *, source: str = "config") -> AgentConfig:
    """Validate a config document (already parsed TOML) into an ``AgentConfig``."""
    problems = Problems()
    root = problems.root(data)
    site_id = root.str("site_id", pattern=SITE_ID_PATTERN, what=text("cfg.what.site_id"))
    state_dir = root.str("state_dir", "/var/lib/clinic-agent")
    root.str("secrets_file", "")
    log_level = root.str("log_level", "info", choices=("debug", "info", "warning", "error"))
    status_interval_s = root.float("status_interval_s", 30.0, min=0.1, max=3600)
    # The technician CLI reaches the running agent here; 107 bytes is the Unix socket limit.
    control_socket = root.str("control_socket", "", pattern=r"(/\S{1,106})?",
                              what=text("cfg.what.socket_path"))
    language = root.str("language", "", choices=("", *LANGUAGES))
    mqtt = _parse_mqtt(root.table("mqtt", required=True), site_id or "unknown",
                       present=root.has("mqtt"))
    buffer = _parse_buffer(root.table("buffer"), state_dir or ".")
    devices = parse_devices(root)
    remote = parse_remote(root.table("remote"))
    events_table = root.table("events")
    events = events_cfg.parse(events_table)
    events_cfg.check_devices(events_table, events, {d.name for d in devices})
    root.finish()
    if problems.items:
        raise ConfigError(problems.items, source=source)
    return AgentConfig(site_id=site_id, state_dir=state_dir, mqtt=mqtt, buffer=buffer,
                       devices=devices, log_level=log_level, remote=remote,
                       status_interval_s=status_interval_s or 30.0,
                       control_socket=control_socket or "", events=events,
                       language=language or "", source=source)


def _parse_mqtt(t: Table, site_id: str, *, present: bool = True) -> MqttConfig:
    tls = t.bool("tls", True)
    default_port = 8883 if tls else 1883
    brokers: list[BrokerAddress] = []
    # A missing [mqtt] is one problem, not one more for its host.
    host = t.host("host") if present else t.host("host", None)
    port = t.int("port", default_port, min=1, max=65535)
    if host:
        brokers.append(BrokerAddress(host, port))
    for i, entry in enumerate(t.str_list("fallback_brokers", ()) or ()):
        h, _, p = entry.rpartition(":") if ":" in entry else (entry, "", str(default_port))
        if not h or not p.isdigit() or not 1 <= int(p) <= 65535:
            t.problem(f"fallback_brokers[{i}]", "cfg.expected", what=text("cfg.what.host_port"),
                      got=show(entry))
            continue
        brokers.append(BrokerAddress(h, int(p)))
    ca_file = t.str("ca_file", None)
    cert_file = t.str("cert_file", None)
    key_file = t.str("key_file", None)
    if (cert_file is None) != (key_file is None):
        t.problem("cert_file", "cfg.mqtt.cert_pair")
    if tls is False and (ca_file or cert_file):
        t.problem("tls", "cfg.mqtt.tls_off_with_files")
    username = t.str("username", None)
    password_raw = t.secret("password", min_length=0)   # never t.str: its problems quote the value
    keepalive = t.int("keepalive_s", 60, min=2, max=3600)
    prefix = t.str("topic_prefix", "clinics", pattern=TOPIC_WORD_PATTERN,
                   what=text("cfg.what.topic_prefix"))
    cfg = MqttConfig(
        brokers=tuple(brokers), tls=tls, ca_file=ca_file, cert_file=cert_file, key_file=key_file,
        username=username, password=Secret(password_raw) if password_raw is not None else None,
        protocol=t.str("protocol", "5", choices=("3.1.1", "5")),
        keepalive_s=keepalive, topic_prefix=prefix,
        client_id=t.str("client_id", f"clinic-agent-{site_id}", pattern=r"[A-Za-z0-9_.-]{1,64}",
                        what=text("cfg.what.client_id")),
        batch_max_readings=t.int("batch_max_readings", 500, min=1, max=20000),
        max_payload_bytes=t.int("max_payload_bytes", 131072, min=1024, max=268435455),
        connect_timeout_s=t.float("connect_timeout_s", 10.0, min=0.1, max=300),
        reconnect_max_s=t.float("reconnect_max_s", 300.0, min=1, max=3600),
    )
    if not brokers and host is not None:
        t.problem("host", "cfg.mqtt.no_broker")
    t.finish()
    return cfg


def _parse_buffer(t: Table, state_dir: str) -> BufferConfig:
    cfg = BufferConfig(
        path=t.str("path", os.path.join(state_dir, "buffer.sqlite")),
        max_mb=t.float("max_mb", 256.0, min=1.0, max=100_000),
        max_age_days=t.float("max_age_days", 60.0, min=0.01, max=3650),
        backlog_kbps=t.float("backlog_kbps", 0.0, min=0.0, max=1_000_000),
        compression=t.str("compression", "zlib", choices=("zlib", "none")),
        release=t.str("release", "broker", choices=("broker", "central")),
        central_ack_timeout_s=t.float("central_ack_timeout_s", 60.0, min=1.0, max=86400),
    )
    if t.raw("release", "broker") == "broker" and t.has("central_ack_timeout_s"):
        # A timeout that never applies would let a technician believe resends are on.
        t.problem("central_ack_timeout_s", "cfg.buffer.central_only")
    t.finish()
    return cfg
