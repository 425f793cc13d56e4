"""A stand-in clinic for the central tests that speaks the wire contract directly.

It numbers readings like the agent, publishes batches with ``agent.publish.wire.encode_batch``,
and (``release_on_ack``) keeps each batch until the central ack covers it and sends again what
stays unacknowledged: the agent's release-on-central-ack, as the contract in docs/mqtt.md says.
Below it, the config and buffer reading of the real agent releasing on the central ack.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from helpers import buffer_summary

from agent.publish.topics import Topics
from agent.publish.wire import decode_ack, encode_batch
from agent.readings import StoredReading


@dataclass
class FakeClinic:
    client: mqtt.Client
    site: str
    prefix: str = "clinics"
    boot: str = "0123456789abcdef"
    next_seq: int = 1
    acked: int = 0
    sent: dict[int, StoredReading] = field(default_factory=dict)   # every reading ever made, by seq
    unacked: dict[int, tuple[float, bytes, int]] = field(default_factory=dict)  # first seq -> (sent at, payload, last)

    def __post_init__(self) -> None:
        self.topics = Topics(self.prefix, self.site)
        self._lock = threading.Lock()
        self.client.message_callback_add(self.topics.ack, self._on_ack)
        self.client.subscribe(self.topics.ack, qos=1)
        # Again after every reconnection: a broker killed with -9 may come back without the session.
        self.client.on_connect = lambda c, *a: c.subscribe(self.topics.ack, qos=1)

    def _on_ack(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        seq = decode_ack(bytes(msg.payload))
        with self._lock:
            self.acked = max(self.acked, seq)
            for first in [f for f, (_, _, last) in self.unacked.items() if last <= seq]:
                del self.unacked[first]

    def readings(self, metrics: list[tuple[str, Any]], *, device: str = "ups", ts: float | None = None) -> list[StoredReading]:
        ts = time.time() if ts is None else ts
        out = []
        for name, value in metrics:
            r = StoredReading(self.next_seq, device, name, value, "", ts, 0)
            self.sent[r.seq] = r
            self.next_seq += 1
            out.append(r)
        return out

    def publish(self, rs: list[StoredReading], *, lane: str = "readings", compress: bool = True,
                track: bool = True) -> None:
        enc = encode_batch(rs, site=self.site, boot=self.boot, compress=compress)
        topic = self.topics.readings if lane == "readings" else self.topics.backlog
        if track:
            with self._lock:
                self.unacked[rs[0].seq] = (time.monotonic(), enc.payload, rs[-1].seq)
        self.client.publish(topic, enc.payload, qos=1)

    def resend_unacked(self, older_than_s: float) -> int:
        now = time.monotonic()
        with self._lock:
            due = [(f, p) for f, (t, p, _) in self.unacked.items() if now - t >= older_than_s]
            for f, p in due:
                self.unacked[f] = (now, p, self.unacked[f][2])
        for _, p in due:
            self.client.publish(self.topics.backlog, p, qos=1)
        return len(due)


# -- the real agent, releasing on the central ack --------------------------------------------------

def central_agent_config(central: Any, state_dir: Path, site: str, *, timeout_s: float = 2,
                         interval_s: float = 0.2, devices: int = 1, disks: int = 0,
                         polling: bool = True, status_interval_s: float = 1) -> str:
    """An agent of ``site`` on the central stack's broker with ``buffer.release = "central"``:
    ``devices`` host devices (each poll about 10 readings, 2 more per entry of ``disks``)."""
    paths = ", ".join(f'"{state_dir.parent}"' for _ in range(disks))
    entries = "".join(f"""
[[devices]]
name = "pc{i}"
kind = "host"
interval_s = {interval_s}
temperatures = false
enabled = {"true" if polling else "false"}
{f"disk_paths = [{paths}]" if disks else ""}
""" for i in range(devices))
    return f"""
site_id = "{site}"
state_dir = "{state_dir}"
status_interval_s = {status_interval_s}
[mqtt]
host = "127.0.0.1"
port = {central.broker_port}
tls = false
username = "{site}"
password = "{central.site_password(site)}"
reconnect_max_s = 1
keepalive_s = 10
[buffer]
release = "central"
central_ack_timeout_s = {timeout_s}
{entries}"""


def buffer_seqs(state_dir: Path) -> tuple[int, int, int]:
    """(readings in the clinic's buffer file, lowest seq there or 0, last seq numbered): asked
    of the running agent (it holds the file), read-only from the file when it is stopped."""
    s = buffer_summary(state_dir)
    if s is None:
        return 0, 0, 0
    return int(s["depth"]), int(s["first_seq"] or 0), int(s["last_seq"])


def agent_connects(state_dir: Path) -> int:
    """How many times the agent connected to the broker, from its status.json (0: not yet)."""
    try:
        doc = json.loads((state_dir / "status.json").read_text())
    except (OSError, ValueError):
        return 0
    broker = doc.get("broker") or {}
    return int(broker.get("connects", 0)) if broker.get("connected") else 0
