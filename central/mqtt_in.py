"""The ingest's MQTT session: MQTT 5, persistent, shared subscriptions, acknowledged by hand.

A message is PUBACKed only after its batch is in both stores (``ack``), so a message the ingest
received but had not stored when it died is delivered again (the session outlives the process
for ``session_expiry_s``). The broker sends at most ``receive_maximum`` unacknowledged messages:
that bounds the ingest's memory and leaves the rest queued at the broker.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from agent.publish.topics import CENTRAL_SHARED_LEAVES, CENTRAL_STATE_LEAVES
from central.commands import COMMAND_LEAVES
from central.config import MqttConfig
from central.pipeline import Inbound

log = logging.getLogger(__name__)


def subscriptions(cfg: MqttConfig) -> list[str]:
    """Readings, backlog, events, summaries shared among the group; retained state read by each.

    Mosquitto 2.0 does not restore shared subscriptions from its persistence file: what sites
    publish between a broker restart and the ingests' reconnection is not queued for them. Sites
    that release their buffer on the central ack send it again; with sites that release on the
    broker's PUBACK, run one ingest with ``shared = false`` (docs/central.md).
    """
    share = f"$share/{cfg.group}/" if cfg.shared else ""
    shared = [f"{share}{cfg.topic_prefix}/+/{leaf}"
              for leaf in (*CENTRAL_SHARED_LEAVES, *COMMAND_LEAVES)]
    return shared + [f"{cfg.topic_prefix}/+/{leaf}" for leaf in CENTRAL_STATE_LEAVES]


class IngestSession:
    def __init__(self, cfg: MqttConfig) -> None:
        self.cfg = cfg
        self.inbox: queue.Queue[tuple[int, Inbound]] = queue.Queue(maxsize=cfg.receive_maximum * 2)
        self.generation = 0            # +1 per connection: a mid is only valid on its connection
        self.connected = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
                        protocol=mqtt.MQTTv5, manual_ack=True)
        if cfg.username:
            c.username_pw_set(cfg.username, cfg.password)
        if cfg.tls:
            c.tls_set(ca_certs=cfg.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        c.reconnect_delay_set(0.2, 10)  # type: ignore[arg-type]  # paho takes fractions; says int
        self.client = c

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.cfg.session_expiry_s
        props.ReceiveMaximum = self.cfg.receive_maximum
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s,
                                  clean_start=False, properties=props)
        self.client.loop_start()

    def stop(self) -> None:
        # A clean DISCONNECT keeps the session (expiry > 0): what is queued waits for the next
        # start.
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any,
                    props: Any = None) -> None:
        if rc.is_failure:
            log.error("broker %s:%d refused the ingest: %s", self.cfg.host, self.cfg.port, rc)
            return
        self.generation += 1
        log.info("connected to %s:%d as %s (session present: %s)", self.cfg.host, self.cfg.port,
                 self.cfg.client_id, flags.session_present)
        client.subscribe([(t, SubscribeOptions(qos=1)) for t in subscriptions(self.cfg)])

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, codes: Any,
                      props: Any = None) -> None:
        refused = [c for c in codes if c.is_failure]
        if refused:
            log.error("the broker refused %d subscription(s): %s (check its ACL for this user)",
                      len(refused), refused[0])
        self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any,
                       props: Any = None) -> None:
        self.connected.clear()
        log.warning("disconnected from the broker (%s); reconnecting", rc)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.inbox.put((self.generation, Inbound(msg.topic, bytes(msg.payload), msg.mid, msg.qos,
                                                 bool(msg.retain))))

    def ack(self, items: list[tuple[int, Inbound]]) -> None:
        """PUBACK messages whose batch is stored; those of an earlier connection come again
        anyway."""
        gen = self.generation
        for g, m in items:
            if m.qos > 0 and g == gen:
                self.client.ack(m.mid, m.qos)

    def publish_retained(self, topic: str, payload: bytes, timeout_s: float = 10.0) -> bool:
        info = self.client.publish(topic, payload, qos=1, retain=True)
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()
