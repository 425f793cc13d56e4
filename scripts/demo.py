#!/usr/bin/env python3
"""The agent end to end against a simulated clinic, all on this machine's loopback.

Starts a local Mosquitto (the "central broker"), net-snmp snmpd (the clinic router), a Modbus
gateway with a UPS and a mains meter behind it (scripts/sim_ups.py, with power cuts), writes a demo
config, runs the agent, and prints what the central side receives: the readings of each poll,
and the power and internet events the agent decides at the clinic (``EVENT`` lines: a raise when
a problem begins, a clear when it ends, with its duration; ``ACTIVE``: what is on now).

The UPS's power cuts come every 30-90 s and last 10-40 s: each shows as a ``mains_lost`` raise and
clear. With ``--outage`` the clinic also loses its link for that long: the router's WAN goes down
(an SNMP SET on the simulated router) and the broker is unreachable (stopped). Nothing arrives
meanwhile; when the link is back, the events decided during it arrive first (``wan_down``, timed
at the clinic), then live readings, with the backlog behind them.

The broker is the central one (scripts/demo_central.py): with VictoriaMetrics, PostgreSQL and the
ingest beside it, and the clinic's mains voltage queried from the store every 15 s. Beside them:

* the fleet web page (``clinic-central web``): its URL and a demo operator's random password are
  printed once at the start (``fleet page http://127.0.0.1:PORT  user demo  password ...``); the
  clinic is there with its name, state and municipality (imported with ``clinic-central sites
  import``), on battery or without internet as the events say;
* the alerts: ``clinic-central alerts`` posts each event to a real Prometheus Alertmanager on the
  shipped route (conf/alertmanager.yml, with 1 s and 2 s timings instead of 30 s and 2 min), and
  what it notifies is printed as ``ALERT`` lines, with the clinic's times::

      ALERT    firing   ups mains_lost since 14:03:12 (clinic time)  [critical -> on-call]
      ALERT    resolved ups mains_lost 14:03:12-14:03:37, 25 s  [critical -> on-call]

  The same start as the ``EVENT`` line, whenever the centre heard of it. "told late": the raise
  and its clear reached the centre together (after an outage: the ingest reconnects to the broker
  with its own backoff, up to 10 s), so nobody could be told while it was on. The route's e-mails
  go to a local sink (central/mail.txt in the workdir), never out.

``--no-central`` for a plain broker only. A central piece whose binary is missing is said on the
screen and left out; the demo goes on without it.

    scripts/demo.sh                      # runs until Ctrl-C
    scripts/demo.sh --seconds 90 --outage 20
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.events.model import CLEAR, Event  # noqa: E402
from agent.events.render import active_lines, event_row  # noqa: E402
from agent.events.wire import decode_active, decode_events  # noqa: E402
from agent.i18n import Messages, language  # noqa: E402
from agent.publish.wire import decode_payload, iter_readings  # noqa: E402
from loopback import find, free_port, wait_port  # noqa: E402
import demo_central  # noqa: E402

CENTRAL_SITE = "DEMO0001"   # the site_id of write_config
from sim_router import wan_oid  # noqa: E402

SHOWN = ("poll.status", "poll.reason", "system.uptime_s", "input.voltage", "output.load",
         "battery.charge", "battery.runtime", "on_battery", "mode", "voltage", "power",
         "cpu.percent", "mem.percent", "disk.percent", "buffer.depth", "mqtt.connected")


class Demo:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen] = []
        self.broker_port = free_port()
        self.modbus_port = free_port()
        self.snmp_port = free_port(socket.SOCK_DGRAM)
        self.community = "demo-clinic"
        self.wan_switch = "demo-wan-switch"   # lets the demo take the router's WAN down (SET)
        self.broker: subprocess.Popen | None = None
        # The central side (broker, stores, ingest), when it runs: the agent then talks to its broker.
        self.central: demo_central.CentralStack | None = None

    def start_broker(self) -> None:
        if self.central is not None:
            if not self.central.broker.proc.alive():
                self.central.broker.start()
            return
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(f"listener {self.broker_port} 127.0.0.1\nallow_anonymous true\n"
                        f"persistence true\npersistence_location {self.workdir}/\n"
                        f"user {getpass.getuser()}\n")
        self.broker = subprocess.Popen([find("mosquitto"), "-c", str(conf)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.broker_port)

    def stop_broker(self) -> None:
        if self.central is not None:
            self.central.broker.stop()
            return
        if self.broker:
            self.broker.terminate()
            self.broker.wait()

    def start_equipment(self) -> None:
        py = sys.executable
        self.procs.append(subprocess.Popen(
            [py, str(ROOT / "scripts/sim_ups.py"), "--port", str(self.modbus_port), "--outages"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.procs.append(subprocess.Popen(
            [py, str(ROOT / "scripts/sim_router.py"), "--port", str(self.snmp_port),
             "--community", self.community, "--wan-switch", self.wan_switch,
             "--workdir", str(self.workdir / "snmpd")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(self.modbus_port)

    def set_wan(self, up: bool) -> None:
        """The router's WAN port down or up (ifOperStatus, see scripts/sim_router.py)."""
        subprocess.run([find("snmpset"), "-v2c", "-c", self.wan_switch, "-t", "2",
                        f"127.0.0.1:{self.snmp_port}", wan_oid(), "i", "1" if up else "2"],
                       check=True, capture_output=True, timeout=15)

    def write_config(self) -> Path:
        modbus = subprocess.run(
            [sys.executable, str(ROOT / "scripts/sim_ups.py"), "--port", str(self.modbus_port),
             "--print-config"], capture_output=True, text=True, check=True).stdout
        modbus = modbus.replace("interval_s = 10", "interval_s = 5")
        config = f"""# Demo config: everything on 127.0.0.1 (written by scripts/demo.py)
site_id = "DEMO0001"
state_dir = "{self.workdir / 'state'}"

[mqtt]
host = "127.0.0.1"
port = {self.broker_port}
tls = false              # a local demo broker; clinics use TLS
keepalive_s = 10
reconnect_max_s = 5
{demo_central.agent_mqtt_lines(self.central, CENTRAL_SITE) if self.central else ""}
[buffer]
backlog_kbps = 0
{demo_central.agent_buffer_lines() if self.central else ""}

[events.wan_down]        # the default 30 s ignores one lost probe round; short for the demo
raise_after_s = 5
clear_after_s = 5

[[devices]]
name = "router"
kind = "snmp"
host = "127.0.0.1"
port = {self.snmp_port}
version = "2c"
community = "{self.community}"
wan_interface = "lo"     # the simulated router's WAN port (scripts/sim_router.py --wan-switch)
interval_s = 5
timeout_s = 2

{modbus}

[[devices]]
name = "pc"
kind = "host"
interval_s = 5
"""
        path = self.workdir / "agent.toml"
        path.write_text(config)
        return path

    def start_agent(self, config: Path) -> subprocess.Popen:
        log = open(self.workdir / "agent.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "-c", str(config)],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        self.stop_broker()


class EventScreen:
    """The central side's view of events: one line per event (each once: delivery is at least
    once, so a consumer keeps one per site and id), and the active set when it changes."""

    def __init__(self) -> None:
        self.t = Messages(language(os.environ))
        self.seen: set[tuple[str, int]] = set()
        self.last_active: str | None = None

    def events(self, payload: bytes) -> None:
        msg = decode_events(payload)
        for e in msg.events:
            if (msg.site, e.id) not in self.seen:
                self.seen.add((msg.site, e.id))
                print(self.event_line(e), flush=True)

    def event_line(self, e: Event) -> str:
        when, dev, what, lasted = event_row(e, self.t)
        line = f"EVENT    {when[11:]} {dev:7} {what}" + (f", {lasted}" if lasted else "")
        # Timed at the clinic when it happened, whenever it arrives: a raise waits for its
        # minimum duration, and events decided while the link was down come when it is back.
        received = time.strftime("%H:%M:%S")
        return f"{line} (received {received})  [{e.kind} {e.cond}, id {e.id}]"

    def active(self, payload: bytes) -> None:
        shown = "; ".join(active_lines(decode_active(payload), self.t, now=time.time()))
        shown = shown or self.t("events.none_active")
        if shown != self.last_active:
            self.last_active = shown
            print(f"ACTIVE   {shown}", flush=True)


def watch(port: int, stop: threading.Event, auth: tuple[str, str] | None = None) -> mqtt.Client:
    """Print what the central side receives: one line per device poll, and per event."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="demo-centre",
                         clean_session=False)
    if auth is not None:
        client.username_pw_set(*auth)
    screen = EventScreen()
    last_status: list[str | None] = [None]

    def on_connect(c, u, f, rc, p=None):
        c.subscribe("clinics/#", qos=1)

    def on_message(c, u, msg):
        lane = msg.topic.rsplit("/", 1)[-1]
        if lane == "events":
            screen.events(msg.payload)
            return
        if msg.topic.endswith("/events/active"):
            screen.active(msg.payload)
            return
        if lane == "status":
            # The agent's heartbeat repeats "online": shown only when the state changes.
            state = json.loads(msg.payload).get("state")
            if state != last_status[0]:
                last_status[0] = state
                print(f"  [status] {msg.payload.decode()}", flush=True)
            return
        if lane not in ("readings", "backlog"):
            return
        doc = decode_payload(msg.payload)
        by_poll: dict[tuple, list] = {}
        for r in iter_readings(doc):
            by_poll.setdefault((r.device, r.ts), []).append(r)
        for (device, ts), rs in by_poll.items():
            shown = [f"{r.metric}={_fmt(r.value)}" for r in rs
                     if r.metric in SHOWN or r.metric.endswith(("oper_up", "in_bps"))][:9]
            stamp = time.strftime("%H:%M:%S", time.localtime(ts))
            print(f"{lane:8} {stamp} {device:7} seq {rs[0].seq:>6}-{rs[-1].seq:<6} "
                  + " ".join(shown), flush=True)

    client.on_connect = on_connect
    client.on_message = on_message
    client.reconnect_delay_set(0.2, 1)
    client.connect_async("127.0.0.1", port)
    client.loop_start()
    return client


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=0, help="stop after this long (0: Ctrl-C)")
    ap.add_argument("--outage", type=float, default=0,
                    help="the clinic loses its link (router WAN down, broker unreachable) for "
                         "this many seconds")
    ap.add_argument("--outage-at", type=float, default=20, metavar="SECONDS",
                    help="when the link is lost, in seconds into the demo (default 20)")
    ap.add_argument("--workdir", default=str(ROOT / "demo-state"))
    ap.add_argument("--no-central", action="store_true",
                    help="a plain local broker only: no VictoriaMetrics, PostgreSQL, ingest, "
                         "fleet page, alerts")
    args = ap.parse_args()
    workdir = Path(args.workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    demo = Demo(workdir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if not args.no_central:
            demo.central = demo_central.bring_up(workdir, CENTRAL_SITE)
        if demo.central is not None:
            demo.broker_port = demo.central.broker_port
        demo.start_broker()
        demo.start_equipment()
        config = demo.write_config()
        print(f"broker 127.0.0.1:{demo.broker_port}  router (snmpd) udp/{demo.snmp_port}  "
              f"UPS+meter (Modbus) tcp/{demo.modbus_port}\nconfig {config}\n"
              f"agent log {workdir / 'agent.log'}\n", flush=True)
        watcher = watch(demo.broker_port, stop,
                        demo_central.operator_auth(demo.central) if demo.central else None)
        demo.start_agent(config)
        if demo.central is not None:
            demo_central.show_queries(demo.central, CENTRAL_SITE, stop)
        start = time.monotonic()
        outage_done = False
        while not stop.is_set():
            elapsed = time.monotonic() - start
            if args.seconds and elapsed > args.seconds:
                break
            if args.outage and not outage_done and elapsed > args.outage_at:
                print(f"\n*** link lost for {args.outage:g} s: the router's WAN is down and the "
                      "broker unreachable, so nothing arrives here meanwhile. The agent keeps "
                      "polling into its buffer and decides wan_down at the clinic. ***\n",
                      flush=True)
                demo.set_wan(False)
                demo.stop_broker()
                stop.wait(args.outage)
                demo.set_wan(True)
                demo.start_broker()
                print("\n*** link back: first the events decided meanwhile (wan_down raised, "
                      "timed at the clinic), then the readings held during the outage "
                      "('backlog' lines, oldest first, within the backlog budget) beside new "
                      "polls ('readings' lines), and the wan_down clear once the WAN has been "
                      "up 5 s ***\n", flush=True)
                outage_done = True
            stop.wait(0.5)
        watcher.loop_stop()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()      # the central queries first: their stores are about to stop
        demo.stop_all()
        if demo.central is not None:
            demo.central.close()
    print(f"\ndemo stopped; files in {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
