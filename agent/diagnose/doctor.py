"""``clinic-agent doctor``: every link of the chain checked in order, none skipped for an earlier
failure unless it depends on it.

    config -> agent running? -> clock -> for each broker: DNS -> TCP -> TLS (certificate, expiry,
    clock against it) -> MQTT login -> each device answering (through the agent if it runs)

Each step yields a ``Check`` as soon as it is known (the CLI prints it at once) with a message id
and, when it failed, a hint id: both are looked up in ``agent.i18n``, so this module prints
nothing and speaks no language.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from agent.clock import RELEASE_FLOOR
from agent.config import AgentConfig, BrokerAddress, DeviceConfig, load_config, salvage_config
from agent.control.server import ControlClient, ControlError, NoPermission, socket_path
from agent.errors import ConfigError, PublishError
from agent.i18n import Text, text
from agent.status import DEVICE_STATUSES as _DEVICE_STATUSES

CERT_WARN_DAYS = 30
DNS_TIMEOUT_S = 5.0

# OpenSSL X509_V_ERR_* codes (ssl.SSLCertVerificationError.verify_code).
_X509_NOT_YET_VALID = 9
_X509_EXPIRED = 10
_X509_UNTRUSTED = {2, 18, 19, 20, 21, 27}
_X509_HOSTNAME = 62

# MQTT 5 CONNACK reason codes (paho maps MQTT 3.1.1 return codes onto these).
_MQTT_BAD_LOGIN = {4, 5, 134, 135}
_MQTT_CLIENT_ID = {2, 133}


@dataclass
class Check:
    """One step's outcome. ``status``: ok, warn, fail or skip."""

    step: str
    subject: str
    status: str
    msg: str
    params: dict[str, Any] = field(default_factory=dict)
    hint: str | None = None
    details: list[Any] = field(default_factory=list)   # e.g. each config problem (fields.Problem)


PollDirect = Callable[[AgentConfig, list[DeviceConfig[Any]]], list[dict[str, Any]]]


def run(config_path: str, *, poll_direct: PollDirect,
        fallback_socket: Callable[[], str | None]) -> Iterator[Check]:
    """Run every check in order. ``poll_direct(cfg, devices)`` polls devices without the agent
    (used only when it is not running); ``fallback_socket()`` finds the socket of an agent
    when the config file cannot be read."""
    cfg: AgentConfig | None = None
    try:
        cfg = load_config(config_path)
        yield Check("config", config_path, "ok", "doctor.config.ok",
                    {"path": config_path, "site": cfg.site_id, "n": len(cfg.devices)})
    except ConfigError as exc:
        yield Check("config", config_path, "fail", "doctor.config.invalid",
                    {"path": config_path, "n": len(exc.problems)}, "hint.config",
                    details=list(exc.details))
        # No dead end: check everything the faulty file still says clearly.
        cfg, skipped = _salvage(config_path)
        if cfg is not None and skipped:
            yield Check("config", config_path, "warn", "doctor.config.partial",
                        {"devices": ", ".join(skipped)}, "hint.config_partial")

    sock = socket_path(cfg) if cfg is not None else fallback_socket()
    client: ControlClient | None = None
    if sock:
        check, client = _agent_check(sock)
        yield check
    yield _clock_check()
    if cfg is None:
        yield Check("mqtt", "", "skip", "doctor.skip.no_config")
        return
    if not cfg.mqtt.brokers:
        yield Check("mqtt", "", "skip", "doctor.skip.no_broker")
    try:
        for broker in cfg.mqtt.brokers:
            yield from _broker_checks(cfg, broker)
        yield from _device_checks(cfg, client, poll_direct)
    finally:
        if client is not None:
            client.close()


# -- agent and clock ---------------------------------------------------------------------------

def _agent_check(sock: str) -> tuple[Check, ControlClient | None]:
    try:
        client = ControlClient.connect(sock, timeout=10)
    except NoPermission:
        return Check("agent", sock, "fail", "doctor.agent.no_permission", {"path": sock},
                     "hint.no_permission"), None
    except OSError as exc:
        return Check("agent", sock, "fail", "doctor.agent.unreachable",
                     {"path": sock, "error": exc.strerror or str(exc)}, "hint.agent_stopped"), None
    if client is None:
        return Check("agent", sock, "warn", "doctor.agent.stopped", {"path": sock},
                     "hint.agent_stopped"), None
    try:
        snap = client.request("status")
    except (ControlError, OSError) as exc:
        client.close()
        return Check("agent", sock, "fail", "doctor.agent.unreachable",
                     {"path": sock, "error": str(exc)}, "hint.agent_stopped"), None
    broker = snap.get("broker") or {}
    if broker.get("connected"):
        return Check("agent", sock, "ok", "doctor.agent.running_connected",
                     {"pid": snap.get("pid"), "broker": broker.get("broker", "")}), client
    coded = Text.from_doc(broker.get("last_error_code"))
    return Check("agent", sock, "warn", "doctor.agent.running_disconnected",
                 {"pid": snap.get("pid"), "error": coded or broker.get("last_error") or "-"},
                 "hint.agent_disconnected_below"), client


def _clock_check(now: float | None = None) -> Check:
    now = time.time() if now is None else now
    shown = _iso(now)
    if now < RELEASE_FLOOR:
        return Check("clock", "", "fail", "doctor.clock.unset", {"now": shown}, "hint.clock_unset")
    return Check("clock", "", "ok", "doctor.clock.ok", {"now": shown})


# -- the broker ----------------------------------------------------------------------------------

def _broker_checks(cfg: AgentConfig, broker: BrokerAddress) -> Iterator[Check]:
    where = f"{broker.host}:{broker.port}"
    timeout = cfg.mqtt.connect_timeout_s
    dns = _dns_check(broker.host)
    yield dns
    if dns.status == "fail":
        yield Check("tcp", where, "skip", "doctor.skip.after", {"step": "DNS"})
        yield Check("mqtt", where, "skip", "doctor.skip.after", {"step": "DNS"})
        return
    tcp = _tcp_check(broker, timeout)
    yield tcp
    if tcp.status == "fail":
        yield Check("mqtt", where, "skip", "doctor.skip.after", {"step": "TCP"})
        return
    if cfg.mqtt.tls:
        tls_checks = list(_tls_checks(cfg, broker, timeout))
        yield from tls_checks
        if any(c.status == "fail" for c in tls_checks):
            yield Check("mqtt", where, "skip", "doctor.skip.after", {"step": "TLS"})
            return
    else:
        yield Check("tls", where, "warn", "doctor.tls.off", {}, "hint.tls_off")
    yield _mqtt_check(cfg, broker)


def _dns_check(host: str) -> Check:
    try:
        ipaddress.ip_address(host)
        return Check("dns", host, "ok", "doctor.dns.ip", {"host": host})
    except ValueError:
        pass
    try:
        infos = _with_timeout(lambda: socket.getaddrinfo(host, None, type=socket.SOCK_STREAM),
                              DNS_TIMEOUT_S)
    except TimeoutError:
        return Check("dns", host, "fail", "doctor.dns.timeout", {"host": host}, "hint.dns")
    except OSError as exc:
        return Check("dns", host, "fail", "doctor.dns.failed",
                     {"host": host, "error": exc.strerror or str(exc)}, "hint.dns")
    addrs = sorted({str(i[4][0]) for i in infos})
    return Check("dns", host, "ok", "doctor.dns.ok", {"host": host, "addrs": ", ".join(addrs)})


def _tcp_check(broker: BrokerAddress, timeout: float) -> Check:
    where = f"{broker.host}:{broker.port}"
    start = time.monotonic()
    try:
        with socket.create_connection((broker.host, broker.port), timeout=timeout):
            pass
    except ConnectionRefusedError:
        return Check("tcp", where, "fail", "doctor.tcp.refused", {"where": where},
                     "hint.tcp_refused")
    except TimeoutError:
        return Check("tcp", where, "fail", "doctor.tcp.timeout",
                     {"where": where, "s": f"{timeout:g}"}, "hint.tcp_timeout")
    except OSError as exc:
        return Check("tcp", where, "fail", "doctor.tcp.unreachable",
                     {"where": where, "error": exc.strerror or str(exc)}, "hint.tcp_unreachable")
    ms = (time.monotonic() - start) * 1000
    return Check("tcp", where, "ok", "doctor.tcp.ok", {"where": where, "ms": f"{ms:.0f}"})


def _tls_checks(cfg: AgentConfig, broker: BrokerAddress, timeout: float) -> Iterator[Check]:
    where = f"{broker.host}:{broker.port}"
    ca = cfg.mqtt.ca_file or ""
    try:
        ctx = ssl.create_default_context(cafile=cfg.mqtt.ca_file)
        if cfg.mqtt.cert_file:
            ctx.load_cert_chain(cfg.mqtt.cert_file, cfg.mqtt.key_file)
    except (OSError, ssl.SSLError) as exc:
        yield Check("tls", where, "fail", "doctor.tls.files",
                    {"error": getattr(exc, "strerror", None) or str(exc),
                     "ca": ca or "-", "cert": cfg.mqtt.cert_file or "-"}, "hint.tls_files")
        return
    cert = _peer_certificate(broker, timeout)   # unverified: to explain what is wrong with it
    try:
        with socket.create_connection((broker.host, broker.port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=broker.host) as tls:
            version = tls.version() or "TLS"
    except ssl.SSLCertVerificationError as exc:
        yield _verify_failure(exc, where, broker.host, ca, cert)
        if cert is not None:
            yield from _cert_checks(where, cert, verified=False)
        return
    except (ssl.SSLError, OSError) as exc:
        # OpenSSL's reason mnemonic (not its message text) tells a refused client certificate.
        reason = getattr(exc, "reason", None) or ""
        if _speaks_plain_mqtt(broker, timeout):
            yield Check("tls", where, "fail", "doctor.tls.not_tls", {"where": where},
                        "hint.not_tls")
        elif any(r in reason for r in ("CERTIFICATE_REQUIRED", "UNKNOWN_CA", "BAD_CERTIFICATE")):
            yield Check("tls", where, "fail", "doctor.tls.client_cert",
                        {"where": where, "error": reason}, "hint.client_cert")
        else:
            error = reason or getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
            yield Check("tls", where, "fail", "doctor.tls.failed",
                        {"where": where, "error": error}, "hint.tls_other")
        return
    yield Check("tls", where, "ok", "doctor.tls.ok",
                {"where": where, "version": version, "ca": ca or "system"})
    if cert is not None:
        yield from _cert_checks(where, cert, verified=True)


def _speaks_plain_mqtt(broker: BrokerAddress, timeout: float) -> bool:
    """Whether the port answers a plain (unencrypted) MQTT 3.1.1 CONNECT with a CONNACK."""
    client_id = b"clinic-agent-doctor-probe"
    body = (b"\x00\x04MQTT\x04\x02\x00\x0a" + len(client_id).to_bytes(2, "big") + client_id)
    try:
        with socket.create_connection((broker.host, broker.port), timeout=timeout) as s:
            s.sendall(bytes([0x10, len(body)]) + body)
            answer = s.recv(4)
            if answer[:1] == b"\x20":
                s.sendall(b"\xe0\x00")   # DISCONNECT
                return True
    except OSError:
        pass
    return False


def _verify_failure(exc: ssl.SSLCertVerificationError, where: str, host: str, ca: str,
                    cert: dict[str, Any] | None) -> Check:
    code = exc.verify_code
    params = {"where": where, "error": exc.verify_message or str(exc), "ca": ca or "system",
              "host": host, "names": ", ".join(cert["names"]) if cert else "?",
              "until": _iso(cert["not_after"]) if cert else "?",
              "since": _iso(cert["not_before"]) if cert else "?",
              "issuer": cert["issuer"] if cert else "?"}
    if code == _X509_EXPIRED:
        return Check("tls", where, "fail", "doctor.tls.expired", params, "hint.cert_expired")
    if code == _X509_NOT_YET_VALID:
        return Check("tls", where, "fail", "doctor.tls.not_yet_valid", params, "hint.clock_behind")
    if code == _X509_HOSTNAME:
        return Check("tls", where, "fail", "doctor.tls.hostname", params, "hint.cert_hostname")
    if code in _X509_UNTRUSTED:
        return Check("tls", where, "fail", "doctor.tls.untrusted", params, "hint.cert_untrusted")
    return Check("tls", where, "fail", "doctor.tls.verify_other", params, "hint.tls_other")


def _peer_certificate(broker: BrokerAddress, timeout: float) -> dict[str, Any] | None:
    """The broker's certificate, fetched without verifying it, as a few plain fields."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((broker.host, broker.port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=broker.host) as tls:
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None
    if not der:
        return None
    return _describe_certificate(der)


def _describe_certificate(der: bytes) -> dict[str, Any] | None:
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None

    def cn(name: x509.Name) -> str:
        attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(attrs[0].value) if attrs else name.rfc4514_string()
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)] + \
                [str(n) for n in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = [cn(cert.subject)]
    return {"subject": cn(cert.subject), "issuer": cn(cert.issuer), "names": names,
            "self_signed": cert.issuer == cert.subject,
            "not_before": cert.not_valid_before_utc.timestamp(),
            "not_after": cert.not_valid_after_utc.timestamp()}


def _cert_checks(where: str, cert: dict[str, Any], *, verified: bool,
                 now: float | None = None) -> Iterator[Check]:
    now = time.time() if now is None else now
    params = {"until": _iso(cert["not_after"]), "since": _iso(cert["not_before"]),
              "issuer": cert["issuer"], "subject": cert["subject"],
              "days": int((cert["not_after"] - now) // 86400), "now": _iso(now)}
    if now < cert["not_before"]:
        yield Check("clock", where, "fail", "doctor.clock.before_cert", params, "hint.clock_behind")
    if now > cert["not_after"]:
        if verified:   # otherwise the TLS step already said so
            yield Check("cert", where, "fail", "doctor.cert.expired", params, "hint.cert_expired")
        return
    if cert["not_after"] - now < CERT_WARN_DAYS * 86400:
        yield Check("cert", where, "warn", "doctor.cert.expires_soon", params, "hint.cert_renew")
    elif verified:
        yield Check("cert", where, "ok", "doctor.cert.ok", params)


def _mqtt_check(cfg: AgentConfig, broker: BrokerAddress) -> Check:
    from agent.publish.mqtt_link import ConnectRefused, MqttLink
    where = f"{broker.host}:{broker.port}"
    user = cfg.mqtt.username or ""
    # Its own client id: the agent's would make the broker drop the running agent's session.
    mqtt_cfg = replace(cfg.mqtt, client_id=(cfg.mqtt.client_id[:56] + "-doctor"))

    async def attempt() -> None:
        link = MqttLink(mqtt_cfg, broker)
        try:
            await link.connect()
        finally:
            await link.close()
    try:
        asyncio.run(attempt())
    except ConnectRefused as exc:
        params = {"where": where, "user": user or "-", "error": str(exc), "code": exc.code}
        if exc.code in _MQTT_BAD_LOGIN:
            return Check("mqtt", where, "fail", "doctor.mqtt.bad_login", params, "hint.mqtt_login")
        if exc.code in _MQTT_CLIENT_ID:
            return Check("mqtt", where, "fail", "doctor.mqtt.client_id", params,
                         "hint.mqtt_client_id")
        return Check("mqtt", where, "fail", "doctor.mqtt.refused", params, "hint.mqtt_other")
    except PublishError as exc:
        return Check("mqtt", where, "fail", "doctor.mqtt.no_answer",
                     {"where": where, "error": str(exc)}, "hint.mqtt_no_answer")
    except (OSError, ssl.SSLError) as exc:
        return Check("mqtt", where, "fail", "doctor.mqtt.no_answer",
                     {"where": where, "error": str(exc)}, "hint.mqtt_no_answer")
    if user:
        return Check("mqtt", where, "ok", "doctor.mqtt.ok", {"where": where, "user": user})
    return Check("mqtt", where, "ok", "doctor.mqtt.ok_anonymous", {"where": where})


# -- devices -------------------------------------------------------------------------------------

def _device_checks(cfg: AgentConfig, client: ControlClient | None,
                   poll_direct: PollDirect) -> Iterator[Check]:
    devices = [d for d in cfg.devices if d.enabled]
    for d in cfg.devices:
        if not d.enabled:
            yield Check("device", d.name, "skip", "doctor.device.disabled", {"device": d.name})
    if not devices:
        return
    if client is not None:
        try:
            results = client.request("poll_once", timeout=_poll_budget(devices))
        except ControlError as exc:
            yield Check("device", "", "fail", "doctor.device.agent_error", {"error": str(exc)},
                        "hint.agent_stopped")
            return
        via = "agent"
    else:
        results = poll_direct(cfg, devices)
        via = "direct"
    kinds = {d.name: d.kind for d in devices}
    for res in results:
        yield device_check(res, kinds.get(res["device"], res.get("kind", "")), via)


def device_check(res: dict[str, Any], kind: str, via: str) -> Check:
    """A device's poll result as a check, with the hint for its kind and status."""
    name, status = res["device"], res["status"]
    values = [r for r in res["readings"] if not r["metric"].startswith("poll.")]
    reason = Text.from_doc(res.get("reason_code")) or res.get("reason") or ""
    params = {"device": name, "kind": kind, "status": text(f"devstatus.{status}")
              if status in DEVICE_STATUSES else status, "reason": reason, "n": len(values),
              "via": via}
    if status == "ok" and values:
        return Check("device", name, "ok", "doctor.device.ok", params)
    if status == "ok":
        return Check("device", name, "warn", "doctor.device.no_values", params,
                     "hint.device.no_values")
    return Check("device", name, "fail", "doctor.device.failed", params, device_hint(kind, status))


def device_hint(kind: str, status: str) -> str:
    """The hint id for a device of ``kind`` failing with ``status`` (from the kind registry)."""
    from agent.kinds import device_hint as registered_hint
    return registered_hint(kind, status)


def _poll_budget(devices: list[DeviceConfig[Any]]) -> float:
    from agent.runtime.poller import hard_deadline
    return max(hard_deadline(d) for d in devices) * 2 + 10


# -- helpers -------------------------------------------------------------------------------------

DEVICE_STATUSES = _DEVICE_STATUSES    # kept here too: older callers import it from doctor


def _salvage(config_path: str) -> tuple[AgentConfig | None, list[str]]:
    """The usable part of a config with problems, and the devices left out of it."""
    return salvage_config(config_path)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _with_timeout(fn: Callable[[], Any], timeout: float) -> Any:
    """Run a blocking call (the resolver has no timeout of its own) with a deadline."""
    import concurrent.futures
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(fn).result(timeout)
    except concurrent.futures.TimeoutError as exc:
        raise TimeoutError from exc
    finally:
        pool.shutdown(wait=False)
