"""The operator's side: building signed pushes and commands, one MQTT connection, the fleet view.

    fleet push/command: payload -> envelope.seal (operator's key) -> OperatorLink.publish
                        -> (optionally) wait for config/state or cmd/result from each site
    fleet status:       OperatorLink.subscribe(status, config/state, readings, backlog)
                        -> FleetView.observe (pure) -> rows (table or JSON)

Nothing here runs inside the agent. ``FleetView`` is pure, so what the table says about a site
can be tested from messages alone.
"""

from __future__ import annotations

import queue
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.errors import AgentError
from agent.publish.wire import decode_payload, iter_readings
from agent.remote.commands import MAX_TTL_S

_T = TypeVar("_T")
STATUS_LEAVES = ("status", "config/state", "readings", "backlog")


class FleetError(AgentError):
    """The operator's command could not be carried out (broker, key file, arguments)."""


# -- payloads ----------------------------------------------------------------------------------

def config_payload(text: str, *, sites: Iterable[str], version: int, valid_for_s: float,
                   now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    return {"kind": "config", "sites": sorted(set(sites)), "version": version, "config": text,
            "issued_at": round(now, 3), "not_after": round(now + valid_for_s, 3)}


def overlay_payload(text: str, *, sites: Iterable[str], version: int, valid_for_s: float,
                    now: float | None = None) -> dict[str, Any]:
    """An overlay push: only some tables or keys, merged onto each site's config at the site."""
    doc = config_payload(text, sites=sites, version=version, valid_for_s=valid_for_s, now=now)
    doc["overlay"] = doc.pop("config")
    return doc


def revert_payload(reverts: int, *, sites: Iterable[str], version: int, valid_for_s: float,
                   now: float | None = None) -> dict[str, Any]:
    """Undo push ``reverts`` where it is in effect: back to the config each site ran before."""
    doc = config_payload("", sites=sites, version=version, valid_for_s=valid_for_s, now=now)
    del doc["config"]
    doc["revert"] = reverts
    return doc


def command_payload(name: str, args: dict[str, Any], *, sites: Iterable[str],
                    valid_for_s: float = 300.0, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    return {"kind": "command", "sites": sorted(set(sites)), "id": secrets.token_hex(8),
            "command": name, "args": args, "issued_at": round(now, 3),
            "not_after": round(now + min(valid_for_s, MAX_TTL_S), 3)}


# -- the operator's connection -----------------------------------------------------------------

@dataclass(frozen=True)
class BrokerOptions:
    host: str
    port: int
    username: str | None = None
    password: str | None = None      # never printed
    tls: bool = False
    ca_file: str | None = None
    prefix: str = "clinics"


class OperatorLink:
    """One synchronous MQTT 5 connection for a CLI command; messages land in ``inbox``."""

    def __init__(self, opts: BrokerOptions, *, timeout_s: float = 10.0) -> None:
        self.opts = opts
        self.timeout_s = timeout_s
        self.inbox: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self.pending: list[tuple[str, bytes, bool]] = []   # drained from inbox by wait_for
        self._cond = threading.Condition()
        self._acks: dict[int, int] = {}
        self._subacks: dict[int | None, list[int]] = {}   # mid None: not connected, never acked
        self._connect_rc: Any = None
        self.client_id = f"fleet-{secrets.token_hex(6)}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                  protocol=mqtt.MQTTv5)
        if opts.username:
            self.client.username_pw_set(opts.username, opts.password)
        if opts.tls:
            self.client.tls_set_context(ssl.create_default_context(cafile=opts.ca_file))
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda c, u, m: self.inbox.put(
            (m.topic, bytes(m.payload), bool(m.retain)))

    def __enter__(self) -> OperatorLink:
        try:
            self.client.connect(self.opts.host, self.opts.port, keepalive=30)
        except (OSError, ValueError) as exc:
            raise FleetError(
                f"cannot reach the broker {self.opts.host}:{self.opts.port}: {exc}") from exc
        self.client.loop_start()
        rc = self._wait(lambda: self._connect_rc, "the broker to accept the connection")
        if rc.is_failure:
            self.close()
            raise FleetError(f"broker {self.opts.host}:{self.opts.port} refused the connection "
                             f"({rc})")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False,
                expires_at: float | None = None) -> None:
        """QoS 1; raises ``FleetError`` if the broker refuses (e.g. the ACL). With
        ``expires_at`` (a wall-clock time, e.g. a command's ``not_after``) the broker drops the
        message, queued for a site that is away, once that time has passed (MQTT 5 Message
        Expiry Interval): it never reaches the site late, not even to be refused."""
        props = None
        if expires_at is not None:
            props = Properties(PacketTypes.PUBLISH)
            props.MessageExpiryInterval = max(1, int(expires_at - time.time()))
        info = self.client.publish(topic, payload, qos=1, retain=retain, properties=props)
        code = self._wait(lambda: self._acks.get(info.mid), f"the broker to acknowledge {topic}")
        if code >= 0x80:
            raise FleetError(f"broker refused the message on {topic} (reason code {code:#x}); "
                             "check this user's ACL")

    def subscribe(self, filters: Iterable[str]) -> None:
        for topic in filters:
            _, mid = self.client.subscribe(topic, qos=1)
            codes = self._wait(lambda: self._subacks.get(mid),  # noqa: B023 (called right here)
                               f"the subscription to {topic}")
            if any(c >= 0x80 for c in codes):
                raise FleetError(f"broker refused the subscription to {topic}")

    def sync(self) -> None:
        """Return once every retained message of the subscriptions so far has arrived: the broker
        sends them before it delivers anything published after the subscriptions."""
        marker = f"{self.opts.prefix}/_fleet/{self.client_id}/sync"
        self.subscribe([marker])
        self.publish(marker, b"sync")
        self.wait_for(marker)

    def wait_for(self, topic: str) -> None:
        """Drain ``inbox`` into ``self.pending`` until ``topic`` arrives."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                msg = self.inbox.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise FleetError(f"no answer from the broker within {self.timeout_s:g} s") from None
            if msg[0] == topic:
                return
            self.pending.append(msg)

    def _wait(self, get: Callable[[], _T | None], what: str) -> _T:
        deadline = time.monotonic() + self.timeout_s
        with self._cond:
            while (value := get()) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FleetError(f"timed out after {self.timeout_s:g} s waiting for {what}")
                self._cond.wait(remaining)
            return value

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    rc: ReasonCode, props: Properties | None = None) -> None:
        with self._cond:
            self._connect_rc = rc
            self._cond.notify_all()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, rc: ReasonCode,
                    props: Properties | None = None) -> None:
        with self._cond:
            self._acks[mid] = rc.value
            self._cond.notify_all()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, rcs: list[ReasonCode],
                      props: Properties | None = None) -> None:
        with self._cond:
            self._subacks[mid] = [rc.value for rc in rcs]
            self._cond.notify_all()


# -- the fleet view ----------------------------------------------------------------------------

@dataclass
class SiteView:
    site: str
    online: bool | None = None
    last_seen: float | None = None
    config: dict[str, Any] | None = None          # the retained config state document
    backlog: int | None = None
    backlog_seq: int = -1
    clock_suspect: bool = False
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)   # name -> seq, status, reason
    health_seen: bool = False                      # agent readings arrived during this look

    def seen(self, ts: float | None) -> None:
        if isinstance(ts, (int, float)) and not isinstance(ts, bool):
            self.last_seen = ts if self.last_seen is None else max(self.last_seen, ts)


class FleetView:
    """Folds what the broker says about each site into one row per site. Never raises on garbage:
    a bad message from one site must not hide the others."""

    def __init__(self, prefix: str = "clinics") -> None:
        self.prefix = prefix.rstrip("/") + "/"
        self.sites: dict[str, SiteView] = {}
        self.ignored = 0

    def observe(self, topic: str, payload: bytes, *, retained: bool, now: float) -> None:
        if not topic.startswith(self.prefix):
            return
        site, _, leaf = topic[len(self.prefix):].partition("/")
        if leaf not in STATUS_LEAVES or not site or site.startswith("_"):
            return
        view = self.sites.setdefault(site, SiteView(site))
        try:
            if leaf == "status":
                self._status(view, payload, retained, now)
            elif leaf == "config/state":
                self._config(view, payload)
            else:
                self._readings(view, payload, now)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            self.ignored += 1

    def _status(self, view: SiteView, payload: bytes, retained: bool, now: float) -> None:
        if not payload:           # retained status cleared
            return
        doc = decode_payload(payload)
        view.online = doc["state"] == "online"
        view.seen(doc.get("ts") if retained else now)

    def _config(self, view: SiteView, payload: bytes) -> None:
        if not payload:
            return
        doc = decode_payload(payload)
        if not isinstance(doc, dict):
            raise ValueError("config state is not an object")
        view.config = doc
        view.seen(doc.get("ts"))

    def _readings(self, view: SiteView, payload: bytes, now: float) -> None:
        view.seen(now)
        for r in iter_readings(decode_payload(payload)):
            if r.device == "agent":
                if r.metric == "buffer.depth" and r.seq > view.backlog_seq:
                    view.backlog, view.backlog_seq = r.value, r.seq
                    view.health_seen = True
                elif r.metric == "clock.suspect":
                    view.clock_suspect = bool(r.value)
                continue
            if r.metric in ("poll.status", "poll.reason"):
                dev = view.devices.setdefault(r.device, {"seq": -1, "status": None, "reason": ""})
                if r.metric == "poll.status" and r.seq > dev["seq"]:
                    dev.update(seq=r.seq, status=r.value, reason="")
                elif r.metric == "poll.reason" and r.seq == dev["seq"] + 1:
                    dev["reason"] = r.value   # the reason follows the status of the same poll

    def waiting_for_health(self) -> bool:
        """Some online site has not reported its agent health during this look yet."""
        return any(v.online and not v.health_seen for v in self.sites.values())

    def rows(self) -> list[dict[str, Any]]:
        return [self._row(v) for _, v in sorted(self.sites.items())]

    def _row(self, v: SiteView) -> dict[str, Any]:
        cfg = v.config or {}
        applied = c if isinstance(c := cfg.get("config"), dict) else {}
        problems = [f"{name}: {d['status']}" + (f" ({d['reason']})" if d["reason"] else "")
                    for name, d in sorted(v.devices.items()) if d["status"] not in (None, "ok")]
        problems += _config_problems(cfg)
        if v.clock_suspect:
            problems.append("clock suspect")
        return {"site": v.site,
                "state": "unknown" if v.online is None else "online" if v.online else "offline",
                "last_seen": v.last_seen, "config_source": applied.get("source"),
                "config_version": applied.get("version"), "config_state": cfg.get("state"),
                "backlog": v.backlog, "problems": problems}


def _config_problems(state: dict[str, Any]) -> list[str]:
    event = e if isinstance(e := state.get("event"), dict) else {}
    kind, version = event.get("type"), event.get("version")
    if kind == "rejected":
        return [f"config push v{version} rejected: {event.get('reason')} ({event.get('detail')})"]
    if kind == "rolled_back":
        return [f"config push v{version} rolled back: {event.get('detail')}"]
    if kind == "local_fallback":
        return [f"pushed config v{version} unusable, running the local file"]
    if state.get("state") == "confirming":
        return [f"config push v{version} waiting to reach the broker"]
    aside = state.get("set_aside")
    if isinstance(aside, dict) and state.get("state") == "local":
        return [f"pushed config v{aside.get('version')} set aside on site (local file in use)"]
    return []


def format_table(rows: list[dict[str, Any]], *, now: float) -> str:
    head = ("SITE", "STATE", "LAST SEEN", "CONFIG", "BACKLOG", "PROBLEMS")
    lines = [head]
    for r in rows:
        if r["config_source"] == "push":
            config = f"v{r['config_version']}" + \
                (" (confirming)" if r["config_state"] == "confirming" else "")
        else:
            config = r["config_source"] or "?"
        lines.append((r["site"], r["state"], _ago(r["last_seen"], now),
                      config, "?" if r["backlog"] is None else str(r["backlog"]),
                      "; ".join(r["problems"]) or "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False))
                     + "  " + line[-1] for line in lines)


def _ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "?"
    s = max(now - ts, 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s / size:.0f}{unit} ago"
    return f"{s:.0f}s ago"
