"""The ``[[devices]]`` list: fields every device has, then the settings of its kind.

Each kind (snmp, modbus, host) parses its own settings in its own module; this one dispatches on
``kind`` and checks what concerns the whole list (unique names).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.config import host as host_cfg
from agent.config import modbus as modbus_cfg
from agent.config import snmp as snmp_cfg
from agent.config import wan as wan_cfg
from agent.config.fields import Table, show
from agent.i18n import text

DEVICE_NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,31}"

KIND_PARSERS: dict[str, Callable[[Table], Any]] = {
    "snmp": snmp_cfg.parse,
    "modbus": modbus_cfg.parse,
    "host": host_cfg.parse,
    "wan": wan_cfg.parse,
}


@dataclass(frozen=True)
class DeviceConfig:
    name: str
    kind: str
    interval_s: float
    timeout_s: float
    settings: Any            # SnmpSettings | ModbusSettings | HostSettings
    enabled: bool = True


def parse_devices(root: Table) -> tuple[DeviceConfig, ...]:
    devices: list[DeviceConfig] = []
    seen: dict[str, str] = {}
    tables = root.tables("devices")
    for t in tables:
        name = t.str("name", pattern=DEVICE_NAME_PATTERN, what=text("cfg.what.device_name"))
        if name is not None:
            if name in seen:
                t.problem("name", "cfg.name_used", name=show(name), other=seen[name])
            seen[name] = t.label
        kind = t.str("kind", choices=tuple(KIND_PARSERS))
        interval = t.float("interval_s", 10.0, min=0.05, max=86400)
        timeout = t.float("timeout_s", min(3.0, interval or 3.0), min=0.05, max=600)
        enabled = t.bool("enabled", True)
        if interval is not None and timeout is not None and timeout > interval:
            t.problem("timeout_s", "cfg.timeout_over_interval", interval=f"{interval:g}",
                      got=f"{timeout:g}")
        if kind in KIND_PARSERS:
            settings = KIND_PARSERS[kind](t)
            t.finish()
        else:
            # Without its kind nothing else of the entry can be judged: one mistake, one problem.
            settings = None
        devices.append(DeviceConfig(name=name or "", kind=kind or "", interval_s=interval or 10.0,
                                    timeout_s=timeout or 3.0, settings=settings,
                                    enabled=bool(enabled)))
    _check_wan_routers(tables, devices)
    return tuple(devices)


def _check_wan_routers(tables: list[Table], devices: list[DeviceConfig]) -> None:
    """A wan device's ``router`` must name an SNMP device of the same file (typos are silent
    otherwise: the router's view of the WAN would just never appear)."""
    kinds = {d.name: d.kind for d in devices}
    for t, dev in zip(tables, devices, strict=False):
        router = getattr(dev.settings, "router", None) if dev.kind == "wan" else None
        if router is None or kinds.get(router) == "snmp":
            continue
        snmp = ", ".join(n for n, k in kinds.items() if k == "snmp") or "-"
        if router in kinds:
            t.problem("router", "cfg.wan.router_not_snmp", got=show(router), kind=kinds[router],
                      snmp=snmp)
        else:
            t.problem("router", "cfg.wan.router_unknown", got=show(router), snmp=snmp)
