#!/usr/bin/env python3
"""How fast one clinic-central ingest stores readings into VictoriaMetrics + PostgreSQL.

1. Throughput: N readings from S sites are queued at the broker for the ingest's session while it
   is stopped, then the ingest is started and the time until PostgreSQL counts them all stored
   (both stores written: the PostgreSQL record follows the VictoriaMetrics write) is measured.
2. Live load: S sites each publish one poll of R readings every 10 s (3,180 x 80 = 25,440
   readings/s); a probe reading is published every 0.5 s and VictoriaMetrics is polled until the
   probe is queryable: p50/p99 of poll -> queryable.
3. Memory of the ingest (peak RSS) and bytes per stored reading on disk (VictoriaMetrics data dir).

    .venv/bin/python scripts/bench_central.py [--sites 3180] [--per-poll 80] [--queued 1000000] [--live-s 60]
        [--ingests 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from central_stack import CentralStack  # noqa: E402

from agent.publish.wire import encode_batch  # noqa: E402
from agent.readings import StoredReading  # noqa: E402


def client(stack: CentralStack, user: str) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{user}-{os.getpid()}", protocol=mqtt.MQTTv5)
    c.username_pw_set(user, stack.broker.passwords[user])
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", stack.broker_port)
    c.loop_start()
    return c


class Sites:
    """S fake clinics with their own numbering; one poll = R readings of a UPS-like device."""

    def __init__(self, n: int, per_poll: int) -> None:
        self.names = [f"BENCH{i:05d}" for i in range(n)]
        self.seq = dict.fromkeys(self.names, 1)
        self.per_poll = per_poll

    def poll(self, site: str, ts: float) -> bytes:
        s = self.seq[site]
        rs = [StoredReading(s + k, "ups", f"metric.{k}", 120.0 + (s + k) % 10 * 0.5, "", ts, 0)
              for k in range(self.per_poll)]
        self.seq[site] = s + self.per_poll
        return encode_batch(rs, site=site, boot="0123456789abcdef", compress=True).payload


def stored_total(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as c:
        return int(c.execute("SELECT coalesce(sum(stored_total), 0) FROM sites").fetchone()[0])


def rss_peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def cpu_s(pid: int, *, tree: bool = False) -> float:
    """CPU seconds (user + system) of ``pid``, and of all its descendants with ``tree``."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(d.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    wanted = {pid}
    if tree:
        grew = True
        while grew:
            more = {p for p, (ppid, _) in stats.items() if ppid in wanted} - wanted
            wanted |= more
            grew = bool(more)
    return sum(stats[p][1] for p in wanted if p in stats)


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy (everyone's), from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(f) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, default=3180, help="clinics publishing")
    ap.add_argument("--per-poll", type=int, default=80, help="readings in each clinic's poll")
    ap.add_argument("--queued", type=int, default=1_000_000, help="readings queued for the throughput run")
    ap.add_argument("--live-s", type=float, default=60.0, help="live-load phase (0: skip it)")
    ap.add_argument("--ingests", type=int, default=1,
                    help="ingest processes sharing the load (MQTT 5 shared subscription)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-central-"))
    with CentralStack(work, ["operator"]) as stack:
        # Sessions first (so the broker queues for them), then stop them: the queue fills while
        # they are away (a shared subscription splits it among the group's sessions).
        ids = [f"ingest-{i + 1}" for i in range(args.ingests)]
        for cid in ids:
            stack.start_ingest(cid).stop()
        sites = Sites(args.sites, args.per_poll)
        pub = client(stack, "operator")
        t0 = time.time() - 3600
        n = 0
        while n < args.queued:
            for site in sites.names:
                pub.publish(f"clinics/{site}/readings", sites.poll(site, t0 + n / 1e5), qos=1).wait_for_publish(30) \
                    if n % 50_000 == 0 else pub.publish(f"clinics/{site}/readings", sites.poll(site, t0 + n / 1e5), qos=1)
                n += args.per_poll
                if n >= args.queued:
                    break
        time.sleep(2)
        before = stored_total(stack.pg_dsn)
        peers = {"mosquitto": (stack.broker.proc.proc.pid, False),
                 "victoria-metrics": (stack.vm.proc.pid, False),
                 "postgresql": (stack.pg.proc.proc.pid, True)}
        cpu0 = {k: cpu_s(pid, tree=tree) for k, (pid, tree) in peers.items()}
        busy0 = machine_busy_s()
        load = os.getloadavg()
        start = time.monotonic()
        ings = [stack.start_ingest(cid, wait=False) for cid in ids]
        ing = ings[0]
        while stored_total(stack.pg_dsn) - before < n:
            time.sleep(0.2)
            if time.monotonic() - start > 1800:
                raise SystemExit("throughput run did not finish in 30 min")
        took = time.monotonic() - start
        rate = n / took
        ingest_cpu = sum(cpu_s(i.proc.pid) for i in ings)
        cpu = {k: cpu_s(pid, tree=tree) - cpu0[k] for k, (pid, tree) in peers.items()}
        busy = machine_busy_s() - busy0
        print(f"throughput: {n} readings from {args.sites} sites in {took:.1f} s = {rate:,.0f} readings/s "
              f"with {args.ingests} ingest process(es) (ingest start-up included)", flush=True)
        print(f"  CPU seconds in that time: ingest {ingest_cpu:.1f} "
              f"({ingest_cpu / n * 1e6:.1f} us/reading), "
              + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
              + f"; all cores busy {busy:.1f} of {took * (os.cpu_count() or 1):.1f}; "
              f"load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
        if args.live_s <= 0:
            return 0

        # Live load with probes.
        stop = threading.Event()
        interval = 10.0

        def live() -> None:
            k = 0
            while not stop.is_set():
                tick = time.time()
                for i, site in enumerate(sites.names):
                    pub.publish(f"clinics/{site}/readings", sites.poll(site, time.time()), qos=1)
                    k += 1
                    # Spread the fleet over the 10 s, as real clinics' clocks are.
                    due = tick + interval * (i + 1) / len(sites.names)
                    if due > time.time():
                        time.sleep(due - time.time())
        th = threading.Thread(target=live, daemon=True)
        th.start()
        delays = []
        http = httpx.Client(timeout=5)
        probe_seq = 1
        end = time.monotonic() + args.live_s
        while time.monotonic() < end:
            ts = time.time()
            rs = [StoredReading(probe_seq, "probe", "probe", float(probe_seq), "", ts, 0)]
            probe_seq += 1
            pub.publish("clinics/PROBE/readings", encode_batch(rs, site="PROBE", boot="0", compress=True).payload, qos=1)
            while True:
                r = http.get(f"{stack.vm_url}/api/v1/export", params={
                    "match[]": '{__name__="clinic_value",site="PROBE"}', "start": str(int(ts) - 1)})
                values = [v for line in r.text.splitlines() if line for v in json.loads(line)["values"]]
                if float(probe_seq - 1) in values:
                    delays.append(time.time() - ts)
                    break
                if time.time() - ts > 60:
                    delays.append(60.0)
                    break
                time.sleep(0.02)
            time.sleep(max(0.0, 0.5 - (time.time() - ts)))
        stop.set()
        th.join()
        delays.sort()
        p50 = statistics.median(delays)
        p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
        print(f"live load: {args.sites} sites x {args.per_poll} readings / 10 s = "
              f"{args.sites * args.per_poll / interval:,.0f} readings/s; poll -> queryable p50 {p50:.2f} s, "
              f"p99 {p99:.2f} s ({len(delays)} probes)", flush=True)
        print(f"ingest peak RSS: {rss_peak_kb(ing.proc.pid) / 1024:.0f} MiB", flush=True)
        httpx.get(f"{stack.vm_url}/internal/force_flush")
        total = stored_total(stack.pg_dsn)
        time.sleep(5)
        vm_bytes = dir_bytes(work / "vm-data")
        pg_bytes = dir_bytes(stack.pg.data)
        print(f"on disk: VictoriaMetrics {vm_bytes / 1e6:.1f} MB for {total:,} readings = "
              f"{vm_bytes / total:.2f} bytes/reading (before background merges); PostgreSQL {pg_bytes / 1e6:.1f} MB "
              f"(per site and per batch, not per reading)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
