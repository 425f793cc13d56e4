"""One connection to the broker, driven by paho-mqtt 2 from the asyncio loop and awaited there.

Reconnecting is not hidden in here (unlike paho's own loop): ``MqttLink`` is one connection, and
the forwarder opens a new one after a failure. That way paho never re-sends messages from its own
memory: whatever was in flight is sent again from the durable store, which is the only outbox.

paho runs without its network thread, through its public interface for external event loops
(as aiomqtt does): the event loop calls ``loop_read`` when the socket is readable, ``loop_write``
while paho has bytes to send (``on_socket_register_write``), and ``loop_misc`` every quarter
keep-alive for pings. An idle link then costs one timer every keepalive/4 and nothing else.
Only the TCP connect and TLS handshake run in a worker thread, before the loop takes over.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import BrokerAddress, MqttConfig
from agent.errors import PublishError
from agent.i18n import Text, text
from agent.publish import connect_errors
from agent.publish.reconnect import Failure

log = logging.getLogger(__name__)

# The paho-mqtt release this adapter was written and checked against (setup.cfg pins it;
# tests/test_mqtt_link.py fails on any other): paho's callbacks and loop functions change shape
# between releases, and only this file may notice.
PAHO_VERSION = "2.2.0"
# decrypted bytes left in the TLS object: read on, this many times at once
_PENDING_TLS_READS = 64
# MQTT 5 Session Expiry Interval of the agent's connection. Long enough that a command sent
# during a reconnect, a broker restart or a short WAN cut is queued by the broker and delivered
# on return (commands live 5 minutes by default, agent.remote.commands); short enough that the
# broker does not hold queues for thousands of clinics through a long outage (a command older
# than this is stale anyway; the operator sees no result and sends it again). Readings never
# depend on it: the outbox is the only outbox.
SESSION_EXPIRY_S = 900
# Messages kept for a handler not registered yet (bounded: hostile input). A retained message
# that does not fit comes again with its subscription anyway.
_MAX_UNCLAIMED = 32
_MAX_UNCLAIMED_BYTES = 1 << 20


class PublishRefused(PublishError):
    """The broker answered the publish with a failure reason (MQTT 5 PUBACK reason code)."""

    def __init__(self, reason: str, code: int) -> None:
        self.code = code
        super().__init__(reason)


class ConnectFailed(PublishError):
    """No connection: ``code_text`` says why as a catalogue code (agent.publish.connect_errors;
    ``str()`` is its English text), ``where`` how far the attempt got (path, broker, unknown)."""

    def __init__(self, code_text: Text, where: Failure) -> None:
        self.code_text = code_text
        self.where: Failure = where
        super().__init__(str(code_text))

    @classmethod
    def from_os_error(cls, exc: OSError) -> ConnectFailed:
        """Before any packet: the TLS files could not be loaded (ssl.SSLError is an OSError)."""
        return cls(connect_errors.tls_files(exc), "path")


class ConnectRefused(ConnectFailed):
    """The broker answered CONNECT with a failure; ``code`` is the MQTT 5 reason code (paho maps
    MQTT 3.1.1 return codes onto those: 134 bad user name or password, 135 not authorized)."""

    def __init__(self, reason: str, code: int, code_text: Text | None = None) -> None:
        self.code = code
        super().__init__(code_text or connect_errors.refused(code, "?"), "broker")
        self.args = (reason,)

    def __str__(self) -> str:
        return str(self.args[0])


class LinkLost(PublishError):
    """The connection dropped before the broker acknowledged."""


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes


class MqttLink:
    """A single MQTT connection.

    ``await link.connect()``, ``await link.publish(...)``, ``close()``.
    """

    def __init__(self, cfg: MqttConfig, broker: BrokerAddress, *, will: Will | None = None,
                 max_inflight: int = 32, max_incoming: int | None = None) -> None:
        self.cfg = cfg
        self.broker = broker
        # MQTT 5: the broker must not send us a packet larger than this (it drops it instead):
        # a flood of huge messages is refused before it reaches the agent (docs/limits.md).
        self.max_incoming = max_incoming
        self.protocol = mqtt.MQTTv5 if cfg.protocol == "5" else mqtt.MQTTv311
        kwargs: dict[str, Any] = {"client_id": cfg.client_id, "protocol": self.protocol}
        if self.protocol == mqtt.MQTTv311:
            kwargs["clean_session"] = True
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, **kwargs)
        # Sends and receives are handled as the socket allows; this only paces the keep-alive
        # check. A quarter of the keep-alive keeps pings well inside the broker's 1.5 periods.
        self.misc_interval_s = max(1.0, cfg.keepalive_s / 4)
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        if cfg.username:
            self.client.username_pw_set(
                cfg.username, cfg.password.reveal() if cfg.password else None)
        if cfg.tls:
            # Verification is always on: CA from the config, or the system's trust store.
            ctx = ssl.create_default_context(cafile=cfg.ca_file)
            if cfg.cert_file:
                ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
            self.client.tls_set_context(ctx)
        if will is not None:
            self.client.will_set(will.topic, will.payload, qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected: asyncio.Future[None] | None = None
        self.lost = asyncio.Event()
        self.lost_reason = ""
        self._fd: int | None = None                  # the socket the event loop watches
        self._misc: asyncio.TimerHandle | None = None
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._early: dict[int, tuple[int, str]] = {}
        self._subscriptions: dict[str, Callable[[str, bytes], object]] = {}
        self._subacks: dict[int, asyncio.Future[None]] = {}
        # Messages of the resumed session that arrived before their handler (a command queued
        # while we were away comes right after CONNACK); handed over by subscribe().
        self._unclaimed: list[tuple[str, bytes]] = []
        self.last_ack_monotonic = time.monotonic()
        self.connected_at = time.monotonic()
        self.max_packet_size: int | None = None   # announced by an MQTT 5 broker in CONNACK

    # -- connection ----------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect, or raise ``ConnectFailed`` (a ``PublishError``) with a catalogue code a
        technician can act on and how far the attempt got (agent.publish.connect_errors)."""
        self._loop = asyncio.get_running_loop()
        self._connected = self._loop.create_future()
        self.client.connect_timeout = self.cfg.connect_timeout_s
        where = f"{self.broker.host}:{self.broker.port}"
        try:
            # The TCP connect and TLS handshake block, so they run in a worker thread; their
            # errors reach us (paho's own loop would only retry them silently).
            await asyncio.wait_for(asyncio.to_thread(self._open_socket),
                                   self.cfg.connect_timeout_s + 2)
            self._attach()
            await asyncio.wait_for(asyncio.shield(self._connected), self.cfg.connect_timeout_s + 2)
            self.connected_at = time.monotonic()
        except ConnectFailed:
            self._stop_loop()
            raise
        except (TimeoutError, OSError) as exc:   # ssl.SSLError, socket.gaierror are OSErrors
            self._stop_loop()
            code, reached = connect_errors.classify(exc, where, self.broker.host)
            raise ConnectFailed(code, reached) from exc
        except PublishError as exc:   # the connection dropped before CONNACK
            self._stop_loop()
            raise ConnectFailed(text("broker.closed", where=where), "broker") from exc
        except BaseException:
            # Cancelled (agent stopping, config replaced): close the socket now, not at GC.
            self._stop_loop()
            raise

    def _open_socket(self) -> None:
        if self.protocol == mqtt.MQTTv5:
            props: Properties | None = None
            if self.max_incoming:
                props = Properties(PacketTypes.CONNECT)
                props.MaximumPacketSize = self.max_incoming
            props = props or Properties(PacketTypes.CONNECT)
            # A session the broker keeps for SESSION_EXPIRY_S: a command sent meanwhile is
            # delivered on return, unless its own Message Expiry Interval ran out first.
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            self.client.connect(self.broker.host, self.broker.port, self.cfg.keepalive_s,
                                clean_start=False, properties=props)
        else:
            self.client.connect(self.broker.host, self.broker.port, self.cfg.keepalive_s)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: ReasonCode,
                    properties: Properties | None) -> None:
        if reason_code.is_failure:
            code = int(reason_code.value)
            where = f"{self.broker.host}:{self.broker.port}"
            self._call(self._resolve_connect, ConnectRefused(
                f"broker refused the connection: {reason_code}", code,
                connect_errors.refused(code, where)))
        else:
            size = (getattr(properties, "MaximumPacketSize", None)
                    if properties is not None else None)
            self.max_packet_size = int(size) if size else None
            self._call(self._resolve_connect, None)

    def _resolve_connect(self, exc: Exception | None) -> None:
        fut = self._connected
        if fut is None or fut.done():
            return
        if exc is None:
            fut.set_result(None)
        else:
            fut.set_exception(exc)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any,
                       reason_code: ReasonCode, properties: Properties | None) -> None:
        # paho never reconnects by itself here (no loop_forever): the forwarder decides.
        self._call(self._mark_lost, f"connection lost ({reason_code})")

    def _mark_lost(self, reason: str) -> None:
        if not self.lost.is_set():
            self.lost_reason = reason
            self.lost.set()
        self._resolve_connect(PublishError(reason))
        pending, self._pending = self._pending, {}
        subacks, self._subacks = self._subacks, {}
        for fut in [*pending.values(), *subacks.values()]:
            if not fut.done():
                fut.set_exception(LinkLost(reason))

    def declare_lost(self, reason: str) -> None:
        """Give up on this connection (e.g. the link went silent); everything in flight fails."""
        self._mark_lost(reason)
        self._stop_loop()

    async def close(self, *, final: tuple[str, bytes] | None = None) -> None:
        """Disconnect cleanly, optionally after publishing ``final`` (topic, payload) retained."""
        if final is not None and not self.lost.is_set():
            try:
                await asyncio.wait_for(self.publish(final[0], final[1], retain=True), 3)
            except (TimeoutError, PublishError):
                pass
        self._stop_loop()
        self._mark_lost("closed")

    def _stop_loop(self) -> None:
        """Send DISCONNECT if the socket takes it now, close the socket, stop watching it."""
        sock: Any = self.client.socket()
        if sock is not None:
            try:
                self.client.disconnect()
                self.client.loop_write()        # paho closes the socket once DISCONNECT is out
            except Exception:   # noqa: BLE001 - the connection may already be broken
                log.debug("MQTT disconnect failed", exc_info=True)
            still_open = self.client.socket() is sock
            if still_open:                      # it was not: end the connection without it
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                    self.client.loop_read()     # paho reads the end and closes its socket
                except Exception:   # noqa: BLE001
                    log.debug("MQTT socket shutdown failed", exc_info=True)
        self._detach()

    # -- driving paho from the event loop ------------------------------------------------------

    def _attach(self) -> None:
        """Hand the connected socket to the event loop (paho has sent CONNECT by now)."""
        assert self._loop is not None
        sock = self.client.socket()
        if sock is None:
            raise ConnectionError("the connection closed during the handshake")
        self._fd = sock.fileno()
        self.client.on_socket_close = self._on_socket_close
        self.client.on_socket_register_write = self._on_register_write
        self.client.on_socket_unregister_write = self._on_unregister_write
        self._loop.add_reader(self._fd, self._guarded, self._readable)
        if self.client.want_write():            # CONNECT only partly sent by the worker thread
            self._loop.add_writer(self._fd, self._guarded, self.client.loop_write)
        self._misc = self._loop.call_later(self.misc_interval_s, self._keepalive)

    def _detach(self) -> None:
        fd, self._fd = self._fd, None
        misc, self._misc = self._misc, None
        if misc is not None:
            misc.cancel()
        if fd is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(fd)
            self._loop.remove_writer(fd)

    def _readable(self) -> None:
        self.client.loop_read()
        # TLS: a record already decrypted into the SSL object does not make the socket readable
        # again, so read it now (paho's own loop checks pending() the same way).
        sock = self.client.socket()
        if not isinstance(sock, ssl.SSLSocket):
            return
        for _ in range(_PENDING_TLS_READS):
            if self.client.socket() is None or not sock.pending():   # closed, or all read
                return
            self.client.loop_read()
        assert self._loop is not None
        self._loop.call_soon(self._guarded, self._readable)   # still more: after other work

    def _keepalive(self) -> None:
        self._misc = None
        if self._guarded(self.client.loop_misc) == mqtt.MQTT_ERR_SUCCESS and self._fd is not None:
            assert self._loop is not None
            self._misc = self._loop.call_later(self.misc_interval_s, self._keepalive)

    def _guarded(self, step: Callable[[], Any]) -> Any:
        """Run one paho step; an exception from it ends this connection instead of the loop."""
        try:
            return step()
        except Exception as exc:   # noqa: BLE001 - paho may raise from a broken socket
            log.debug("MQTT connection failed in paho", exc_info=True)
            self.declare_lost(f"connection lost ({exc.__class__.__name__}: {exc})")
            return None

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._detach()          # before paho closes it: the descriptor may be reused

    def _on_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if self._fd is not None and self._loop is not None:
            self._loop.add_writer(self._fd, self._guarded, self.client.loop_write)

    def _on_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if self._fd is not None and self._loop is not None:
            self._loop.remove_writer(self._fd)

    # -- publishing ----------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, *, retain: bool = False,
                content_type: str | None = None) -> asyncio.Future[None]:
        """Send with QoS 1; the returned future completes on the broker's PUBACK."""
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        # Fire-and-forget publishes (status, units) must not log "exception never retrieved"
        # when the link drops; a caller that awaits the future still gets the exception.
        fut.add_done_callback(_mark_retrieved)
        if self.lost.is_set():
            fut.set_exception(LinkLost(self.lost_reason))
            return fut
        props = None
        if self.protocol == mqtt.MQTTv5 and content_type:
            props = Properties(PacketTypes.PUBLISH)
            props.ContentType = content_type
        info = self.client.publish(topic, payload, qos=1, retain=retain, properties=props)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            fut.set_exception(LinkLost(f"publish failed: {mqtt.error_string(info.rc)}"))
            return fut
        early = self._early.pop(info.mid, None)
        if early is None:
            self._pending[info.mid] = fut
        else:
            self._settle(fut, *early)
        return fut

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: ReasonCode,
                    properties: Properties | None) -> None:
        code = getattr(reason_code, "value", 0) or 0
        text = str(reason_code)
        fut = self._pending.pop(mid, None)
        if fut is None:
            # PUBACK arrived before publish() registered the mid.
            self._early[mid] = (code, text)
            return
        self._call(self._settle, fut, code, text)

    def _settle(self, fut: asyncio.Future[None], code: int, text: str) -> None:
        self.last_ack_monotonic = time.monotonic()
        if fut.done():
            return
        if code >= 0x80:
            fut.set_exception(PublishRefused(f"broker refused the message: {text}", code))
        else:
            fut.set_result(None)

    # -- subscribing ---------------------------------------------------------------------------

    def subscribe(self, topic: str,
                  handler: Callable[[str, bytes], object]) -> asyncio.Future[None]:
        """Call ``handler(topic, payload)`` in the event loop for each message on ``topic``.
        The returned future completes on the SUBACK (the broker sends the topic's retained
        message right after it); awaiting it is optional."""
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        fut.add_done_callback(_mark_retrieved)
        self._subscriptions[topic] = handler
        for msg in [m for m in self._unclaimed if mqtt.topic_matches_sub(topic, m[0])]:
            self._unclaimed.remove(msg)
            self._call(handler, *msg)
        rc, mid = self.client.subscribe(topic, qos=1)
        if rc != mqtt.MQTT_ERR_SUCCESS or mid is None:
            fut.set_exception(LinkLost(f"subscribe failed: {mqtt.error_string(rc)}"))
        else:
            self._subacks[mid] = fut
        return fut

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      reason_codes: list[ReasonCode], properties: Properties | None) -> None:
        self._call(self._settle_subscribe, mid, [int(rc.value) for rc in reason_codes])

    def _settle_subscribe(self, mid: int, codes: list[int]) -> None:
        fut = self._subacks.pop(mid, None)
        if fut is None or fut.done():
            return
        if any(c >= 0x80 for c in codes):
            fut.set_exception(PublishRefused("broker refused the subscription", codes[0]))
        else:
            fut.set_result(None)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        claimed = False
        for pattern, handler in list(self._subscriptions.items()):
            if mqtt.topic_matches_sub(pattern, msg.topic):
                self._call(handler, msg.topic, bytes(msg.payload))
                claimed = True
        if (not claimed and len(self._unclaimed) < _MAX_UNCLAIMED
                and sum(len(p) for _, p in self._unclaimed) + len(msg.payload)
                <= _MAX_UNCLAIMED_BYTES):
            self._unclaimed.append((msg.topic, bytes(msg.payload)))

    # -- plumbing ------------------------------------------------------------------------------

    def _call(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn`` in the event loop soon, outside paho's callback (which holds paho's locks)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:    # paho's connect() in the worker thread (a failed first write)
            running = None
        try:
            if running is loop:
                loop.call_soon(fn, *args)
            else:
                loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:   # loop closing during shutdown
            pass


def _mark_retrieved(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()
