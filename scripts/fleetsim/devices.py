"""A clinic's devices as conf/agent.example.toml lists them, each a ``Source`` that answers at once
with the metric names the shipped profiles and sources produce and plausible, moving values.

    router (SNMP, 30 s)  system.*, if.wan.*, if.lan.*
    ups    (Modbus, 10 s) apc-smart-ups profile: input.*, output.*, battery.*, on_battery, ...
    meter  (Modbus, 10 s) eastron-sdm120 profile: voltage, current, power_w, ...
    wan    (30 s)        wan.up, wan.latency_ms, wan.loss_pct, wan.diagnosis
    pc     (host, 60 s)  cpu.*, mem.*, disk.*, uptime_s, agent.rss_bytes

The device entries go through the agent's own config parser (``parse_config``), so the pollers
get the same ``DeviceConfig`` objects a clinic's agent.toml gives them.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any

from agent.readings import Sample

Metrics = Callable[[random.Random, float], list[Sample]]


def _router(rng: random.Random, t: float) -> list[Sample]:
    wave = 0.5 + 0.5 * math.sin(t / 600)
    return [
        Sample("system.uptime_s", int(t) % 2_000_000, "s"),
        Sample("system.name", "clinic-router"),
        Sample("if.wan.name", "pppoe-wan"),
        Sample("if.wan.oper_up", True),
        Sample("if.wan.speed", 10_000_000.0, "bit/s"),
        Sample("if.wan.in_bps", round(2e6 * wave * rng.uniform(0.8, 1.2), 1), "bit/s"),
        Sample("if.wan.out_bps", round(4e5 * wave * rng.uniform(0.8, 1.2), 1), "bit/s"),
        Sample("if.wan.in_errors", 0),
        Sample("if.lan.oper_up", True),
        Sample("if.lan.speed", 100_000_000.0, "bit/s"),
        Sample("if.lan.in_bps", round(5e5 * wave * rng.uniform(0.8, 1.2), 1), "bit/s"),
        Sample("if.lan.out_bps", round(2e6 * wave * rng.uniform(0.8, 1.2), 1), "bit/s"),
    ]


def _ups(rng: random.Random, t: float) -> list[Sample]:
    return [
        Sample("input.voltage", round(rng.gauss(127.0, 1.5), 1), "V"),
        Sample("input.frequency", round(rng.gauss(60.0, 0.05), 2), "Hz"),
        Sample("output.voltage", round(rng.gauss(120.0, 0.5), 1), "V"),
        Sample("output.load_pct", round(rng.uniform(20, 35), 1), "%"),
        Sample("battery.charge_pct", 100.0, "%"),
        Sample("battery.voltage", round(rng.gauss(27.3, 0.05), 2), "V"),
        Sample("battery.runtime_s", 2400 + rng.randrange(-60, 60), "s"),
        Sample("battery.temperature_c", round(rng.gauss(29.0, 0.3), 1), "C"),
        Sample("on_battery", False),
        Sample("battery.low", False),
        Sample("output.overload", False),
        Sample("replace_battery", False),
        Sample("battery.charging", False),
        Sample("mode", "online"),
        Sample("on_battery.total_s", 86_400, "s"),
    ]


def _meter(rng: random.Random, t: float) -> list[Sample]:
    volts = round(rng.gauss(127.0, 1.5), 1)
    amps = round(rng.uniform(3.0, 9.0), 2)
    return [
        Sample("voltage", volts, "V"),
        Sample("current", amps, "A"),
        Sample("power_w", round(volts * amps * 0.95, 1), "W"),
        Sample("frequency_hz", round(rng.gauss(60.0, 0.05), 2), "Hz"),
        Sample("power_factor", 0.95, ""),
        Sample("energy.import_kwh", round(12_000 + t / 3600 * 0.8, 2), "kWh"),
    ]


def _wan(rng: random.Random, t: float) -> list[Sample]:
    return [
        Sample("wan.up", True),
        Sample("wan.latency_ms", round(rng.uniform(40, 180), 1), "ms"),
        Sample("wan.loss_pct", 0.0, "%"),
        Sample("wan.diagnosis", "ok"),
    ]


def _pc(rng: random.Random, t: float) -> list[Sample]:
    return [
        Sample("cpu.percent", round(rng.uniform(1, 15), 1), "%"),
        Sample("cpu.load1", round(rng.uniform(0.05, 0.6), 2), ""),
        Sample("mem.percent", round(rng.uniform(30, 45), 1), "%"),
        Sample("mem.available_bytes", 2_400_000_000 + rng.randrange(10**8), "B"),
        Sample("uptime_s", int(t) % 5_000_000, "s"),
        Sample("agent.rss_bytes", 36_000_000 + rng.randrange(10**6), "B"),
        Sample("disk.root.percent", 41.2, "%"),
        Sample("disk.root.free_bytes", 61_000_000_000, "B"),
        Sample("temp.cpu_c", round(rng.uniform(45, 60), 1), "C"),
    ]


# name -> (config entry without name/interval, interval in s, metrics)
DEVICES: dict[str, tuple[dict[str, Any], float, Metrics]] = {
    "router": ({"kind": "snmp", "host": "127.0.0.1", "version": "2c",
                "community": "clinic-ro-7f3a"}, 30, _router),
    "ups": ({"kind": "modbus", "host": "127.0.0.1", "port": 5020, "unit_id": 1,
             "profile": "apc-smart-ups"}, 10, _ups),
    "meter": ({"kind": "modbus", "host": "127.0.0.1", "port": 5020, "unit_id": 2,
               "profile": "eastron-sdm120"}, 10, _meter),
    "wan": ({"kind": "wan"}, 30, _wan),
    "pc": ({"kind": "host"}, 60, _pc),
}


def device_entries(interval_scale: float) -> list[dict[str, Any]]:
    """The [[devices]] tables of a simulated clinic's config."""
    return [{"name": name, **entry, "interval_s": interval * interval_scale}
            for name, (entry, interval, _) in DEVICES.items()]


def readings_per_minute(interval_scale: float) -> float:
    """Readings one clinic stores per minute (samples plus poll.status and poll.duration_s)."""
    rng = random.Random(0)
    return sum((len(fn(rng, 0.0)) + 2) * 60 / (interval * interval_scale)
               for _, interval, fn in DEVICES.values())


class SimSource:
    """A device that answers every poll at once (``agent.sources.Source``)."""

    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self._metrics = DEVICES[name][2]
        self._rng = random.Random(seed)

    async def read(self) -> list[Sample]:
        return self._metrics(self._rng, time.time())

    async def close(self) -> None:
        return None


def backlog_polls(name: str, seed: int, start: float, end: float,
                  interval: float) -> list[tuple[float, list[Sample]]]:
    """The polls a device would have stored between ``start`` and ``end`` (a backlog)."""
    rng = random.Random(seed)
    fn = DEVICES[name][2]
    out = []
    t = start
    while t < end:
        out.append((t, fn(rng, t)))
        t += interval
    return out
