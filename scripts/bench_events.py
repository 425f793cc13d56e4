"""CPU cost of the event engine per poll (docs/benchmarks.md, "Events").

    .venv/bin/python scripts/bench_events.py [--polls 20000]

Feeds the engine polls shaped like the benchmark workload's (a UPS with 16 readings and a
three-phase meter with 11 in one call; a router with 24 interfaces, 148 readings) and times
``observe`` and the snapshot the writer stores with every poll. No I/O: the SQLite upsert of the
snapshot rides in the poll's own transaction (no extra fsync).
"""

from __future__ import annotations

import argparse
import json
import time

from agent.config.events import EventsConfig
from agent.events.engine import EventEngine
from agent.readings import Reading, Value

UPS: dict[str, Value] = {
    "on_battery": False, "battery.charge_pct": 100, "battery.runtime_s": 1800,
    "battery.low": False, "input.voltage": 127.0, "input.frequency": 60.0,
    "output.voltage": 120.0, "output.load_pct": 40, "output.overload": False,
    "replace_battery": False, "mode": "online", "battery.voltage": 27.1,
    "battery.temperature_c": 30.0, "on_battery.total_s": 90061, "poll.status": "ok",
    "poll.duration_s": 0.02}
METER: dict[str, Value] = {
    **{f"voltage.l{i}": 127.0 for i in (1, 2, 3)}, "voltage.l1_l2": 220.0,
    "voltage.l2_l3": 220.0, "voltage.l3_l1": 220.0, "frequency_hz": 60.0,
    "power.total_w": 1500.0, "poll.status": "ok", "current.l1": 5.0, "poll.duration_s": 0.03}
ROUTER: dict[str, Value] = {"poll.status": "ok", "system.uptime_s": 1000, "if.wan.oper_up": True,
                            "if.wan.name": "pppoe-out1"}
for k in range(24):
    for m in ("oper_up", "admin_up", "speed_bps", "in_bps", "out_bps", "in_errors"):
        ROUTER[f"if.eth{k}.{m}"] = 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--polls", type=int, default=20000)
    n = ap.parse_args().polls
    engine = EventEngine(EventsConfig())

    def poll(devices: dict[str, dict[str, Value]], i: int) -> list[Reading]:
        return [Reading(d, m, v, "", 1.8e9 + 10 * i) for d, values in devices.items()
                for m, v in values.items()]

    for name, devices in (("UPS + meter (27 readings)", {"ups": UPS, "meter": METER}),
                          ("router (148 readings)", {"router": ROUTER})):
        polls = [poll(devices, i) for i in range(n)]
        start = time.perf_counter()
        for i, readings in enumerate(polls):
            engine.observe(readings, 10.0 * i)
        print(f"observe, {name}: {(time.perf_counter() - start) / n * 1e6:.0f} us per poll")
    start = time.perf_counter()
    for _ in range(n):
        doc = json.dumps(engine.snapshot())
    print(f"snapshot as JSON: {(time.perf_counter() - start) / n * 1e6:.0f} us, "
          f"{len(doc)} bytes")
    start = time.perf_counter()
    for i in range(n):
        engine.tick(10.0 * n + i)
    print(f"tick: {(time.perf_counter() - start) / n * 1e6:.1f} us")


if __name__ == "__main__":
    main()
