"""A simulated clinic for end-to-end event tests, and what the central side sees of its events.

    clinic = Clinic(broker, recorder, modbus_server, router, workdir)   # real peers, loopback
    agent = agent_process(clinic.config())                              # the agent, a process
    at = clinic.power_cut()                     # the UPS goes on battery; returns the wall time
    clinic.centre.wait_for("raise", "mains_lost")

* ``Router``: net-snmp snmpd (the router) whose WAN link (``lo``, polled as ``if.wan.*``) can be
  taken down and up with an SNMP SET of its ifOperStatus (an ``override -rw`` of that one OID,
  writable with a community of its own), as a router's WAN port would go down and up.
* ``Centre``: every ``events`` message the subscriber received (schema-checked), de-duplicated
  by ``(site, id)`` as docs/events.md asks of a consumer, and the retained active set as a
  dashboard connecting now would read it.
* Times: the test notes the wall time of each change it makes; an event's ``start``/``end`` is
  the first poll that showed the change, so it lies within a poll interval (plus the poll's own
  duration) of that time.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from consumer import readings_from, validate
from fixtures.modbus import ModbusTestServer
from fixtures.mosquitto import Broker, Recorder
from fixtures.snmp import Snmpd
from helpers import require_binary, wait_until
from paho.mqtt.enums import CallbackAPIVersion

from agent.events.model import Active, Event
from agent.events.wire import decode_active, decode_events

SITE = "EVT0001"
PREFIX = "clinics"
POLL_S = 0.5                 # every device's poll interval: event times are within this
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"
ON_BATTERY_TOTAL = 90061     # the simulator's on-battery counter before the first cut (s)


def loopback_ifindex() -> int:
    return int(Path("/sys/class/net/lo/ifindex").read_text())


class Router:
    """snmpd as the clinic router; its WAN is this machine's ``lo`` (ifOperStatus settable)."""

    def __init__(self, workdir: Path) -> None:
        self.index = loopback_ifindex()
        self.rw_community = "clinic-test-wan-switch"
        oid = f".{IF_OPER_STATUS}.{self.index}"
        self.snmpd = Snmpd(require_binary("snmpd"), workdir, extra_conf=(
            f"rwcommunity {self.rw_community} 127.0.0.1 {oid}\n"
            f"override -rw {oid} integer 1\n"))
        self.snmpset = require_binary("snmpset")

    def start(self) -> None:
        self.snmpd.start()

    def stop(self) -> None:
        self.snmpd.stop()

    def set_wan(self, up: bool) -> None:
        """ifOperStatus of the WAN: 1 up, 2 down."""
        subprocess.run([self.snmpset, "-v2c", "-c", self.rw_community, "-On", "-t", "2",
                        self.snmpd.address, f".{IF_OPER_STATUS}.{self.index}", "i",
                        "1" if up else "2"], check=True, capture_output=True, timeout=10)

    def device_toml(self) -> str:
        return self.snmpd.device_toml(interval_s=POLL_S, timeout_s=0.4, wan_interface="lo")


class Centre:
    """The central side's view of the site's events (a consumer de-duplicating by id)."""

    def __init__(self, broker: Broker, recorder: Recorder) -> None:
        self.broker = broker
        self.recorder = recorder
        self.events_topic = f"{PREFIX}/{SITE}/events"
        self.active_topic = f"{PREFIX}/{SITE}/events/active"

    def events(self) -> list[Event]:
        """Every event received once, by id (a duplicate delivery must be the same event)."""
        seen: dict[tuple[str, int], Event] = {}
        for m in self.recorder.snapshot():
            if m.topic != self.events_topic:
                continue
            validate("events", json.loads(m.payload))
            msg = decode_events(m.payload)
            for e in msg.events:
                prior = seen.setdefault((msg.site, e.id), e)
                assert prior == e, f"event {e.id} delivered as two different events: {prior}, {e}"
        return sorted(seen.values(), key=lambda e: e.id)

    def received(self, kind: str, cond: str, dev: str | None = None) -> list[Event]:
        return [e for e in self.events()
                if e.kind == kind and e.cond == cond and dev in (None, e.dev)]

    def wait_for(self, kind: str, cond: str, *, n: int = 1, timeout: float = 20) -> Event:
        """The ``n``-th ``kind`` event of ``cond`` (waiting for it)."""
        got: list[Event] = []

        def arrived() -> bool:
            got[:] = self.received(kind, cond)
            return len(got) >= n
        wait_until(arrived, timeout=timeout, what=f"{kind} {cond} #{n} at the centre")
        return got[n - 1]

    def retained_active(self, timeout: float = 1) -> list[Active] | None:
        """The active set a dashboard connecting now gets (the retained message; None if there
        is none yet)."""
        got: list[bytes] = []
        arrived = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)

        def on_connect(c: mqtt.Client, *_: Any) -> None:
            c.subscribe(self.active_topic, qos=1)

        def on_message(c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
            if msg.retain:
                got.append(bytes(msg.payload))
                arrived.set()
        client.on_connect = on_connect
        client.on_message = on_message
        client.connect("127.0.0.1", self.broker.port, keepalive=10)
        client.loop_start()
        try:
            if not arrived.wait(timeout):
                return None
        finally:
            client.loop_stop()
            client.disconnect()
        validate("events_active", json.loads(got[0]))
        return decode_active(got[0])

    def wait_active(self, expected: set[tuple[str, str]], timeout: float = 20) -> list[Active]:
        """Wait until the retained active set is exactly ``expected`` ((dev, cond) pairs)."""
        last: list[list[Active] | None] = [None]

        def right() -> bool:
            last[0] = self.retained_active()
            return last[0] is not None and {(a.dev, a.cond) for a in last[0]} == expected
        wait_until(right, timeout=timeout, interval=0.2,
                   what=f"the retained active set to be {sorted(expected)} (last: {last})")
        return last[0] or []

    def wait_seen(self, dev: str, metric: str, value: Any, *, since: float, held_s: float,
                  timeout: float = 20) -> None:
        """Wait until the agent has read ``value`` for ``held_s`` seconds from ``since`` (its
        readings arrived live): the level has been observed that long, whatever happens next."""
        def held() -> bool:
            for _, r in readings_from(self.recorder.snapshot(), validate_schema=False):
                if r.device == dev and r.metric == metric and r.ts >= since + held_s and \
                        r.value == value:
                    return True
            return False
        wait_until(held, timeout=timeout, interval=0.1,
                   what=f"{dev} {metric}={value} to be read for {held_s:g} s")


class Mark:
    """When the test changed something: wall time (what events carry) and monotonic time (what
    the simulator stamps its requests with)."""

    def __init__(self) -> None:
        self.wall = time.time()
        self.mono = time.monotonic()


def until(wall: float) -> None:
    """Wait for a scripted instant of the clinic's day (the test's clock): for what happens
    while the agent is not running, which no condition at the agent can show."""
    wait_until(lambda: time.time() >= wall, timeout=max(wall - time.time(), 0) + 5,
               interval=0.02, what=f"the script's time {wall:.3f}")


def wait_polled(modbus: ModbusTestServer, after: Mark, held_s: float, *, unit: int = 1,
                timeout: float = 20) -> None:
    """Wait until the agent polled ``unit`` at least ``held_s`` after ``after``: it has seen the
    level the test set for that long (works with the broker down, unlike readings)."""
    wait_until(lambda: any(r.unit == unit and r.t >= after.mono + held_s
                           for r in modbus.requests),
               timeout=timeout, interval=0.05, what=f"a poll of unit {unit} {held_s:g} s later")


def agent_config(state_dir: Path, broker_port: int, devices_toml: str, *,
                 events_toml: str = "") -> str:
    """An agent with fast polls and short event timings (docs/events.md: every rule's times)."""
    return f"""
site_id = "{SITE}"
state_dir = "{state_dir}"
status_interval_s = 0.5

[mqtt]
host = "127.0.0.1"
port = {broker_port}
tls = false
keepalive_s = 2
reconnect_max_s = 1

[events.mains_lost]
raise_after_s = 1
clear_after_s = 1
[events.voltage]
raise_after_s = 1
clear_after_s = 1
[events.wan_down]
raise_after_s = 1
clear_after_s = 1
[events.battery_low]
raise_after_s = 1
{events_toml}

{devices_toml}
"""


def ups_toml(modbus: ModbusTestServer) -> str:
    """The simulator's UPS through its brand profile (common names: on_battery, battery.low...)."""
    return (f'[[devices]]\nname = "ups"\nkind = "modbus"\nhost = "{modbus.host}"\n'
            f'port = {modbus.port}\nunit_id = 1\nprofile = "generic-ups"\n'
            f"interval_s = {POLL_S}\ntimeout_s = 0.4\n")
