"""The ``[events]`` section: when a reading becomes a problem worth telling the central team.

Every condition has a rule: a minimum time before it is raised (``raise_after_s``) and before it
is cleared (``clear_after_s``), and, where it compares a number, separate raise and clear levels
(hysteresis). Defaults suit a Mexican clinic (127 V phase-neutral, 220 V between phases, 60 Hz);
docs/events.md says why each one is what it is. ::

    [events]
    generator = true                 # the site has a generator / automatic transfer switch
    [events.voltage]
    low_raise_pct = 88               # of the nominal voltage
    [events.devices.ups.voltage]     # one device's own rules, over the site's
    nominal_ln_v = 220

A rule's levels are checked against each other (a clear level on the wrong side of its raise
level would raise and clear at once, or never clear), with the key path in the problem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from agent.config.fields import Table

DEVICE_NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,31}"


@dataclass(frozen=True)
class Level:
    """One numeric setting of a rule: its default and the range the parser accepts."""

    default: float
    lo: float
    hi: float
    integer: bool = False


@dataclass(frozen=True)
class RuleSpec:
    raise_after_s: float
    clear_after_s: float
    levels: Mapping[str, Level] = field(default_factory=dict)
    # (a, b): level a must be below level b.
    order: tuple[tuple[str, str], ...] = ()


_S = (0.0, 86_400.0)

RULES: Mapping[str, RuleSpec] = MappingProxyType({
    "mains_lost": RuleSpec(5, 5),
    "generator_failed": RuleSpec(15, 0),
    "battery_low": RuleSpec(5, 30, {
        "charge_raise_pct": Level(30, 0, 100), "charge_clear_pct": Level(40, 0, 100),
        "runtime_raise_s": Level(300, *_S), "runtime_clear_s": Level(420, *_S)},
        (("charge_raise_pct", "charge_clear_pct"), ("runtime_raise_s", "runtime_clear_s"))),
    "battery_replace": RuleSpec(60, 60),
    "battery_fault": RuleSpec(30, 30),
    "ups_fault": RuleSpec(30, 30),
    "overload": RuleSpec(10, 30, {
        "load_raise_pct": Level(100, 1, 200), "load_clear_pct": Level(90, 0, 200)},
        (("load_clear_pct", "load_raise_pct"),)),
    "bypass": RuleSpec(10, 10),
    "voltage": RuleSpec(10, 10, {
        "nominal_ln_v": Level(127, 50, 500), "nominal_ll_v": Level(220, 80, 1000),
        "low_raise_pct": Level(90, 50, 100), "low_clear_pct": Level(93, 50, 100),
        "high_clear_pct": Level(107, 100, 150), "high_raise_pct": Level(110, 100, 150),
        "dead_v": Level(20, 0, 100)},
        (("low_raise_pct", "low_clear_pct"), ("low_clear_pct", "high_clear_pct"),
         ("high_clear_pct", "high_raise_pct"))),
    "frequency": RuleSpec(10, 10, {
        "nominal_hz": Level(60, 40, 70), "raise_dev_hz": Level(0.8, 0.05, 10),
        "clear_dev_hz": Level(0.5, 0.0, 10)},
        (("clear_dev_hz", "raise_dev_hz"),)),
    "wan_down": RuleSpec(30, 30),
    "wan_degraded": RuleSpec(300, 300, {
        "loss_raise_pct": Level(20, 0, 100), "loss_clear_pct": Level(10, 0, 100),
        "latency_raise_ms": Level(1500, 1, 60_000), "latency_clear_ms": Level(1000, 0, 60_000),
        "window_s": Level(300, 10, 86_400)},
        (("loss_clear_pct", "loss_raise_pct"), ("latency_clear_ms", "latency_raise_ms"))),
    "device_unreachable": RuleSpec(0, 0, {"polls": Level(3, 1, 1000, integer=True)}),
    "disk_full": RuleSpec(60, 60, {
        "raise_pct": Level(90, 1, 100), "clear_pct": Level(85, 0, 100)},
        (("clear_pct", "raise_pct"),)),
    "buffer_dropping": RuleSpec(0, 600),
    "clock_unsynced": RuleSpec(60, 60),
    "clock_stepped": RuleSpec(0, 300),
})


@dataclass(frozen=True)
class Rule:
    """One condition's settings, resolved (site defaults, then the device's overrides)."""

    enabled: bool
    raise_after_s: float
    clear_after_s: float
    levels: Mapping[str, float]

    def __getitem__(self, key: str) -> float:
        return self.levels[key]


def default_rules() -> dict[str, Rule]:
    return {name: Rule(True, float(spec.raise_after_s), float(spec.clear_after_s),
                       {k: float(v.default) for k, v in spec.levels.items()})
            for name, spec in RULES.items()}


@dataclass(frozen=True)
class EventsConfig:
    enabled: bool = True
    generator: bool = False          # the site declares a generator / transfer switch
    flap_transitions: int = 4        # more raise/clear than this within flap_window_s: flapping
    flap_window_s: float = 600.0
    flap_quiet_s: float = 300.0      # no transition for this long: no longer flapping
    restart_gap_s: float = 60.0      # a gap in observation longer than this makes an end estimated
    rules: Mapping[str, Rule] = field(default_factory=default_rules)
    devices: Mapping[str, Mapping[str, Rule]] = field(default_factory=dict)

    def rules_for(self, device: str) -> Mapping[str, Rule]:
        """The rules that apply to ``device``: its own overrides, else the site's."""
        return self.devices.get(device, self.rules)


def parse(t: Table) -> EventsConfig:
    """Read ``[events]``, recording every problem on ``t`` with its key path."""
    enabled = t.bool("enabled", True)
    generator = t.bool("generator", False)
    flap_transitions = t.int("flap_transitions", 4, min=1, max=1000)
    flap_window_s = t.float("flap_window_s", 600.0, min=1, max=86_400)
    flap_quiet_s = t.float("flap_quiet_s", 300.0, min=1, max=86_400)
    restart_gap_s = t.float("restart_gap_s", 60.0, min=1, max=86_400)
    rules = _parse_rules(t, default_rules())
    devices: dict[str, Mapping[str, Rule]] = {}
    dev_table = t.table("devices")
    for name in list(dev_table.data):
        sub = dev_table.table(name)
        if not _valid_name(name):
            dev_table.problem(name, "expected a device name of lowercase letters, digits, "
                                    "'_' or '-' (max 32)")
            continue
        devices[name] = _parse_rules(sub, rules)
        sub.finish()
    dev_table.finish()
    t.finish()
    return EventsConfig(
        enabled=bool(enabled), generator=bool(generator),
        flap_transitions=flap_transitions or 4, flap_window_s=flap_window_s or 600.0,
        flap_quiet_s=flap_quiet_s or 300.0, restart_gap_s=restart_gap_s or 60.0,
        rules=MappingProxyType(rules), devices=MappingProxyType(devices))


def check_devices(t: Table, cfg: EventsConfig, device_names: set[str]) -> None:
    """Per-device overrides must name a device of the file (a typo would be silently ignored)."""
    for name in cfg.devices:
        if name not in device_names:
            t.problem(f"devices.{name}", "no device of that name in [[devices]]")


def _valid_name(name: str) -> bool:
    return re.fullmatch(DEVICE_NAME_PATTERN, name) is not None


def _parse_rules(t: Table, base: Mapping[str, Rule]) -> dict[str, Rule]:
    out: dict[str, Rule] = {}
    for name, spec in RULES.items():
        if not t.has(name):
            out[name] = base[name]
            continue
        r = t.table(name)
        parent = base[name]
        enabled = r.bool("enabled", parent.enabled)
        raise_after = r.float("raise_after_s", parent.raise_after_s, min=0, max=86_400)
        clear_after = r.float("clear_after_s", parent.clear_after_s, min=0, max=86_400)
        levels = dict(parent.levels)
        for key, level in spec.levels.items():
            if level.integer:
                value = r.int(key, None, min=int(level.lo), max=int(level.hi))
            else:
                value = r.float(key, None, min=level.lo, max=level.hi)
            if value is not None:
                levels[key] = float(value)
        for low, high in spec.order:
            if levels[low] >= levels[high]:
                # Name the key the technician set; of two, the clear level (hysteresis is
                # the clear level's distance from the raise level).
                named = [k for k in (low, high) if r.has(k)] or [low]
                bad = next((k for k in named if "clear" in k), named[0])
                other = high if bad == low else low
                side = "less" if bad == low else "more"
                r.problem(bad, f"expected {side} than {other} ({levels[other]:g}), "
                               f"got {levels[bad]:g}")
        if name == "voltage":
            floor = levels["nominal_ln_v"] * levels["low_raise_pct"] / 100
            if levels["dead_v"] >= floor:
                r.problem("dead_v", f"expected less than the low raise level ({floor:g} V), "
                                    f"got {levels['dead_v']:g}")
        r.finish()
        out[name] = Rule(bool(enabled), raise_after if raise_after is not None else
                         parent.raise_after_s, clear_after if clear_after is not None else
                         parent.clear_after_s, MappingProxyType(levels))
    return out
