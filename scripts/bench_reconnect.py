#!/usr/bin/env python3
"""One clinic: seconds from the broker coming back to the clinic's first reading arriving
(issue 14; target 2 s, median of 20 trials, default config). Results in docs/benchmarks.md.

    .venv/bin/python scripts/bench_reconnect.py --trials 20 --outage 20
    .venv/bin/python scripts/bench_reconnect.py --trials 5 --outage 60
    .venv/bin/python scripts/bench_reconnect.py --trials 10 --outage 20 --tls   # as in the field

A real Mosquitto on loopback and the real agent process with the shipped reconnect settings
(only site, state dir and the broker's address set; one host device, polled every 10 s by
default). ``--tls``: the agent connects over TLS, verifying the broker's certificate (a test CA,
tests/pki.py), as a clinic does. Each trial stops the broker for ``--outage`` seconds and
starts it again; the clock starts when the broker's port accepts connections and stops when
the first reading (live or backlog) reaches a subscriber that reconnects every 20 ms.
"""

from __future__ import annotations

import argparse
import getpass
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loopback import find, free_port  # noqa: E402

SITE = "BENCH0001"


class Broker:
    """A plain listener (the subscriber, and the agent without ``--tls``), and a TLS one."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.tls_port = free_port()
        self.conf = workdir / "mosquitto.conf"
        sys.path.insert(0, str(ROOT / "tests"))
        from pki import make_pki
        self.pki = make_pki(workdir / "pki")
        # Persistence keeps the subscriber's session across the restarts: nothing is missed.
        self.conf.write_text(f"per_listener_settings true\n"
                             f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                             f"listener {self.tls_port} 127.0.0.1\nallow_anonymous true\n"
                             f"cafile {self.pki.ca}\ncertfile {self.pki.cert}\n"
                             f"keyfile {self.pki.key}\n"
                             f"persistence true\npersistence_location {workdir}/\n"
                             f"max_queued_messages 0\nuser {getpass.getuser()}\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start; the wall-clock time its port first accepted a connection."""
        self.proc = subprocess.Popen([find("mosquitto"), "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.05).close()
                return time.time()
            except OSError:
                time.sleep(0.002)
        raise SystemExit("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
            self.proc = None


class Subscriber:
    """Records the arrival time of every reading message of the site."""

    def __init__(self, port: int) -> None:
        self.arrivals: list[float] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-subscriber",
                                  protocol=mqtt.MQTTv311, clean_session=False)
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(
            [(f"clinics/{SITE}/readings", 1), (f"clinics/{SITE}/backlog", 1)])
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.02, 0.02)  # type: ignore[arg-type]  # takes floats
        self.client.connect_async("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.arrivals.append(time.time())

    def first_after(self, t: float, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                later = [a for a in self.arrivals if a > t]
            if later:
                return min(later)
            time.sleep(0.005)
        return None

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--outage", type=float, default=20.0, help="seconds the broker is down")
    p.add_argument("--interval", type=float, default=10.0, help="the device's poll interval")
    p.add_argument("--python", default=sys.executable, help="the agent's interpreter")
    p.add_argument("--keep", action="store_true", help="keep the work directory (agent log)")
    p.add_argument("--tls", action="store_true", help="the agent connects over TLS")
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-reconnect-")
    try:
        work = Path(tmp)
        broker = Broker(work)
        broker.start()
        config = work / "agent.toml"
        config.write_text(f'site_id = "{SITE}"\nstate_dir = "{work / "state"}"\n'
                          + ('log_level = "debug"\n' if args.keep else "") +
                          '[mqtt]\nhost = "127.0.0.1"\n'
                          + (f'port = {broker.tls_port}\ntls = true\nca_file = "{broker.pki.ca}"\n'
                             if args.tls else f"port = {broker.port}\ntls = false\n")
                          +
                          f'[[devices]]\nname = "pc"\nkind = "host"\n'
                          f"interval_s = {args.interval}\n")
        log = open(work / "agent.log", "wb")  # noqa: SIM115 - the agent writes it until the end
        agent = subprocess.Popen([args.python, "-m", "agent", "run", "-c", str(config)],
                                 stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        sub = Subscriber(broker.port)
        results: list[float] = []
        try:
            if sub.first_after(0, 30) is None:
                raise SystemExit("no reading from the agent; see its log")
            for trial in range(1, args.trials + 1):
                broker.stop()
                time.sleep(args.outage)
                back = broker.start()
                first = sub.first_after(back, 600)
                if first is None:
                    raise SystemExit(f"trial {trial}: no reading within 600 s")
                results.append(first - back)
                print(f"trial {trial:2d}: first reading {first - back:6.2f} s after the broker "
                      f"returned", flush=True)
                # the connection must stay up STABLE_S for the backoff to reset, as in the field
                # where outages are minutes apart; wait a little more than that
                time.sleep(32)
        finally:
            sub.stop()
            agent.send_signal(signal.SIGTERM)
            agent.wait(20)
            broker.stop()
        results.sort()
        tls = ", TLS" if args.tls else ""
        print(f"\n{len(results)} trials, outage {args.outage:g} s{tls}: median "
              f"{statistics.median(results):.2f} s, min {results[0]:.2f}, "
              f"p90 {results[int(0.9 * (len(results) - 1))]:.2f}, max {results[-1]:.2f}")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
