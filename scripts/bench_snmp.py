#!/usr/bin/env python3
"""Benchmark: SNMP requests and time per poll of a 48-interface router, on loopback.

    .venv/bin/python scripts/bench_snmp.py --interfaces 48 --polls 200

Generates the recording of a router with N interfaces (system group, IF-MIB with ifXTable and
64-bit counters, ifCounterDiscontinuityTime, HOST-RESOURCES CPU and memory), serves it with
snmpsim (from .venv-snmpsim, see scripts/setup.sh) on 127.0.0.1, and polls it with the agent's
own ``SnmpSource`` and the default router profiles (system, if-mib, host-resources) over
SNMPv2c GETBULK. Prints requests and wall time per poll, the first (discovery) poll apart from
the steady ones, and exits non-zero when a steady poll needs more than --max-requests requests
or the p95 time exceeds --max-ms. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from agent.config import parse_config  # noqa: E402
from agent.sources.snmp import SnmpSource  # noqa: E402

COMMUNITY = "bench-router"


def snmprec(interfaces: int) -> str:
    """An snmpsim recording of a router with ``interfaces`` gigabit ports."""
    rows: list[tuple[tuple[int, ...], str, str]] = []

    def put(oid: str, tag: int, value: object) -> None:
        rows.append((tuple(int(x) for x in oid.split(".")), str(tag), str(value)))
    put("1.3.6.1.2.1.1.1.0", 4, "Bench router 48x1G")
    put("1.3.6.1.2.1.1.3.0", 67, 123456789)
    put("1.3.6.1.2.1.1.5.0", 4, "bench-router")
    put("1.3.6.1.2.1.1.6.0", 4, "test bench")
    put("1.3.6.1.2.1.2.1.0", 2, interfaces)
    for i in range(1, interfaces + 1):
        name = "pppoe-out1" if i == interfaces else f"ether{i}"
        t = "1.3.6.1.2.1.2.2.1"
        x = "1.3.6.1.2.1.31.1.1.1"
        put(f"{t}.1.{i}", 2, i)
        put(f"{t}.2.{i}", 4, name)
        put(f"{t}.3.{i}", 2, 23 if i == interfaces else 6)
        put(f"{t}.5.{i}", 66, 1_000_000_000)
        put(f"{t}.7.{i}", 2, 1)
        put(f"{t}.8.{i}", 2, 1 if i % 3 else 2)
        put(f"{t}.10.{i}", 65, (i * 7_654_321) % 2**32)
        put(f"{t}.16.{i}", 65, (i * 1_234_567) % 2**32)
        put(f"{x}.1.{i}", 4, name)
        put(f"{x}.6.{i}", 70, i * 987_654_321_000)
        put(f"{x}.10.{i}", 70, i * 123_456_789_000)
        put(f"{x}.15.{i}", 66, 1000)
        put(f"{x}.18.{i}", 4, "uplink" if i == 1 else "")
        put(f"{x}.19.{i}", 67, 0)
    put("1.3.6.1.2.1.25.2.3.1.1.1", 2, 1)
    put("1.3.6.1.2.1.25.2.3.1.2.1", 6, "1.3.6.1.2.1.25.2.1.2")
    put("1.3.6.1.2.1.25.2.3.1.3.1", 4, "main memory")
    put("1.3.6.1.2.1.25.2.3.1.4.1", 2, 1024)
    put("1.3.6.1.2.1.25.2.3.1.5.1", 2, 262144)
    put("1.3.6.1.2.1.25.2.3.1.6.1", 2, 100000)
    put("1.3.6.1.2.1.25.3.3.1.2.1", 2, 12)
    return "".join(f"{'.'.join(map(str, oid))}|{tag}|{value}\n" for oid, tag, value in sorted(rows))


def responder() -> str:
    local = REPO / ".venv-snmpsim" / "bin" / "snmpsim-command-responder"
    found = str(local) if os.access(local, os.X_OK) else shutil.which("snmpsim-command-responder")
    if not found:
        raise SystemExit("snmpsim not found: run scripts/setup.sh (it makes .venv-snmpsim)")
    return found


def probe(port: int) -> bool:
    from fixtures.snmp import v2c_probe
    return v2c_probe(port, COMMUNITY)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


agent_ms: list[float] = []


async def bench(port: int, polls: int) -> tuple[list[int], list[float], dict]:
    table = {"name": "router", "kind": "snmp", "host": "127.0.0.1", "port": port,
             "version": "2c", "community": COMMUNITY, "timeout_s": 2, "retries": 0}
    config = parse_config({"site_id": "bench", "mqtt": {"host": "127.0.0.1"}, "devices": [table]})
    source = SnmpSource(config.devices[0])
    waited = [0.0]
    send = source.client._send

    async def timed_send(*args, **kwargs):
        start = time.perf_counter()
        try:
            return await send(*args, **kwargs)
        finally:
            waited[0] += time.perf_counter() - start
    source.client._send = timed_send      # how much of a poll is the agent waiting on the wire
    requests, times = [], []
    last: dict = {}
    try:
        for _ in range(polls):
            start = time.perf_counter()
            samples = await source.read()
            times.append((time.perf_counter() - start) * 1000)
            agent_ms.append(times[-1] - waited[0] * 1000)
            waited[0] = 0.0
            requests.append(source.last_poll_requests)
            last = {s.metric: s.value for s in samples}
    finally:
        await source.close()
    return requests, times, last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interfaces", type=int, default=48)
    parser.add_argument("--polls", type=int, default=200)
    parser.add_argument("--max-requests", type=int, default=4)
    parser.add_argument("--max-ms", type=float, default=150.0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-snmp-") as work:
        data = Path(work) / "data"
        data.mkdir()
        (data / f"{COMMUNITY}.snmprec").write_text(snmprec(args.interfaces))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        log = open(Path(work) / "snmpsim.log", "wb")
        proc = subprocess.Popen([responder(), f"--data-dir={data}", f"--cache-dir={work}/cache",
                                 f"--agent-udpv4-endpoint=127.0.0.1:{port}"],
                                env=dict(os.environ, SNMPSIM_ALLOW_ROOT="true"),
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while not probe(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("snmpsim did not start; see its log")
            requests, times, last = asyncio.run(bench(port, args.polls))
        finally:
            proc.terminate()
            proc.wait(5)
            log.close()

    steady_r, steady_t = requests[1:], times[1:]
    rates = sum(1 for m in last if m.endswith(".in_bps"))
    print(f"router with {args.interfaces} interfaces, snmpsim on 127.0.0.1, SNMPv2c GETBULK, "
          f"profiles system + if-mib + host-resources")
    print(f"first (discovery) poll: {requests[0]} requests, {times[0]:.1f} ms")
    print(f"steady polls ({len(steady_r)}): requests per poll min {min(steady_r)} max "
          f"{max(steady_r)}; time median {statistics.median(steady_t):.1f} ms, "
          f"p95 {percentile(steady_t, 0.95):.1f} ms, max {max(steady_t):.1f} ms")
    print(f"of which outside the request/answer exchanges (walk, rates, samples; the exchanges "
          f"are encoding, snmpsim and reading the answers): "
          f"median {statistics.median(agent_ms[1:]):.1f} ms")
    print(f"last poll: {len(last)} samples, {rates} in_bps rates, WAN {last.get('if.wan.name')}, "
          f"cpu.load_pct {last.get('cpu.load_pct')}, memory.used_pct {last.get('memory.used_pct')}")
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}, "
          f"Linux {platform.release()}")
    ok = max(steady_r) <= args.max_requests and percentile(steady_t, 0.95) < args.max_ms
    print("target (<= %d requests, p95 < %g ms): %s" % (args.max_requests, args.max_ms,
                                                        "met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
