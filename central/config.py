"""The ingest's config file (TOML), validated once into frozen objects, every problem by key path.

Same parser and error style as the agent's (``agent.config.fields``): ``clinic-central validate``
lists every problem at once and exits 2.
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path

from agent.config.fields import Problems
from agent.errors import ConfigError
from central.alert_rules import AlertsConfig, parse_alerts

NAME_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}"
SITE_PATTERN = r"[A-Za-z0-9_.-]{1,64}"   # the broker ACL's %u: no '+', '#', '/'


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int
    tls: bool
    ca_file: str | None
    username: str | None
    password: str | None = None      # never logged
    client_id: str = ""
    group: str = "central"
    shared: bool = True           # $share/<group>/...: several ingests split the load
    topic_prefix: str = "clinics"
    keepalive_s: int = 30
    session_expiry_s: int = 86400
    receive_maximum: int = 2000


@dataclass(frozen=True)
class IngestConfig:
    batch_max_readings: int = 50_000
    batch_max_wait_s: float = 0.25
    max_payload_bytes: int = 256 * 1024
    max_inflated_bytes: int = 4 * 1024 * 1024
    max_series_per_site: int = 5000
    name_pattern: str = NAME_PATTERN
    text_max_chars: int = 200
    ack_interval_s: float = 1.0
    # Longer than the agents' buffer.central_ack_timeout_s (60 s by default) with room for a
    # second try: a batch the broker lost is sent again before its hole is declared loss.
    gap_settle_s: float = 300.0
    retention_days: int = 3650    # must match victoria-metrics -retentionPeriod
    future_s: float = 86400.0     # VictoriaMetrics refuses samples more than 2 days ahead


@dataclass(frozen=True)
class CentralConfig:
    mqtt: MqttConfig
    vm_url: str
    pg_dsn: str                   # may hold a password: never logged
    ingest: IngestConfig
    sites: frozenset[str] | None  # None: any site matching SITE_PATTERN is accepted
    log_level: str = "info"
    alerts: AlertsConfig | None = None   # [alerts]: clinic-central alerts (docs/alerts.md)

    @property
    def ingest_id(self) -> str:
        return self.mqtt.client_id


def load_config(path: str | os.PathLike[str]) -> CentralConfig:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"cannot read the file: {exc.strerror}"], source=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"not valid TOML: {exc}"], source=str(path)) from exc
    return parse_config(data, source=str(path), base=Path(path).parent)


def parse_config(data: dict[str, object], *, source: str = "config",
                 base: Path = Path(".")) -> CentralConfig:
    problems = Problems()
    root = problems.root(data)
    log_level = root.str("log_level", "info", choices=("debug", "info", "warning", "error"))

    m = root.table("mqtt", required=True)
    password = m.str("password", None)
    password_file = m.str("password_file", None)
    if password_file is not None:
        try:
            password = (base / password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            m.problem("password_file", f"cannot read {password_file}: {exc.strerror}")
    # The ``what`` texts below are English (central has no catalogue yet), hence the ignores: a
    # plain string is shown as it is, and Table.str never asks a string ``what`` for its id.
    mqtt = MqttConfig(
        host=m.str("host", "127.0.0.1"), port=m.int("port", 1883, min=1, max=65535),
        tls=m.bool("tls", False), ca_file=m.str("ca_file", None), username=m.str("username", None),
        password=password,
        client_id=m.str("client_id", f"clinic-central-{socket.gethostname()}",
                        pattern=r"[A-Za-z0-9_.:-]{1,64}",
                        what="1-64 letters, digits, _ . : -"),  # type: ignore[arg-type]
        group=m.str("group", "central", pattern=r"[A-Za-z0-9_-]{1,32}",
                    what="1-32 letters, digits, _ -"),  # type: ignore[arg-type]
        shared=m.bool("shared", True),
        topic_prefix=m.str("topic_prefix", "clinics", pattern=r"[^#+]+(/[^#+]+)*",
                           what="a topic without wildcards"),  # type: ignore[arg-type]
        keepalive_s=m.int("keepalive_s", 30, min=5, max=3600),
        session_expiry_s=m.int("session_expiry_s", 86400, min=0, max=2**32 - 1),
        receive_maximum=m.int("receive_maximum", 2000, min=1, max=65535))
    m.finish()

    v = root.table("victoriametrics", required=True)
    vm_url = v.str("url", "http://127.0.0.1:8428", pattern=r"https?://[^\s/]+(/\S*)?",
                   what="an http(s) URL")  # type: ignore[arg-type]  # see MqttConfig above
    v.finish()
    p = root.table("postgres", required=True)
    pg_dsn = p.str("dsn")
    p.finish()

    i = root.table("ingest")
    d = IngestConfig()
    pattern = i.str("name_pattern", d.name_pattern)
    try:
        re.compile(pattern)
    except re.error as exc:
        i.problem("name_pattern", f"not a regular expression: {exc}")
        pattern = d.name_pattern
    ingest = IngestConfig(
        batch_max_readings=i.int("batch_max_readings", d.batch_max_readings, min=1, max=1_000_000),
        batch_max_wait_s=i.float("batch_max_wait_s", d.batch_max_wait_s, min=0.001, max=10),
        max_payload_bytes=i.int("max_payload_bytes", d.max_payload_bytes, min=1024, max=256 << 20),
        max_inflated_bytes=i.int("max_inflated_bytes", d.max_inflated_bytes, min=1024, max=1 << 30),
        max_series_per_site=i.int("max_series_per_site", d.max_series_per_site, min=1),
        name_pattern=pattern,
        text_max_chars=i.int("text_max_chars", d.text_max_chars, min=1, max=4096),
        ack_interval_s=i.float("ack_interval_s", d.ack_interval_s, min=0.05, max=600),
        gap_settle_s=i.float("gap_settle_s", d.gap_settle_s, min=0, max=86400),
        retention_days=i.int("retention_days", d.retention_days, min=1),
        future_s=i.float("future_s", d.future_s, min=0, max=2 * 86400))
    i.finish()

    inv = root.table("inventory")
    sites: frozenset[str] | None = None
    listed = inv.str_list("sites", None)
    sites_file = inv.str("sites_file", None)
    if listed is not None or sites_file is not None:
        names = set(listed or ())
        if sites_file is not None:
            try:
                lines = (base / sites_file).read_text(encoding="utf-8").splitlines()
                names.update(x.split("#")[0].strip() for x in lines if x.split("#")[0].strip())
            except OSError as exc:
                inv.problem("sites_file", f"cannot read {sites_file}: {exc.strerror}")
        bad = sorted(s for s in names if not re.fullmatch(SITE_PATTERN, s))
        if bad:
            inv.problem("sites", f"not valid site ids: {', '.join(bad[:5])}")
        sites = frozenset(names)
    inv.finish()
    alerts = parse_alerts(root, base)
    root.finish()
    if problems.items:
        raise ConfigError(problems.items, source=source)
    return CentralConfig(mqtt=mqtt, vm_url=vm_url.rstrip("/"), pg_dsn=pg_dsn, ingest=ingest,
                         sites=sites, log_level=log_level, alerts=alerts)
