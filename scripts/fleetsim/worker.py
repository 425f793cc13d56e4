"""One simulator process: a few hundred clinics on one asyncio loop.

Run by scripts/fleet_sim.py as ``python -m fleetsim.worker`` (with scripts/ on sys.path). It reads
one JSON spec line on stdin, then commands, one per line, and answers with JSON lines on stdout:

    -> {"spec": {...}}                       <- {"event": "ready", "opened_s": ...}
    -> {"cmd": "start"}                      <- {"event": "started"}
    -> {"cmd": "cut"} / {"cmd": "restore"}   <- {"event": "cut"} / {"event": "restored"}
    -> {"cmd": "report"}                     <- {"event": "report", "clinics": [...], ...}
    -> {"cmd": "stop"[, "fast": true]}       <- {"event": "stopped"} (fast: exit at once)

Connection attempts are counted per clinic by wrapping ``MqttLink.connect`` (every MQTT
connection attempt, whatever decides when to make it, goes through it); nothing else of the
agent is changed. Clinics in the ``cut`` subset reach the broker through a local TCP relay (their
regional feeder) that can drop the link.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import resource
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agent.publish import mqtt_link
from fleetsim.clinic import Clinic, clinic_config, for_site, phase_for
from fleetsim.feeder import Feeder

ATTEMPTS: dict[str, list[float]] = defaultdict(list)
_connect = mqtt_link.MqttLink.connect


async def _counted_connect(self: mqtt_link.MqttLink) -> None:
    ATTEMPTS[self.cfg.client_id].append(time.time())
    await _connect(self)


mqtt_link.MqttLink.connect = _counted_connect  # type: ignore[method-assign]


class LoopLag:
    """How late the event loop runs a 100 ms timer: when it is late, the simulator (not the
    agent) is the bottleneck, and latencies measured meanwhile say so."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []   # (wall time, lag s)

    async def run(self) -> None:
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(0.1)
            lag = time.monotonic() - t0 - 0.1
            if lag > 0.05:
                self.samples.append((time.time(), lag))


def _out(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(hard, 65536), max(hard, 65536)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def main() -> None:
    _raise_nofile()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    spec = json.loads(await reader.readline())["spec"]
    profiler = None
    if spec.get("profile"):
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    logging.basicConfig(level=getattr(logging, spec.get("log_level", "error").upper()),
                        stream=sys.stderr,
                        format="%(asctime)s worker %(process)d %(name)s: %(message)s")
    # The TCP connect and TLS handshake of MqttLink.connect run in the default executor: a real
    # clinic has a thread of its own for it, so give the many clinics here enough of them that
    # none waits for another's handshake (a wait would count against its connect timeout).
    loop.set_default_executor(ThreadPoolExecutor(max_workers=spec["connect_threads"],
                                                 thread_name_prefix="connect"))
    n_pools = spec["store_threads"]
    pools = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"store{i}")
             for i in range(n_pools)]
    lag = LoopLag()
    lag_task = asyncio.create_task(lag.run())
    cut_sites = set(spec.get("cut_sites", ()))
    feeder: Feeder | None = None
    if cut_sites:
        feeder = Feeder(spec["host"], spec["port"])
        await feeder.start()
    clinics: list[Clinic] = []
    t0 = time.monotonic()
    store_dir = Path(spec["store_dir"])
    template = clinic_config(
        spec["sites"][0] if spec["sites"] else "SIM00000", store_dir=store_dir,
        host=spec["host"], port=spec["port"], tls=spec["tls"], ca_file=spec.get("ca_file"),
        password=spec["password"], backlog_kbps=spec["backlog_kbps"],
        interval_scale=spec["interval_scale"], extra_mqtt=spec.get("mqtt"),
        release=spec.get("release", "broker"))
    for k, (site, seed) in enumerate(zip(spec["sites"], spec["seeds"], strict=True)):
        behind = feeder is not None and site in cut_sites
        cfg = for_site(template, site, store_dir=store_dir,
                       port=feeder.port if behind and feeder is not None else None)
        clinics.append(Clinic(cfg, seed=seed, pool=pools[k % n_pools] if n_pools else None))
    opened = await asyncio.gather(*(c.open(spec.get("prefill_s", 0.0)) for c in clinics),
                                  return_exceptions=True)
    errors = [repr(e) for e in opened if isinstance(e, BaseException)]
    _out({"event": "ready", "opened_s": round(time.monotonic() - t0, 2), "errors": errors[:5],
          "prefilled": sum(c.prefilled for c in clinics)})
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = json.loads(line)
        what = cmd["cmd"]
        if what == "start":
            spread = float(cmd.get("spread_s", 0.0))
            asyncio.create_task(_start_all(clinics, spread, spec))
            _out({"event": "started"})
        elif what == "cut" and feeder is not None:
            await feeder.cut(silent=bool(cmd.get("silent", False)))
            _out({"event": "cut", "at": time.time()})
        elif what == "restore" and feeder is not None:
            await feeder.restore()
            _out({"event": "restored", "at": time.time()})
        elif what == "report":
            _out(_report(clinics, lag, feeder))
        elif what == "stop":
            if cmd.get("fast"):
                # Figures are taken: no need for each clinic's clean goodbye (its final retained
                # "offline" may wait 3 s each), and the buffers are thrown away.
                _out({"event": "stopped"})
                os._exit(0)
            lag_task.cancel()
            await asyncio.gather(*(c.stop() for c in clinics), return_exceptions=True)
            if feeder is not None:
                await feeder.close()
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(spec["profile"])
            _out({"event": "stopped"})
            break
    os._exit(0)   # paho sockets and executor threads of a thousand clinics: no slow teardown


async def _start_all(clinics: list[Clinic], spread_s: float, spec: dict[str, Any]) -> None:
    """Start each clinic at a random moment within ``spread_s`` (0: all at once)."""
    rng = random.Random(spec["seeds"][0] if spec["seeds"] else 0)
    offsets = sorted(rng.uniform(0, spread_s) for _ in clinics) if spread_s > 0 \
        else [0.0] * len(clinics)
    t0 = time.monotonic()
    for c, offset in zip(clinics, offsets, strict=True):
        wait = t0 + offset - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        first = min(d.interval_s for d in c.cfg.devices)
        c.start(poll_phase_s=phase_for(c.seed, first))


def _report(clinics: list[Clinic], lag: LoopLag, feeder: Feeder | None) -> dict[str, Any]:
    docs = []
    for c in clinics:
        d = c.summary()
        d["attempts"] = [round(t, 3) for t in ATTEMPTS.get(c.cfg.mqtt.client_id, [])]
        docs.append(d)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"event": "report", "clinics": docs, "lag": lag.samples[-5000:],
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "maxrss_mib": round(usage.ru_maxrss / 1024, 1),
            "threads": len(os.listdir("/proc/self/task")),
            "fds": len(os.listdir("/proc/self/fd"))}


if __name__ == "__main__":
    asyncio.run(main())
