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


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, default=3180)
    ap.add_argument("--per-poll", type=int, default=80)
    ap.add_argument("--queued", type=int, default=1_000_000, help="readings queued for the throughput run")
    ap.add_argument("--live-s", type=float, default=60.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-central-"))
    with CentralStack(work, ["operator"]) as stack:
        # Session first (so the broker queues for it), then stop it: the queue fills while it is away.
        ing = stack.start_ingest()
        ing.stop()
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
        start = time.monotonic()
        ing = stack.start_ingest(wait=False)
        while stored_total(stack.pg_dsn) - before < n:
            time.sleep(0.2)
            if time.monotonic() - start > 1800:
                raise SystemExit("throughput run did not finish in 30 min")
        took = time.monotonic() - start
        rate = n / took
        print(f"throughput: {n} readings from {args.sites} sites in {took:.1f} s = {rate:,.0f} readings/s "
              f"(ingest start-up included)", flush=True)

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
