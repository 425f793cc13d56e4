#!/usr/bin/env python3
"""The agent end to end against a simulated clinic, all on this machine's loopback.

Starts a local Mosquitto (the "central broker"), net-snmp snmpd (the clinic router), a Modbus
gateway with a UPS and a mains meter behind it (scripts/sim_ups.py, with power cuts), writes a demo
config, runs the agent, and prints the readings as the central side receives them. With
``--outage`` it also stops the broker for a while to show readings buffered and sent afterwards.
The broker is the central one (scripts/demo_central.py): with VictoriaMetrics, PostgreSQL and the
ingest beside it, and the clinic's mains voltage queried from the store every 15 s
(``--no-central`` for a plain broker only).

    scripts/demo.sh                      # runs until Ctrl-C
    scripts/demo.sh --seconds 60 --outage 15
"""

from __future__ import annotations

import argparse
import getpass
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

from agent.publish.wire import decode_payload, iter_readings  # noqa: E402
from loopback import find, free_port, wait_port  # noqa: E402
import demo_central  # noqa: E402

CENTRAL_SITE = "DEMO0001"   # the site_id of write_config

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
             "--community", self.community, "--workdir", str(self.workdir / "snmpd")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(self.modbus_port)

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

[[devices]]
name = "router"
kind = "snmp"
host = "127.0.0.1"
port = {self.snmp_port}
version = "2c"
community = "{self.community}"
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


def watch(port: int, stop: threading.Event, auth: tuple[str, str] | None = None) -> mqtt.Client:
    """Print what the central side receives, one line per device poll."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="demo-centre",
                         clean_session=False)
    if auth is not None:
        client.username_pw_set(*auth)

    def on_connect(c, u, f, rc, p=None):
        c.subscribe("clinics/#", qos=1)

    def on_message(c, u, msg):
        lane = msg.topic.rsplit("/", 1)[-1]
        if lane == "status":
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
                    help="stop the broker for this many seconds, 20 s into the demo")
    ap.add_argument("--workdir", default=str(ROOT / "demo-state"))
    ap.add_argument("--no-central", action="store_true",
                    help="a plain local broker only: no VictoriaMetrics, PostgreSQL, ingest")
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
            if args.outage and not outage_done and elapsed > 20:
                print(f"\n*** broker down for {args.outage:g}s: the agent keeps polling into its "
                      "buffer ***\n", flush=True)
                demo.stop_broker()
                stop.wait(args.outage)
                demo.start_broker()
                print("\n*** broker back: the backlog arrives behind live readings ***\n", flush=True)
                outage_done = True
            stop.wait(0.5)
        watcher.loop_stop()
    except KeyboardInterrupt:
        pass
    finally:
        demo.stop_all()
        if demo.central is not None:
            demo.central.close()
    print(f"\ndemo stopped; files in {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
