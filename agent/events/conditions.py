"""Conditions, read from a device's readings by their common names, whatever the brand.

Each poll of a device gives, for every condition its metrics speak about, a ``Verdict``: the
raise level is met (True), the clear level is met (False), or neither / not known (None: between
the two levels of a hysteresis). The engine (agent.events.engine) turns verdicts into events
with minimum durations and flapping control; nothing here keeps time.

Which conditions a device gets depends only on the metrics it reports (docs/events.md):

    on_battery                 UPS: mains_lost, generator_failed, battery_low
    replace_battery, battery.fault, fault, output.overload/load_pct, mode/output.source
    input.voltage, input.lN.voltage, voltage.lN, voltage.lN_lM     voltage_low/high[.part]
    input.frequency, frequency_hz                                   frequency_low/high
    voltage.lN on a device without on_battery, all under dead_v     mains_lost (a meter)
    wan.up, target.*.up, wan.latency_ms    wan_down, wan_degraded   (the wan device)
    if.wan.oper_up                         wan_down                 (the router)
    poll.status                            device_unreachable       (every device)
    disk.percent, diskN.percent            disk_full[.diskN]        (the host)
    buffer.dropped_total, clock.suspect, clock.steps_total          (device "agent")

A UPS's input voltage and frequency are not judged while it is on battery (many read 0 then:
the outage is the event), nor a meter's while every phase is dead.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from agent.config.events import Rule
from agent.readings import STATUS_METRIC, Value


@dataclass(frozen=True, slots=True)
class Verdict:
    cond: str                    # "mains_lost", "voltage_low.l2", ...
    rule: str                    # the [events] rule that times it
    level: bool | None           # raise level met / clear level met / neither
    values: dict[str, Value]     # what made the verdict
    since: float | None = None   # wall time the condition truly began, when earlier than this poll


@dataclass
class DeviceMemory:
    """What the conditions of one device remember between polls."""

    latest: dict[str, Value] = field(default_factory=dict)
    fail_streak: int = 0
    first_fail_wall: float | None = None
    counters: dict[str, float] = field(default_factory=dict)
    probes: collections.deque[tuple[float, int, int]] = field(
        default_factory=collections.deque)   # (mono, probes, failures) while the WAN is up


_PHASE_V = re.compile(r"voltage\.(l\d)")
_LINE_V = re.compile(r"voltage\.(l\d_l\d)")
_UPS_LINE_V = re.compile(r"input\.(l\d)\.voltage")
_DISK = re.compile(r"(disk\d*)\.percent")
_VOLTAGE_PREFIXES = ("input.", "voltage.")
_UPS_VALUES = ("on_battery", "battery.charge_pct", "battery.runtime_s", "input.voltage",
               "on_battery.total_s")


def evaluate(batch: Mapping[str, Value], mem: DeviceMemory, rules: Mapping[str, Rule], *,
             generator: bool, wall: float, mono: float) -> list[Verdict]:
    """Verdicts for one poll of one device. ``batch`` holds this poll's values only;
    ``mem.latest`` is updated with them first (the context of a verdict may be older)."""
    mem.latest.update(batch)
    out = list(_unreachable(batch, mem, rules, wall))
    out += _ups(batch, mem.latest, rules, generator)
    out += _voltage_frequency(batch, mem.latest, rules)
    out += _wan(batch, mem, rules, mono)
    out += _host_agent(batch, mem, rules)
    return [v for v in out if rules[v.rule].enabled]


def _b(v: Value) -> bool | None:
    return v if isinstance(v, bool) else None


def _n(v: Value) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _pick(latest: Mapping[str, Value], names: tuple[str, ...]) -> dict[str, Value]:
    return {k: latest[k] for k in names if k in latest}


def _unreachable(batch: Mapping[str, Value], mem: DeviceMemory, rules: Mapping[str, Rule],
                 wall: float) -> Iterator[Verdict]:
    status = batch.get(STATUS_METRIC)
    if status is None:
        return
    if status == "ok":
        mem.fail_streak, mem.first_fail_wall = 0, None
        yield Verdict("device_unreachable", "device_unreachable", False, {STATUS_METRIC: "ok"})
        return
    if mem.fail_streak == 0:
        mem.first_fail_wall = wall
    mem.fail_streak += 1
    values: dict[str, Value] = {STATUS_METRIC: status, "polls": mem.fail_streak}
    # Raised on the N-th failed poll in a row, dated from the first. The reason text stays out
    # of the event: it is English prose, and long; the status code says enough.
    level = True if mem.fail_streak >= rules["device_unreachable"]["polls"] else None
    yield Verdict("device_unreachable", "device_unreachable", level, values, mem.first_fail_wall)


def _ups(batch: Mapping[str, Value], latest: Mapping[str, Value], rules: Mapping[str, Rule],
         generator: bool) -> Iterator[Verdict]:
    vals = _pick(latest, _UPS_VALUES)
    if "on_battery" in batch and _b(batch["on_battery"]) is not None:
        ob = bool(batch["on_battery"])
        yield Verdict("mains_lost", "mains_lost", ob, vals)
        if generator:
            yield Verdict("generator_failed", "generator_failed", ob, vals)
        low_vals = {**vals, **_pick(latest, ("battery.low",))}
        yield Verdict("battery_low", "battery_low", _battery_low(ob, latest, rules["battery_low"]),
                      low_vals)
    for metric, cond in (("replace_battery", "battery_replace"), ("battery.fault", "battery_fault"),
                         ("fault", "ups_fault")):
        flag = _b(batch.get(metric))
        if flag is not None:
            yield Verdict(cond, cond, flag, {metric: flag})
    if "output.overload" in batch or "output.load_pct" in batch:
        rule = rules["overload"]
        load = _n(latest.get("output.load_pct"))
        if latest.get("output.overload") is True or (load is not None and
                                                      load >= rule["load_raise_pct"]):
            level: bool | None = True
        elif load is None or load <= rule["load_clear_pct"]:
            level = False
        else:
            level = None
        yield Verdict("overload", "overload", level,
                      _pick(latest, ("output.overload", "output.load_pct")))
    if "mode" in batch or "output.source" in batch:
        mode = latest.get("mode", latest.get("output.source"))
        yield Verdict("bypass", "bypass", mode == "bypass",
                      _pick(latest, ("mode", "output.source")))


def _battery_low(on_battery: bool, latest: Mapping[str, Value], rule: Rule) -> bool | None:
    """On mains a low battery is charging, and a UPS may flash its low-battery flag for a
    moment (NUT's false shutdowns): only a UPS running on its battery can be low."""
    if not on_battery:
        return False
    charge, runtime = _n(latest.get("battery.charge_pct")), _n(latest.get("battery.runtime_s"))
    if latest.get("battery.low") is True or \
            (charge is not None and charge <= rule["charge_raise_pct"]) or \
            (runtime is not None and runtime <= rule["runtime_raise_s"]):
        return True
    if (charge is None or charge >= rule["charge_clear_pct"]) and \
            (runtime is None or runtime >= rule["runtime_clear_s"]):
        return False
    return None


def _voltage_frequency(batch: Mapping[str, Value], latest: Mapping[str, Value],
                       rules: Mapping[str, Rule]) -> Iterator[Verdict]:
    ups = "on_battery" in latest
    vr, fr = rules["voltage"], rules["frequency"]
    # (metric, part, nominal, value) of every voltage this poll carries.
    volts: list[tuple[str, str | None, float, float]] = []
    for metric, raw in batch.items():
        if not metric.startswith(_VOLTAGE_PREFIXES):
            continue     # most of a router's poll: skip it before any pattern
        value = _n(raw)
        if value is None:
            continue
        if metric == "input.voltage":
            volts.append((metric, None, vr["nominal_ln_v"], value))
        elif m := (_UPS_LINE_V.fullmatch(metric) or _PHASE_V.fullmatch(metric)):
            volts.append((metric, m[1], vr["nominal_ln_v"], value))
        elif m := _LINE_V.fullmatch(metric):
            volts.append((metric, m[1], vr["nominal_ll_v"], value))
    phase_volts = [v for metric, _, _, v in volts if _PHASE_V.fullmatch(metric)]
    dead = False
    if not ups and phase_volts:
        # A meter with every phase dead: the mains is gone (sites without a UPS see outages so).
        dead = all(v < vr["dead_v"] for v in phase_volts)
        yield Verdict("mains_lost", "mains_lost", dead,
                      {m: v for m, _, _, v in volts if _PHASE_V.fullmatch(m)})
    suppressed = dead or latest.get("on_battery") is True
    low: bool | None
    high: bool | None
    for metric, p, nominal, value in volts:
        suffix = f".{p}" if p else ""
        vals: dict[str, Value] = {metric: value}
        if suppressed:
            low = high = False
        else:
            low = _below(value, nominal * vr["low_raise_pct"] / 100,
                         nominal * vr["low_clear_pct"] / 100)
            high = _above(value, nominal * vr["high_raise_pct"] / 100,
                          nominal * vr["high_clear_pct"] / 100)
        yield Verdict("voltage_low" + suffix, "voltage", low, vals)
        yield Verdict("voltage_high" + suffix, "voltage", high, vals)
    for metric in ("input.frequency", "frequency_hz"):
        hz = _n(batch.get(metric))
        if hz is None:
            continue
        nominal = fr["nominal_hz"]
        if suppressed:
            low = high = False
        else:
            low = _below(hz, nominal - fr["raise_dev_hz"], nominal - fr["clear_dev_hz"])
            high = _above(hz, nominal + fr["raise_dev_hz"], nominal + fr["clear_dev_hz"])
        yield Verdict("frequency_low", "frequency", low, {metric: hz})
        yield Verdict("frequency_high", "frequency", high, {metric: hz})


def _below(value: float, raise_at: float, clear_at: float) -> bool | None:
    return True if value < raise_at else False if value >= clear_at else None


def _above(value: float, raise_at: float, clear_at: float) -> bool | None:
    return True if value > raise_at else False if value <= clear_at else None


def _wan(batch: Mapping[str, Value], mem: DeviceMemory, rules: Mapping[str, Rule],
         mono: float) -> Iterator[Verdict]:
    router_up = _b(batch.get("if.wan.oper_up"))
    if router_up is not None:
        yield Verdict("wan_down", "wan_down", not router_up,
                      _pick(mem.latest, ("if.wan.oper_up", "if.wan.name")))
    up = _b(batch.get("wan.up"))
    if up is None:
        return
    vals = _pick(mem.latest, ("wan.up", "wan.diagnosis", "router.wan_up", "router.wan_name",
                              "wan.loss_pct"))
    yield Verdict("wan_down", "wan_down", not up, vals)
    rule = rules["wan_degraded"]
    if not up:
        # Down is not degraded; and the probes lost while down must not make the link look
        # degraded once it is back.
        mem.probes.clear()
        yield Verdict("wan_degraded", "wan_degraded", False, vals)
        return
    targets = [v for k, v in batch.items() if k.startswith("target.") and k.endswith(".up")]
    if targets:
        mem.probes.append((mono, len(targets), sum(1 for v in targets if v is not True)))
    while mem.probes and mem.probes[0][0] < mono - rule["window_s"]:
        mem.probes.popleft()
    probes = sum(p for _, p, _ in mem.probes)
    loss = 100.0 * sum(f for _, _, f in mem.probes) / probes if probes else 0.0
    latency = _n(batch.get("wan.latency_ms"))
    if loss >= rule["loss_raise_pct"] or (latency is not None and
                                          latency >= rule["latency_raise_ms"]):
        level: bool | None = True
    elif loss <= rule["loss_clear_pct"] and (latency is None or
                                             latency <= rule["latency_clear_ms"]):
        level = False
    else:
        level = None
    values = {**_pick(mem.latest, ("wan.latency_ms",)), "loss_pct": round(loss, 1)}
    yield Verdict("wan_degraded", "wan_degraded", level, values)


def _host_agent(batch: Mapping[str, Value], mem: DeviceMemory,
                rules: Mapping[str, Rule]) -> Iterator[Verdict]:
    disk = rules["disk_full"]
    for metric, raw in batch.items():
        if not metric.startswith("disk"):
            continue
        m = _DISK.fullmatch(metric)
        pct = _n(raw)
        if m and pct is not None:
            suffix = "" if m[1] == "disk" else f".{m[1]}"
            vals: dict[str, Value] = {metric: pct}
            free = f"{m[1]}.free_bytes"
            if free in batch:
                vals[free] = batch[free]
            level = True if pct >= disk["raise_pct"] else False if pct <= disk["clear_pct"] \
                else None
            yield Verdict("disk_full" + suffix, "disk_full", level, vals)
    suspect = _b(batch.get("clock.suspect"))
    if suspect is not None:
        yield Verdict("clock_unsynced", "clock_unsynced", suspect, {"clock.suspect": suspect})
    for metric, cond in (("buffer.dropped_total", "buffer_dropping"),
                         ("clock.steps_total", "clock_stepped")):
        total = _n(batch.get(metric))
        if total is None:
            continue
        prev = mem.counters.get(metric)
        mem.counters[metric] = total
        # The first value after a start, and a counter that went back (reset), are baselines.
        level = None if prev is None or total < prev else total > prev
        values: dict[str, Value] = {metric: batch[metric]}
        if prev is not None and total > prev:
            values["increase"] = total - prev
        yield Verdict(cond, cond, level, values)
