"""The one registry of device kinds, like node_exporter's ``registerCollector``.

    kind name -> Kind(settings type, parser, source factory, doctor hints)

``agent.config.devices`` parses each ``[[devices]]`` entry with its kind's parser (so a device's
``settings`` is that kind's frozen settings object), ``agent.sources.factory`` builds its source
with the kind's factory, and ``doctor``/``status`` pick the hint for a failing device from the
kind's hints. Adding a kind is one ``register(Kind(...))`` here and nothing anywhere else.

Source modules are imported when a source is built, never at import: ``validate`` and the CLI
stay light (no pysnmp, no pymodbus).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from agent.config import host as host_cfg
from agent.config import modbus as modbus_cfg
from agent.config import snmp as snmp_cfg
from agent.config import wan as wan_cfg
from agent.config.fields import Table

if TYPE_CHECKING:
    from agent.config.devices import DeviceConfig
    from agent.sources import Source
    from agent.sources.latest import LatestSamples
    from agent.sources.modbus import BusPool

S = TypeVar("S")

# The hint for a failing device of a kind that has none of its own for that status.
GENERIC_HINTS: Mapping[str, str] = {
    "timeout": "hint.device.timeout",
    "refused": "hint.device.refused",
    "bad_answer": "hint.device.bad_answer",
}
GENERIC_HINT = "hint.device.error"


class SourceContext(Protocol):
    """What a kind's source factory may use besides the device (``SourceFactory`` owns it)."""

    @property
    def state_dir(self) -> str: ...

    @property
    def latest(self) -> LatestSamples: ...

    def modbus_buses(self) -> BusPool: ...


@dataclass(frozen=True)
class Kind(Generic[S]):
    """One kind of device: how its settings are parsed and how its source is built."""

    name: str
    settings: type[S]
    parse: Callable[[Table], S]
    build: Callable[[DeviceConfig[S], SourceContext], Source]
    hints: Mapping[str, str] = field(default_factory=dict)   # poll status -> hint id (agent.i18n)

    def settings_of(self, device: DeviceConfig[Any]) -> S | None:
        """The device's settings if it is of this kind, else None (typed narrowing)."""
        if device.kind == self.name and isinstance(device.settings, self.settings):
            return device.settings
        return None

    def hint(self, status: str) -> str:
        """The hint id for a device of this kind failing with ``status``."""
        return self.hints.get(status) or GENERIC_HINTS.get(status) or GENERIC_HINT


KINDS: dict[str, Kind[Any]] = {}


def register(kind: Kind[S]) -> Kind[S]:
    """Add ``kind`` to the registry (a name registered twice is a programming error)."""
    if kind.name in KINDS:
        raise ValueError(f"device kind {kind.name!r} is registered twice")
    KINDS[kind.name] = kind
    return kind


def kind_of(name: str) -> Kind[Any] | None:
    """The registered kind called ``name``, or None."""
    return KINDS.get(name)


def device_hint(kind: str, status: str) -> str:
    """The hint id for a device of ``kind`` failing with ``status`` (agent.i18n has them all)."""
    found = KINDS.get(kind)
    return found.hint(status) if found is not None else \
        GENERIC_HINTS.get(status) or GENERIC_HINT


# -- the kinds ---------------------------------------------------------------------------------

def _snmp_source(device: DeviceConfig[snmp_cfg.SnmpSettings], ctx: SourceContext) -> Source:
    from agent.sources.snmp import SnmpSource
    return SnmpSource(device, latest=ctx.latest)


def _modbus_source(device: DeviceConfig[modbus_cfg.ModbusSettings], ctx: SourceContext) -> Source:
    from agent.sources.modbus import ModbusSource
    return ModbusSource(device, ctx.modbus_buses())


def _host_source(device: DeviceConfig[host_cfg.HostSettings], ctx: SourceContext) -> Source:
    from agent.sources.host import HostSource
    return HostSource(device, state_dir=ctx.state_dir)


def _wan_source(device: DeviceConfig[wan_cfg.WanSettings], ctx: SourceContext) -> Source:
    from agent.sources.wan import WanSource
    return WanSource(device, latest=ctx.latest)


SNMP = register(Kind("snmp", snmp_cfg.SnmpSettings, snmp_cfg.parse, _snmp_source, hints={
    "timeout": "hint.device.snmp.timeout", "refused": "hint.device.snmp.refused",
    "bad_answer": "hint.device.snmp.bad_answer"}))
MODBUS = register(Kind("modbus", modbus_cfg.ModbusSettings, modbus_cfg.parse, _modbus_source,
                       hints={"timeout": "hint.device.modbus.timeout",
                              "refused": "hint.device.modbus.refused",
                              "bad_answer": "hint.device.modbus.bad_answer"}))
HOST = register(Kind("host", host_cfg.HostSettings, host_cfg.parse, _host_source))
WAN = register(Kind("wan", wan_cfg.WanSettings, wan_cfg.parse, _wan_source))
