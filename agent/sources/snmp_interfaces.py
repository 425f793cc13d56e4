"""Interface discovery, naming, selection and WAN recognition (pure: a walk in, a plan out).

    compile_interfaces(walk) -> InterfacePlan: each ifIndex's name and metric key, the
    interfaces to report (the ``interfaces`` selectors) and the WAN (``wan_interface``, or
    recognised: the default route's interface, else a WAN ifType, else a WAN-like name)

``<key>`` is ifName (else ifDescr, else ``if<ifIndex>``) lowercased, reduced to [a-z0-9_.-]; a
key already taken gets ``_<ifIndex>`` appended. Nothing here logs: what is worth saying comes
back as ``Note``s, which the source logs once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from agent.config.snmp import InterfaceSelector, SnmpSettings
from agent.config.snmp_profiles import InterfaceSpec
from agent.sources.snmp_client import GAUGE, INTEGER, STRING, Oid
from agent.sources.snmp_values import clean_text
from agent.sources.snmp_walk import Walk, dotted

STATUS_UP = 1
_LOOPBACK_TYPE = 24
# Interface columns read on discovery polls only: names and types do not change between them.
STATIC_ROLES = ("descr", "name", "type", "alias")
# How the WAN was recognised, most trusted first (lower rank wins over a remembered WAN).
_RANK_ROUTE, _RANK_TYPE, _RANK_NAME = 1, 2, 3


@dataclass(frozen=True)
class Note:
    """Something to log: once per ``key`` (None: every time), at ``level``."""

    key: str | None
    level: int
    message: str
    args: tuple[object, ...] = ()


@dataclass(frozen=True)
class Interface:
    index: int
    name: str
    descr: str
    alias: str
    key: str
    if_type: int | None = None


@dataclass(frozen=True)
class WanMemory:
    """The WAN last recognised automatically, and how (its rank)."""

    name: str
    rank: int


@dataclass(frozen=True)
class InterfacePlan:
    """Compiled on a discovery poll: which interfaces to report and under which key."""

    interfaces: dict[int, Interface]
    selected: tuple[int, ...]
    wan: int | None
    compiled_at: float
    wan_gone: str | None = None    # the WAN vanished from the table: reported down by this name


def metric_key(name: str) -> str:
    """An interface name as a metric path segment: lowercase [a-z0-9_.-], no empty parts."""
    key = re.sub(r"[^a-z0-9_.-]+", "_", name.lower())
    return re.sub(r"\.{2,}", ".", key)[:64].strip("._-")


def static_roles(settings: SnmpSettings) -> list[str]:
    """The discovery-only columns this device's settings need."""
    # ifAlias only matters when the technician selects interfaces by name or label, ifType
    # for "type:" selectors and recognising the WAN: each is 1 value per interface.
    needs_alias = settings.wan_interface is not None or \
        any(sel.if_type is None for sel in settings.interfaces)
    needs_type = settings.wan_auto or any(sel.if_type is not None for sel in settings.interfaces)
    return [r for r in STATIC_ROLES
            if (r != "alias" or needs_alias) and (r != "type" or needs_type)]


def interface_indices(itf: InterfaceSpec, walk: Walk, device: str) -> tuple[set[int], list[Note]]:
    """The ifIndex values present in the walked status columns."""
    indices: set[int] = set()
    notes: list[Note] = []
    for role in ("admin", "oper"):
        column = itf.column(role)
        for suffix in walk.columns.get(column, {}) if column is not None else {}:
            if len(suffix) == 1:
                indices.add(suffix[0])
            else:
                notes.append(Note("index", logging.WARNING, "%s: ignoring an interface row with "
                                  "index %s", (device, dotted(suffix))))
    return indices, notes


def interface_texts(itf: InterfaceSpec, walk: Walk, role: str,
                    device: str) -> tuple[dict[int, str], list[Note]]:
    texts: dict[int, str] = {}
    notes: list[Note] = []
    column = itf.column(role)
    if column is None:
        return texts, notes
    for suffix, (vb, _) in walk.columns.get(column, {}).items():
        if len(suffix) != 1:
            continue
        if vb.kind == STRING and isinstance(vb.value, bytes):
            texts[suffix[0]] = clean_text(vb.value)
        elif not vb.is_exception:
            notes.append(Note(f"text:{role}", logging.WARNING, "%s: interface %s is %s, not a "
                              "string; ignoring it", (device, role, vb.kind)))
    return texts, notes


def interface_numbers(itf: InterfaceSpec, walk: Walk, role: str) -> dict[int, int]:
    column = itf.column(role)
    if column is None:
        return {}
    return {s[0]: vb.value for s, (vb, _) in walk.columns.get(column, {}).items()
            if len(s) == 1 and vb.kind in (INTEGER, GAUGE) and isinstance(vb.value, int)}


def compile_interfaces(itf: InterfaceSpec, walk: Walk, indices: set[int],
                       settings: SnmpSettings, *, device: str, now: float, routes: list[Oid],
                       wan_memory: WanMemory | None
                       ) -> tuple[InterfacePlan, WanMemory | None, list[Note]]:
    """The plan for the interfaces of a discovery poll, the WAN to remember, and the notes."""
    notes: list[Note] = []
    texts: dict[str, dict[int, str]] = {}
    for role in ("descr", "name", "alias"):
        texts[role], said = interface_texts(itf, walk, role, device)
        notes += said
    types = interface_numbers(itf, walk, "type")
    selectors = settings.interfaces
    wan_selector = settings.wan_interface
    taken = {itf.wan_key} if (wan_selector or settings.wan_auto) else set()
    interfaces: dict[int, Interface] = {}
    for index in sorted(indices):
        descr = texts["descr"].get(index, "")
        name = texts["name"].get(index, "") or descr or f"if{index}"
        key = metric_key(name) or f"if{index}"
        if key in taken:
            key = f"{key}_{index}"
        taken.add(key)
        interfaces[index] = Interface(index, name, descr, texts["alias"].get(index, ""), key,
                                      types.get(index))

    def matches(selector: InterfaceSelector, x: Interface) -> bool:
        return selector.matches(x.name, x.descr, x.key, alias=x.alias, if_type=x.if_type)

    choices = ", ".join(i.name for i in interfaces.values()) or "none"
    selected = [i for i, x in interfaces.items()
                if not selectors or any(matches(s, x) for s in selectors)]
    for n, selector in enumerate(selectors):
        if not any(matches(selector, x) for x in interfaces.values()):
            notes.append(Note(f"selector:{selector}", logging.WARNING, "%s: interfaces[%d] %r "
                              "matches none of the device's interfaces (%s)",
                              (device, n, str(selector), choices)))
    wan: int | None = None
    why, gone = "", None
    if wan_selector is not None:
        candidates = [i for i, x in interfaces.items() if matches(wan_selector, x)]
        if not candidates:
            notes.append(Note("wan", logging.WARNING, "%s: wan_interface %r matches none of the "
                              "device's interfaces (%s)", (device, str(wan_selector), choices)))
        else:
            wan, why = candidates[0], f"wan_interface {str(wan_selector)!r}"
            if len(candidates) > 1:
                notes.append(Note("wan-many", logging.WARNING, "%s: wan_interface %r matches %d "
                                  "interfaces; using %s", (device, str(wan_selector),
                                                           len(candidates), interfaces[wan].name)))
    elif settings.wan_auto:
        wan, why, gone, wan_memory, said = recognise_wan(itf, walk, interfaces, routes,
                                                         wan_memory, device)
        notes += said
    if wan is not None and wan not in selected:
        selected.append(wan)
    notes.append(Note(None, logging.INFO, "%s: %d interface(s), reporting %s%s", (
        device, len(interfaces), ", ".join(interfaces[i].name for i in sorted(selected)) or "none",
        f"; WAN is {interfaces[wan].name} ({why})" if wan is not None else
        (f"; WAN {gone} is gone" if gone else ""))))
    return InterfacePlan(interfaces, tuple(sorted(selected)), wan, now, gone), wan_memory, notes


def recognise_wan(itf: InterfaceSpec, walk: Walk, interfaces: dict[int, Interface],
                  routes: list[Oid], memory: WanMemory | None, device: str
                  ) -> tuple[int | None, str, str | None, WanMemory | None, list[Note]]:
    """(ifIndex, why) of the recognised WAN, the name of a remembered WAN that vanished, the WAN
    to remember, and the notes."""
    oper_column = itf.column("oper")
    oper = {s[0]: vb.value
            for s, (vb, _) in (walk.columns.get(oper_column, {}) if oper_column else {}).items()
            if len(s) == 1}

    def best(candidates: list[int]) -> int:
        return min(candidates, key=lambda i: (oper.get(i) != STATUS_UP, i))

    found: tuple[int, str, int] | None = None
    for spec in itf.default_routes:
        vb = walk.scalars.get(spec.oid) if spec.oid in routes else None
        if (vb is None or vb.kind != INTEGER or not isinstance(vb.value, int)
                or vb.oid[:len(spec.oid)] != spec.oid
                or vb.oid[len(spec.oid):][:len(spec.index_prefix)] != spec.index_prefix):
            continue
        x = interfaces.get(vb.value)
        if x is not None and x.if_type != _LOOPBACK_TYPE:
            found = (x.index, f"it carries the default route ({dotted(spec.oid)})", _RANK_ROUTE)
            break
    if found is None:
        typed = [i for i, x in interfaces.items() if x.if_type in itf.wan_types]
        if typed:
            index = best(typed)
            found = (index, f"ifType {interfaces[index].if_type}", _RANK_TYPE)
    if found is None:
        for n, pattern in enumerate(itf.wan_names):
            named = [i for i, x in interfaces.items()
                     if re.search(pattern, x.name) or re.search(pattern, x.descr)]
            if named:
                found = (best(named), f"its name matches {pattern!r}", _RANK_NAME + n)
                break
    present = {x.name for x in interfaces.values()}
    if memory is not None and memory.name not in present and (found is None
                                                              or found[2] > memory.rank):
        # A PPP or cellular interface disappears when its link drops: say the WAN is down
        # rather than quietly promoting a weaker candidate (or nothing) to if.wan.*.
        return None, "", memory.name, memory, [Note(
            f"wan-gone:{memory.name}", logging.WARNING, "%s: the WAN %s is gone from the "
            "interface table; reporting it down", (device, memory.name))]
    if found is None:
        return None, "", None, memory, [Note(
            "wan-auto", logging.INFO, "%s: no interface recognisable as the WAN (%s); set "
            "wan_interface", (device, ", ".join(x.name for x in interfaces.values()) or "none"))]
    return found[0], found[1], None, WanMemory(interfaces[found[0]].name, found[2]), []
