"""The ``[[devices]]`` list: fields every device has, then the settings of its kind.

Each kind (snmp, modbus, host, wan) parses its own settings in its own module, found through the
one registry (``agent.kinds``); this module checks what concerns the whole list (unique names,
a wan device's router).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from agent import kinds
from agent.config.fields import Table, show
from agent.i18n import text

DEVICE_NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,31}"

S = TypeVar("S")


@dataclass(frozen=True)
class DeviceConfig(Generic[S]):
    """One ``[[devices]]`` entry; ``settings`` is its kind's settings (``agent.kinds``)."""

    name: str
    kind: str
    interval_s: float
    timeout_s: float
    settings: S
    enabled: bool = True


def parse_devices(root: Table) -> tuple[DeviceConfig[Any], ...]:
    registry = kinds.KINDS
    devices: list[DeviceConfig[Any]] = []
    seen: dict[str, str] = {}
    tables = root.tables("devices")
    for t in tables:
        name = t.str("name", pattern=DEVICE_NAME_PATTERN, what=text("cfg.what.device_name"))
        if name is not None:
            if name in seen:
                t.problem("name", "cfg.name_used", name=show(name), other=seen[name])
            seen[name] = t.label
        kind = t.str("kind", choices=tuple(registry))
        interval = t.float("interval_s", 10.0, min=0.05, max=86400)
        timeout = t.float("timeout_s", min(3.0, interval or 3.0), min=0.05, max=600)
        enabled = t.bool("enabled", True)
        if interval is not None and timeout is not None and timeout > interval:
            t.problem("timeout_s", "cfg.timeout_over_interval", interval=f"{interval:g}",
                      got=f"{timeout:g}")
        found = registry.get(kind) if kind is not None else None
        settings: Any = None
        if found is not None:
            settings = found.parse(t)
            t.finish()
        # else: without its kind nothing else of the entry can be judged: one mistake, one problem.
        devices.append(DeviceConfig(name=name or "", kind=kind or "", interval_s=interval or 10.0,
                                    timeout_s=timeout or 3.0, settings=settings,
                                    enabled=bool(enabled)))
    _check_wan_routers(tables, devices)
    return tuple(devices)


def _check_wan_routers(tables: list[Table], devices: list[DeviceConfig[Any]]) -> None:
    """A wan device's ``router`` must name an SNMP device of the same file (typos are silent
    otherwise: the router's view of the WAN would just never appear)."""
    by_name = {d.name: d.kind for d in devices}
    snmp_kind = kinds.SNMP.name
    for t, dev in zip(tables, devices, strict=True):
        wan = kinds.WAN.settings_of(dev)
        router = wan.router if wan is not None else None
        if router is None or by_name.get(router) == snmp_kind:
            continue
        snmp = ", ".join(n for n, k in by_name.items() if k == snmp_kind) or "-"
        if router in by_name:
            t.problem("router", "cfg.wan.router_not_snmp", got=show(router), kind=by_name[router],
                      snmp=snmp)
        else:
            t.problem("router", "cfg.wan.router_unknown", got=show(router), snmp=snmp)
