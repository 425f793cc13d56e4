#!/usr/bin/env python3
"""Benchmarks for docs/benchmarks.md. Everything runs on loopback (the workload inside a network
namespace this script creates, so snmpd can serve a 24-interface router made of dummy links).

    .venv/bin/python scripts/bench.py store                 # store commit rate
    .venv/bin/python scripts/bench.py drain --readings 2500000   # 3-day backlog drain to Mosquitto
    sudo .venv/bin/python scripts/bench.py workload --minutes 10  # RSS, CPU, disk writes, bytes per reading
    sudo .venv/bin/python scripts/bench.py workload --snmp-version 3 --remote   # v3 router, signed pushes
    .venv/bin/python scripts/bench.py idle --minutes 5      # CPU of an agent with nothing to poll
    .venv/bin/python scripts/bench.py imports               # RSS added by each thing the daemon imports

``workload`` needs root (ip netns, a loop-mounted ext4 for the state directory); it polls one
router (24 interfaces, net-snmp snmpd), one UPS and one meter (pymodbus simulator) every 10 s and
measures the agent process from /proc, and the disk writes of its state directory's file system.
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


def proc_cpu_ns(pid: int) -> int:
    """On-CPU time of the process's live threads in nanoseconds (schedstat; finer than ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass            # a thread that ended meanwhile
    return total


def proc_status(pid: int) -> dict[str, str]:
    return dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())


def proc_memory_split(pid: int) -> dict[str, float]:
    """Where the resident memory is: the heap and stacks (anon) or mapped files (code, libraries)."""
    st = proc_status(pid)
    kib = {k: int(st[k].split()[0]) for k in ("RssAnon", "RssFile", "RssShmem")}
    return {"rss_anon_mib": round(kib["RssAnon"] / 1024, 1),
            "rss_file_mib": round(kib["RssFile"] / 1024, 1), "threads": int(st["Threads"])}


def proc_write_bytes(pid: int) -> int:
    """Bytes the process (all its threads) caused to be written to storage: pages it dirtied."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError(f"no write_bytes in /proc/{pid}/io")


class LoopFilesystem:
    """A small ext4 file system on a loop device, so its writes can be counted alone.

    ``/sys/block/loopN/stat`` counts what the file system sent to the device: the agent's data,
    SQLite's WAL and checkpoints, ext4's journal and metadata; what a clinic PC's flash would see.
    """

    def __init__(self, workdir: Path, size_mib: int = 256) -> None:
        self.image = workdir / "fs.img"
        self.mountpoint = workdir / "fs"
        self.mountpoint.mkdir()
        with open(self.image, "wb") as f:
            f.truncate(size_mib << 20)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(self.image)], check=True)
        subprocess.run(["mount", "-o", "loop", str(self.image), str(self.mountpoint)], check=True)
        source = subprocess.run(["findmnt", "-n", "-o", "SOURCE", str(self.mountpoint)],
                                capture_output=True, text=True, check=True).stdout.strip()
        self.stat = Path("/sys/block") / Path(source).name / "stat"

    def written_bytes(self) -> int:
        return int(self.stat.read_text().split()[6]) * 512    # field 7: sectors written

    def close(self) -> None:
        subprocess.run(["umount", str(self.mountpoint)], check=False)


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


SITE = "BENCH0001"


def mqtt_config(broker_port: int) -> str:
    return f"""[mqtt]
host = "127.0.0.1"
port = {broker_port}
tls = false
"""


def agent_config(state: Path, broker_port: int, devices: str, *, extra_buffer: str = "",
                 remote: str = "") -> str:
    return f"""site_id = "{SITE}"
state_dir = "{state}"
{mqtt_config(broker_port)}
[buffer]
backlog_kbps = 0
{extra_buffer}
{remote}
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


# -- imports -------------------------------------------------------------------------------------

# What the daemon loads, in the order it loads it, as (what, import statement).
IMPORT_STEPS = [
    ("interpreter with asyncio (and ssl: OpenSSL)", "import asyncio, ssl"),
    ("sqlite3", "import sqlite3"),
    ("paho-mqtt", "import paho.mqtt.client"),
    ("psutil (host health)", "import psutil"),
    ("pymodbus client", "import pymodbus.client, pymodbus.pdu"),
    ("pyasn1 and pysnmp's message layer",
     "import pyasn1.codec.ber.encoder, pyasn1.codec.ber.decoder, pysnmp.proto.api"),
    ("agent: config and its validators", "import agent.config"),
    ("agent: store, forwarder, MQTT link", "import agent.store.outbox, agent.publish.forwarder"),
    ("agent: remote management (push and command checks)", "import agent.remote.service"),
    ("agent: runtime, control socket", "import agent.runtime.daemon, agent.control.server"),
    ("agent: CLI modules (imported by `run`, not used by it)", "import agent.cli"),
    ("agent: SNMP, Modbus and host sources", "import agent.sources.snmp, agent.sources.modbus, "
     "agent.sources.host, agent.sources.snmp_community"),
    ("agent: SNMPv3 (USM, OpenSSL through ctypes)",
     "import agent.sources.snmp_usm, agent.libcrypto; agent.libcrypto._openssl()"),
]
_IMPORTS_CHILD = """
import json, sys
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1]) / 1024
out = [('python -c pass', rss())]
for what, stmt in json.loads(sys.argv[1]):
    exec(stmt)
    out.append((what, rss()))
print(json.dumps(out))
"""


def bench_imports(args) -> dict:
    """RSS after each step of what the daemon imports (median of ``--runs`` fresh interpreters)."""
    runs = []
    for _ in range(args.runs):
        out = subprocess.run([args.python, "-c", _IMPORTS_CHILD, json.dumps(IMPORT_STEPS)], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
        runs.append(json.loads(out))
    rows = []
    prev = None
    for i, (what, _) in enumerate(runs[0]):
        value = sorted(r[i][1] for r in runs)[len(runs) // 2]
        rows.append({"what": what, "rss_mib": round(value, 1),
                     "added_mib": None if prev is None else round(value - prev, 1)})
        prev = value
    for row in rows:
        added = "" if row["added_mib"] is None else f"+{row['added_mib']:.1f}"
        print(f"{row['what']:58s} {row['rss_mib']:5.1f} {added:>6s}")
    return {"imports": rows}


# -- idle ----------------------------------------------------------------------------------------

def bench_idle(args) -> dict:
    """CPU and RSS of an agent with no devices, connected to a local Mosquitto: what the MQTT
    link, the timers and the store cost when nothing happens."""
    work = Path(tempfile.mkdtemp(prefix="bench-idle-", dir=args.dir))
    port = free_port()
    broker = start_broker(work, port)
    wait_port(port)
    cfg = work / "agent.toml"
    cfg.write_text(agent_config(work / "state", port, ""))
    agent = subprocess.Popen(["env", "MALLOC_ARENA_MAX=2", args.python, "-m", "agent", "run", "-c",
                              str(cfg)], cwd=ROOT, stdout=open(work / "agent.log", "wb"),
                             stderr=subprocess.STDOUT)
    try:
        time.sleep(args.warmup)
        cpu0, ns0, t0 = proc_cpu_s(agent.pid), proc_cpu_ns(agent.pid), time.monotonic()
        time.sleep(args.minutes * 60)
        cpu, ns = proc_cpu_s(agent.pid) - cpu0, proc_cpu_ns(agent.pid) - ns0
        minutes = (time.monotonic() - t0) / 60
        result = {"idle_minutes": round(minutes, 1), "idle_cpu_s_per_minute": round(cpu / minutes, 4),
                  "idle_cpu_ms_per_minute_schedstat": round(ns / 1e6 / minutes, 2),
                  "idle_rss_mib": round(proc_rss_mib(agent.pid), 1), **proc_memory_split(agent.pid)}
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
        broker.terminate()
        broker.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=1))
    return result


# -- workload ------------------------------------------------------------------------------------

NETNS = f"clinicbench{os.getpid()}"   # one per run: several people may measure at once


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
    fs: LoopFilesystem | None = None
    try:
        fs = LoopFilesystem(work)
        # Ports are picked outside the namespace; its loopback is empty, so they are free there.
        broker_port, modbus_port, snmp_port = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
        procs.append(start_broker(work, broker_port, netns()))
        procs.append(subprocess.Popen(netns(sys.executable, str(ROOT / "scripts/sim_ups.py"), "--port",
                                            str(modbus_port)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        v3 = ["--v3-user", "bench", "--v3-auth-key", "bench-auth-key", "--v3-priv-key",
              "bench-priv-key"] if args.snmp_version == "3" else []
        router = [sys.executable, str(ROOT / "scripts/sim_router.py"), "--port", str(snmp_port),
                  "--community", "bench", *v3]
        procs.append(subprocess.Popen(netns(*router, "--workdir", str(work / "snmpd")),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port in (broker_port, modbus_port):   # probe inside the namespace
            subprocess.run(netns(sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT / 'scripts')!r}); "
                                 f"import loopback; loopback.wait_port({port})"), check=True)
        modbus = subprocess.run([sys.executable, str(ROOT / "scripts/sim_ups.py"), "--port",
                                 str(modbus_port), "--print-config"], capture_output=True, text=True,
                                check=True).stdout
        router_toml = subprocess.run([*router, "--print-config"], capture_output=True, text=True,
                                     check=True).stdout
        devices = f"""{router_toml}interval_s = 10

{modbus}
"""
        state = fs.mountpoint / "state"
        cfg = work / "agent.toml"
        remote = ""
        if args.remote:
            from agent.remote.envelope import generate_keypair
            key_path, _pub, _kid = generate_keypair(work / "trusted-keys", "bench")
            remote = f'[remote]\ntrusted_keys_dir = "{work / "trusted-keys"}"\n'
            # The push carries the same devices: what changes is only that it was pushed.
            (work / "pushed.toml").write_text(mqtt_config(broker_port) + devices)
        events = "" if args.events else "[events]\nenabled = false\n"
        cfg.write_text(agent_config(state, broker_port, devices, remote=remote) + events)
        counter_log = work / "counter.json"
        counter = subprocess.Popen(netns(sys.executable, __file__, "_count", "--port", str(broker_port),
                                         "--out", str(counter_log), "--seconds",
                                         str(args.minutes * 60 + args.warmup + 5)))
        # The environment the systemd unit gives the agent (systemd/clinic-agent.service).
        agent = subprocess.Popen(netns("env", "MALLOC_ARENA_MAX=2", args.python, "-m", "agent", "run",
                                       "-c", str(cfg)), cwd=ROOT,
                                 stdout=open(work / "agent.log", "wb"), stderr=subprocess.STDOUT)
        procs += [agent, counter]
        if args.remote:
            # A signed config push early in the warm-up, then a signed command every minute.
            procs.append(subprocess.Popen(netns(sys.executable, __file__, "_operate", "--port",
                                                str(broker_port), "--key", str(key_path),
                                                "--config", str(work / "pushed.toml"),
                                                "--seconds", str(args.minutes * 60 + args.warmup))))
        time.sleep(args.warmup)   # start-up, first polls, the router's interface count learned
        cpu0, t0 = proc_cpu_s(agent.pid), time.monotonic()
        written0, fs_written0 = proc_write_bytes(agent.pid), fs.written_bytes()
        rss = []
        while time.monotonic() - t0 < args.minutes * 60:
            rss.append(proc_rss_mib(agent.pid))
            time.sleep(5)
        cpu = proc_cpu_s(agent.pid) - cpu0
        split = proc_memory_split(agent.pid)
        written = proc_write_bytes(agent.pid) - written0
        fs_written = fs.written_bytes() - fs_written0
        minutes = (time.monotonic() - t0) / 60
        counter.wait(args.minutes * 60 + 60)
        counted = json.loads(counter_log.read_text())
        log = (work / "agent.log").read_text(errors="replace")
        statuses = log.count("WARNING")
        remote_seen = {"pushes_confirmed": log.count("confirmed: the broker is reachable"),
                       "commands_run": log.count("remote command ")}
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
        if fs is not None:
            fs.close()
        shutil.rmtree(work, ignore_errors=True)
    live_n = counted["readings"]["readings"]
    result = {
        "snmp_version": args.snmp_version, "signed_pushes_and_commands": args.remote,
        "workload_minutes": round(minutes, 1),
        "rss_steady_mib": round(sorted(rss)[len(rss) // 2], 1), "rss_max_mib": round(max(rss), 1),
        **split,
        "events": args.events,
        "cpu_s_per_minute": round(cpu / minutes, 4), "cpu_s_per_hour": round(cpu / minutes * 60, 2),
        "written_kib_per_minute": round(written / 1024 / minutes, 1),
        "live_readings_per_minute": round(live_n / (counted["seconds"] / 60)),
        "live_bytes_per_reading": round(counted["bytes"]["readings"] / max(live_n, 1), 2),
        "disk_write_kib_per_minute": round(written / 1024 / minutes, 1),
        "fs_write_kib_per_minute": round(fs_written / 1024 / minutes, 1),
        "warnings_in_log": statuses,
        **(remote_seen if args.remote else {}),
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


def operate_main(args) -> None:
    """The operator's side for ``workload --remote``: one signed config push, then a signed
    command every minute (diagnostics and poll_now in turn), published like ``fleet`` does."""
    import paho.mqtt.client as mqtt
    from agent.publish.topics import Topics
    from agent.remote.envelope import load_private_key, seal
    from agent.remote.fleet import command_payload, config_payload
    key = load_private_key(args.key)
    topics = Topics("clinics", SITE)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-op-{os.getpid()}")
    client.connect("127.0.0.1", args.port)
    client.loop_start()
    t0 = time.monotonic()
    time.sleep(10)        # the agent is up and subscribed
    push = config_payload(Path(args.config).read_text(), sites=[SITE], version=int(time.time()),
                          valid_for_s=600)
    client.publish(topics.config_set, seal(push, key), qos=1).wait_for_publish(10)
    commands = [("diagnostics", {}), ("poll_now", {"device": "ups"})]
    n = 0
    while time.monotonic() - t0 < args.seconds:
        time.sleep(min(60, max(0.0, args.seconds - (time.monotonic() - t0))))
        name, cmd_args = commands[n % len(commands)]
        client.publish(topics.command, seal(command_payload(name, cmd_args, sites=[SITE]), key),
                       qos=1).wait_for_publish(10)
        n += 1
    client.loop_stop()
    client.disconnect()


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
    m = sub.add_parser("imports")
    m.add_argument("--runs", type=int, default=5)
    i = sub.add_parser("idle")
    i.add_argument("--minutes", type=float, default=5)
    i.add_argument("--warmup", type=float, default=20)
    w = sub.add_parser("workload")
    w.add_argument("--minutes", type=float, default=10)
    w.add_argument("--warmup", type=float, default=40)
    w.add_argument("--snmp-version", default="2c", choices=("2c", "3"),
                   help="how the agent reads the router; 3 is authPriv, SHA and AES-128")
    w.add_argument("--remote", action="store_true",
                   help="remote management on: a signed config push during the warm-up, then a "
                        "signed command every minute")
    w.add_argument("--no-events", dest="events", action="store_false",
                   help="the agent with [events] enabled = false (to compare)")
    o = sub.add_parser("_operate")
    o.add_argument("--port", type=int)
    o.add_argument("--key")
    o.add_argument("--config")
    o.add_argument("--seconds", type=float)
    c = sub.add_parser("_count")
    c.add_argument("--port", type=int)
    c.add_argument("--out")
    c.add_argument("--seconds", type=float)
    args = ap.parse_args()
    if args.what == "_count":
        count_main(args)
        return 0
    if args.what == "_operate":
        operate_main(args)
        return 0
    {"store": bench_store, "drain": bench_drain, "idle": bench_idle, "imports": bench_imports,
     "workload": bench_workload}[args.what](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
