#!/usr/bin/env python3
"""Benchmarks for docs/benchmarks.md. Everything runs on loopback (the workload inside a network
namespace this script creates, so snmpd can serve a 24-interface router made of dummy links).

    .venv/bin/python scripts/bench.py store                 # store commit rate
    .venv/bin/python scripts/bench.py drain --readings 2500000   # 3-day backlog drain to Mosquitto
    sudo .venv/bin/python scripts/bench.py workload --minutes 10  # RSS, CPU, bytes per reading

``workload`` needs root (ip netns); it polls one router (24 interfaces, net-snmp snmpd), one UPS
and one meter (pymodbus simulator) every 10 s and measures the agent process from /proc: CPU,
RSS and the bytes it writes to disk (``write_bytes``); ``--no-events`` runs it with the events
engine off, to compare.
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
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.readings import Reading  # noqa: E402
from agent.store.outbox import ReadingStore  # noqa: E402
from agent.publish.wire import decode_payload, iter_readings  # noqa: E402
from loopback import find, free_port, wait_port  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK   # utime + stime


def proc_write_bytes(pid: int) -> int:
    """Bytes the process sent to the block layer (its writes to the clinic PC's flash)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError(f"no write_bytes in /proc/{pid}/io")


def proc_rss_mib(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / (1 << 20)


class Counter:
    """Subscribes to a site's readings and backlog and counts readings and bytes, by lane."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        self.lock = threading.Lock()
        self.readings = {"readings": 0, "backlog": 0}
        self.bytes = {"readings": 0, "backlog": 0}
        self.seqs: set[int] = set()
        self.keep_seqs = False
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{os.getpid()}",
                                  clean_session=False)
        self.client.on_connect = lambda c, *a: c.subscribe("clinics/#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        lane = msg.topic.rsplit("/", 1)[-1]
        if lane not in self.readings:
            return
        doc = decode_payload(msg.payload)
        n = sum(len(g["m"]) for g in doc["g"])
        with self.lock:
            self.readings[lane] += n
            self.bytes[lane] += len(msg.payload) + len(msg.topic)
            if self.keep_seqs:
                self.seqs.update(r.seq for r in iter_readings(doc))

    def total(self) -> int:
        with self.lock:
            return sum(self.readings.values())


def start_broker(workdir: Path, port: int, prefix: list[str] = ()) -> subprocess.Popen:
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
                    f"user {getpass.getuser()}\n")
    return subprocess.Popen([*prefix, find("mosquitto"), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def agent_config(state: Path, broker_port: int, devices: str, *, extra_buffer: str = "") -> str:
    return f"""site_id = "BENCH0001"
state_dir = "{state}"
[mqtt]
host = "127.0.0.1"
port = {broker_port}
tls = false
[buffer]
backlog_kbps = 0
{extra_buffer}
{devices}
"""


# -- store ---------------------------------------------------------------------------------------

def bench_store(args) -> dict:
    """Commit rate with one transaction per poll of ``--per-poll`` readings, synchronous=FULL."""
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        store = ReadingStore.open(Path(d) / "b.sqlite", max_bytes=1 << 40)
        polls = args.readings // args.per_poll
        batch = [Reading("router", f"if.ether{k % 24}.in_bps", 1234.5 + k, "bit/s", time.time())
                 for k in range(args.per_poll)]
        t0 = time.perf_counter()
        for _ in range(polls):
            store.commit(batch)
        dt = time.perf_counter() - t0
        store.close()
    rate = polls * args.per_poll / dt
    print(f"store: {polls * args.per_poll} readings in {polls} transactions of {args.per_poll}: "
          f"{dt:.2f} s, {rate:,.0f} readings/s")
    return {"store_readings_per_s": round(rate)}


# -- drain ---------------------------------------------------------------------------------------

def realistic_backlog(store: ReadingStore, n: int) -> None:
    """A clinic's readings as the agent stores them: router (24 interfaces), UPS, meter, PC and the
    agent itself every 10 s, values moving a little from poll to poll."""
    import random
    rng = random.Random(7)
    t = time.time() - 3 * 86400
    polls_done = 0
    while store.last_seq < n:
        i = polls_done
        router = [Reading("router", "system.uptime_s", 864000 + i * 10, "s", t)]
        for k in range(24):
            name = f"ether{k + 1}"
            router += [Reading("router", f"if.{name}.oper_up", k < 6, "", t),
                       Reading("router", f"if.{name}.in_bps", float(rng.randrange(0, 2_000_000)) if k < 6 else 0.0, "bit/s", t),
                       Reading("router", f"if.{name}.out_bps", float(rng.randrange(0, 500_000)) if k < 6 else 0.0, "bit/s", t)]
        router += [Reading("router", "poll.status", "ok", "", t),
                   Reading("router", "poll.duration_s", round(rng.uniform(0.01, 0.05), 4), "s", t)]
        ups = [Reading("ups", m, v, u, t) for m, v, u in (
            ("input.voltage", round(127 + rng.uniform(-2, 2), 1), "V"), ("input.frequency", 60.0, "Hz"),
            ("output.voltage", 127.0, "V"), ("output.load", rng.randrange(30, 45), "%"),
            ("battery.charge", 100, "%"), ("battery.voltage", 27.6, "V"),
            ("battery.runtime", rng.randrange(40, 45), "min"), ("battery.temperature", 25.0, "C"),
            ("on_battery", False, ""), ("mode", "online", ""), ("poll.status", "ok", ""),
            ("poll.duration_s", round(rng.uniform(0.005, 0.02), 4), "s"))]
        meter = [Reading("meter", m, v, u, t) for m, v, u in (
            ("voltage", round(127 + rng.uniform(-2, 2), 2), "V"), ("current", round(rng.uniform(3, 6), 2), "A"),
            ("power", round(rng.uniform(400, 700), 1), "W"), ("frequency", 60.0, "Hz"),
            ("energy", round(1234.5 + i * 0.001, 3), "kWh"), ("poll.status", "ok", ""),
            ("poll.duration_s", round(rng.uniform(0.005, 0.02), 4), "s"))]
        for poll in (router, ups, meter):
            store.commit(poll)
        polls_done += 1
        t += 10


def bench_drain(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-drain-", dir=args.dir))
    state = work / "state"
    state.mkdir()
    store = ReadingStore.open(state / "buffer.sqlite", max_bytes=1 << 40, max_age_s=0)
    t0 = time.perf_counter()
    realistic_backlog(store, args.readings)
    n = store.depth()
    store.close()
    print(f"drain: {n:,} readings prepared in {time.perf_counter() - t0:.1f} s "
          f"({os.path.getsize(state / 'buffer.sqlite') / (1 << 20):.0f} MiB)")
    port = free_port()
    broker = start_broker(work, port)
    wait_port(port)
    counter = Counter(port)
    cfg = work / "agent.toml"
    cfg.write_text(agent_config(state, port, "", extra_buffer=f'compression = "{args.compression}"\nmax_mb = 4096'))
    agent = subprocess.Popen([args.python, "-m", "agent", "run", "-c", str(cfg)], cwd=ROOT,
                             stdout=open(work / "agent.log", "wb"), stderr=subprocess.STDOUT)
    try:
        # RSS at rest: after start-up, before the broker connection drains anything.
        while counter.total() == 0:
            rss_start = proc_rss_mib(agent.pid)
            time.sleep(0.02)
        t_start = time.monotonic()
        peak = rss_start
        while counter.total() < n:
            peak = max(peak, proc_rss_mib(agent.pid))
            if time.monotonic() - t_start > args.timeout:
                raise SystemExit(f"drain did not finish in {args.timeout}s ({counter.total()} of {n})")
            time.sleep(0.05)
        dt = time.monotonic() - t_start
        with counter.lock:
            backlog_bytes = counter.bytes["backlog"]
            backlog_n = counter.readings["backlog"]
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
        broker.terminate()
        broker.wait()
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "drain_readings": n, "drain_s": round(dt, 1), "drain_readings_per_s": round(n / dt),
        "drain_rss_start_mib": round(rss_start, 1), "drain_rss_peak_mib": round(peak, 1),
        "drain_rss_growth_mib": round(peak - rss_start, 1),
        "backlog_bytes_per_reading": round(backlog_bytes / max(backlog_n, 1), 2),
    }
    print(f"drain: {n:,} readings in {dt:.1f} s = {n / dt:,.0f} readings/s; RSS {rss_start:.1f} -> "
          f"peak {peak:.1f} MiB (+{peak - rss_start:.1f}); backlog {result['backlog_bytes_per_reading']} "
          f"bytes/reading on the wire (payload + topic, compression {args.compression})")
    return result


# -- workload ------------------------------------------------------------------------------------

NETNS = f"clinicbench{os.getpid()}"     # one per run: others may be measuring too


def netns(*cmd: str) -> list[str]:
    return ["ip", "netns", "exec", NETNS, *cmd]


def setup_netns(interfaces: int) -> None:
    subprocess.run(["ip", "netns", "del", NETNS], stderr=subprocess.DEVNULL)
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    subprocess.run(netns("ip", "link", "set", "lo", "up"), check=True)
    # lo plus veth pairs (this kernel has no dummy links): 1 + 2 * 12 = 25 >= 24 interfaces.
    for k in range(1, interfaces, 2):
        a, b = f"ether{k}", f"ether{k + 1}"
        subprocess.run(netns("ip", "link", "add", a, "type", "veth", "peer", "name", b), check=True)
        for name in (a, b):
            subprocess.run(netns("ip", "link", "set", name, "up"), check=True)


def bench_workload(args) -> dict:
    if os.geteuid() != 0:
        raise SystemExit("workload needs root (it creates a network namespace)")
    setup_netns(24)
    work = Path(tempfile.mkdtemp(prefix="bench-work-", dir=args.dir))
    procs: list[subprocess.Popen] = []
    try:
        # Ports are picked outside the namespace; its loopback is empty, so they are free there.
        broker_port, modbus_port, snmp_port = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
        procs.append(start_broker(work, broker_port, netns()))
        procs.append(subprocess.Popen(netns(sys.executable, str(ROOT / "scripts/sim_ups.py"), "--port",
                                            str(modbus_port)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen(netns(sys.executable, str(ROOT / "scripts/sim_router.py"), "--port",
                                            str(snmp_port), "--community", "bench", "--workdir",
                                            str(work / "snmpd")), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        for port in (broker_port, modbus_port):   # probe inside the namespace
            subprocess.run(netns(sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT / 'scripts')!r}); "
                                 f"import loopback; loopback.wait_port({port})"), check=True)
        modbus = subprocess.run([sys.executable, str(ROOT / "scripts/sim_ups.py"), "--port",
                                 str(modbus_port), "--print-config"], capture_output=True, text=True,
                                check=True).stdout
        devices = f"""[[devices]]
name = "router"
kind = "snmp"
host = "127.0.0.1"
port = {snmp_port}
community = "bench"
interval_s = 10

{modbus}
"""
        state = work / "state"
        cfg = work / "agent.toml"
        events = "" if args.events else "[events]\nenabled = false\n"
        cfg.write_text(agent_config(state, broker_port, devices) + events)
        counter_log = work / "counter.json"
        counter = subprocess.Popen(netns(sys.executable, __file__, "_count", "--port", str(broker_port),
                                         "--out", str(counter_log), "--seconds",
                                         str(args.minutes * 60 + args.warmup + 5)))
        # The environment the systemd unit gives the agent (systemd/clinic-agent.service).
        agent = subprocess.Popen(netns("env", "MALLOC_ARENA_MAX=2", args.python, "-m", "agent", "run",
                                       "-c", str(cfg)), cwd=ROOT,
                                 stdout=open(work / "agent.log", "wb"), stderr=subprocess.STDOUT)
        procs += [agent, counter]
        time.sleep(args.warmup)   # start-up, first polls, the router's interface count learned
        cpu0, t0 = proc_cpu_s(agent.pid), time.monotonic()
        written0 = proc_write_bytes(agent.pid)
        rss = []
        while time.monotonic() - t0 < args.minutes * 60:
            rss.append(proc_rss_mib(agent.pid))
            time.sleep(5)
        cpu = proc_cpu_s(agent.pid) - cpu0
        written = proc_write_bytes(agent.pid) - written0
        minutes = (time.monotonic() - t0) / 60
        counter.wait(args.minutes * 60 + 60)
        counted = json.loads(counter_log.read_text())
        log = (work / "agent.log").read_text(errors="replace")
        statuses = log.count("WARNING")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["ip", "netns", "del", NETNS], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
    live_n = counted["readings"]["readings"]
    result = {
        "workload_minutes": round(minutes, 1),
        "rss_steady_mib": round(sorted(rss)[len(rss) // 2], 1), "rss_max_mib": round(max(rss), 1),
        "events": args.events,
        "cpu_s_per_minute": round(cpu / minutes, 4), "cpu_s_per_hour": round(cpu / minutes * 60, 2),
        "written_kib_per_minute": round(written / 1024 / minutes, 1),
        "live_readings_per_minute": round(live_n / (counted["seconds"] / 60)),
        "live_bytes_per_reading": round(counted["bytes"]["readings"] / max(live_n, 1), 2),
        "warnings_in_log": statuses,
    }
    print(json.dumps(result, indent=1))
    return result


def count_main(args) -> None:
    counter = Counter(args.port)
    t0 = time.monotonic()
    time.sleep(args.seconds)
    with counter.lock:
        Path(args.out).write_text(json.dumps({"readings": counter.readings, "bytes": counter.bytes,
                                              "seconds": time.monotonic() - t0}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=None, help="where temporary files go (default: system temp)")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter that runs the agent (default: this one); a venv with only "
                         "the agent's runtime dependencies measures what a clinic PC runs")
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("store")
    s.add_argument("--readings", type=int, default=500_000)
    s.add_argument("--per-poll", type=int, default=150)
    d = sub.add_parser("drain")
    d.add_argument("--readings", type=int, default=2_500_000)
    d.add_argument("--compression", default="zlib", choices=("zlib", "none"))
    d.add_argument("--timeout", type=float, default=900)
    w = sub.add_parser("workload")
    w.add_argument("--minutes", type=float, default=10)
    w.add_argument("--warmup", type=float, default=40)
    w.add_argument("--no-events", dest="events", action="store_false",
                   help="the agent with [events] enabled = false (to compare)")
    c = sub.add_parser("_count")
    c.add_argument("--port", type=int)
    c.add_argument("--out")
    c.add_argument("--seconds", type=float)
    args = ap.parse_args()
    if args.what == "_count":
        count_main(args)
        return 0
    {"store": bench_store, "drain": bench_drain, "workload": bench_workload}[args.what](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
