"""Find devices the technician has not configured yet: Modbus units on a bus, an SNMP agent.

    scan_modbus: for each line setting (serial) or the one gateway (TCP) -> for each unit id ->
                 read one register through ModbusLink (our pymodbus adapter) -> who answered
    scan_snmp:   for each community x (v2c, then v1) -> GET system group through SnmpClient
                 (our pysnmp adapter) -> who answered; then whether the agent speaks v3

Both report progress through a callback (the CLI draws the bar) and return plain records; the
suggested ``[[devices]]`` entries are built here, their comments come from ``agent.i18n``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from agent.config.secret import Secret
from agent.config.snmp import SnmpSettings
from agent.errors import DeviceProtocolError, DeviceRefused, DeviceTimeout, SourceError
from agent.i18n import Text, text
from agent.sources.modbus_link import (
    GATEWAY_CODES,
    BusParams,
    ConnectionLost,
    ExceptionResponse,
    ModbusLink,
)

if TYPE_CHECKING:
    from agent.sources.snmp_client import VarBind

Progress = Callable[[int, int, str], None]      # done, total, what is being tried

COMMON_BAUDRATES = (9600, 19200, 4800, 38400, 2400, 57600, 115200)
COMMON_PARITIES = ("N", "E", "O")
COMMON_COMMUNITIES = ("public", "private")
ALL_UNITS = tuple(range(1, 248))

SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_OBJECT_ID = (1, 3, 6, 1, 2, 1, 1, 2, 0)
SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 5, 0)


def parse_units(written: str) -> tuple[int, ...]:
    """ "1-10,17,247" -> (1, ..., 10, 17, 247). Raises ValueError on anything else."""
    units: list[int] = []
    for part in written.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        first, last = int(lo), int(hi) if sep else int(lo)
        if not 0 <= first <= last <= 255:
            raise ValueError(part)
        units.extend(range(first, last + 1))
    return tuple(dict.fromkeys(units))


# -- Modbus ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModbusFound:
    """A unit that answered. ``table``/``address``/``value``: a register it gave a value for;
    ``exception``: the Modbus exception it answered instead (it is there all the same)."""

    unit: int
    params: BusParams
    table: str | None = None
    address: int | None = None
    value: int | None = None
    exception: str | None = None


@dataclass
class ModbusScan:
    where: str
    transport: str
    tried: list[str] = field(default_factory=list)          # line settings tried ("9600 8N1")
    found: list[ModbusFound] = field(default_factory=list)
    noise: list[str] = field(default_factory=list)          # settings where bytes came back garbled
    unsupported: list[str] = field(default_factory=list)    # settings the port cannot be set to
    unsupported_why: list[Text] = field(default_factory=list)   # the same, to show translated
    error: Text | str | None = None                         # could not open the port / connect


def serial_settings(
    port: str, baudrates: Sequence[int], parities: Sequence[str]
) -> list[BusParams]:
    return [BusParams("rtu", serial_port=port, baudrate=b, parity=p, stopbits=1, bytesize=8)
            for b in baudrates for p in parities]


QUICK_UNITS = 10   # most buses use the lowest unit ids: try those under every setting first


async def scan_modbus(settings: Sequence[BusParams], units: Sequence[int], *, timeout: float,
                      progress: Progress, all_settings: bool = False) -> ModbusScan:
    """Probe ``units`` under each of ``settings`` (in order).

    With several line settings the lowest unit ids are tried under each setting first, so the
    right baud rate and parity are found in seconds rather than minutes; then the other unit ids
    under the setting(s) that answered (or under all, if none did). Without ``all_settings``
    the scan stops at the first setting where something answered.
    """
    first = settings[0]
    scan = ModbusScan(where=first.where, transport=first.transport)
    quick = [u for u in units if u <= QUICK_UNITS] if len(settings) > 1 else []
    rest = [u for u in units if u not in quick]
    state = {"done": 0, "total": len(settings) * len(units), "settings": len(settings)}
    answered: list[BusParams] = []
    if quick:
        for params in settings:
            found, error = await _sweep(scan, params, quick, timeout, progress, state)
            if error:
                return scan
            if found:
                answered.append(params)
                if not all_settings:
                    break
        state["total"] = state["done"] + len(answered or settings) * len(rest)
    for params in (answered or settings):
        found, error = await _sweep(scan, params, rest, timeout, progress, state)
        if error:
            return scan
        if found and not all_settings:
            break
    progress(state["total"], state["total"], f"found: {_units_text(scan.found)}")
    scan.found.sort(key=lambda f: (f.params.line, f.unit))
    return scan


async def _sweep(scan: ModbusScan, params: BusParams, units: Sequence[int], timeout: float,
                 progress: Progress, state: dict[str, int]) -> tuple[bool, bool]:
    """Probe ``units`` under one setting; (anything found, could not open the bus)."""
    if not units:
        return any(f.params == params for f in scan.found), False
    label = params.line if params.is_serial else params.where
    if label not in scan.tried:
        scan.tried.append(label)
    if params.is_serial:
        # Forty character times at this baud rate: a request and its answer, and some slack.
        timeout = max(timeout, 0.05 + 40 * 11 / params.baudrate)
    link = ModbusLink(params)
    found = False
    try:
        try:
            await link.connect(max(timeout, 2.0))
        except Exception as exc:  # noqa: BLE001 - pymodbus/termios: refused setting, busy port
            # Some adapters (and ptys) refuse some settings: try the others. Only a bus that
            # opens under no setting at all is the scan's error.
            why = _why(exc)
            scan.unsupported_why.append(text("src.setting_failed", setting=label, error=why))
            scan.unsupported.append(str(scan.unsupported_why[-1]))
            if len(scan.unsupported) == state["settings"]:
                scan.error = why
                return False, True
            return False, False
        for unit in units:
            progress(state["done"], state["total"],
                     f"{label}  unit {unit}  found: {_units_text(scan.found)}")
            state["done"] += 1
            try:
                hit = await _probe_unit(link, params, unit, timeout)
            except DeviceProtocolError:
                if label not in scan.noise:
                    scan.noise.append(label)
                continue
            if hit is not None:
                scan.found.append(hit)
                found = True
    finally:
        link.close()
    return found or any(f.params == params for f in scan.found), False


def _why(exc: Exception) -> Text | str:
    """Why the bus would not open: the error's code when it has one (shown in the reader's
    language), else its words."""
    if isinstance(exc, SourceError):
        return exc.code or exc.reason
    return str(getattr(exc, "reason", None) or exc)


async def _probe_unit(link: ModbusLink, params: BusParams, unit: int,
                      timeout: float) -> ModbusFound | None:
    exception: str | None = None
    for table in ("holding", "input"):
        try:
            value = (await _read(link, table, unit, timeout))[0]
        except ExceptionResponse as exc:
            if exc.code in GATEWAY_CODES:
                return None
            exception = f"{exc.code} ({exc.name})"
            continue
        except DeviceTimeout:
            return None
        except DeviceRefused:
            return None
        return ModbusFound(unit, params, table=table, address=0, value=int(value),
                           exception=exception)
    return ModbusFound(unit, params, exception=exception)


async def _read(
    link: ModbusLink, table: str, unit: int, timeout: float
) -> list[int] | list[bool]:
    for attempt in (1, 2):
        if not link.connected:
            await link.connect(max(timeout, 2.0))
        try:
            return await link.read(table, 0, 1, unit=unit, timeout=timeout)
        except ConnectionLost:
            link.close()
            if attempt == 2:
                raise
        except (DeviceTimeout, DeviceProtocolError):
            # Over TCP a late answer would be taken for the next unit's: start afresh.
            if not link.params.is_serial:
                link.close()
            raise
    raise AssertionError("unreachable")


def _units_text(found: Sequence[ModbusFound]) -> str:
    return ", ".join(str(f.unit) for f in found) or "-"


def modbus_entry(found: ModbusFound, *, name: str, comments: dict[str, str]) -> str:
    """A ``[[devices]]`` entry for a unit found by the scan, ready to paste and complete."""
    p = found.params
    lines = ["[[devices]]", f'name = "{name}"', 'kind = "modbus"']
    if p.is_serial:
        lines += ['transport = "rtu"', f'serial_port = "{p.serial_port}"',
                  f"baudrate = {p.baudrate}", f'parity = "{p.parity}"',
                  f"stopbits = {p.stopbits}"]
    else:
        if p.transport != "tcp":
            lines.append(f'transport = "{p.transport}"')
        lines += [f'host = "{p.host}"', f"port = {p.port}"]
    lines += [f"unit_id = {found.unit}", "interval_s = 10", "timeout_s = 2", "",
              f"  # {comments['registers']}", "  [[devices.registers]]"]
    table = found.table or "holding"
    lines += [f'  name = "{table}.r0"', f'  table = "{table}"', "  address = 0",
              '  type = "uint16"']
    return "\n".join(lines) + "\n"


# -- SNMP --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SnmpFound:
    version: str
    community: str
    sys_descr: str
    sys_name: str
    sys_object_id: str
    uptime_s: float | None


@dataclass
class SnmpScan:
    target: str
    port: int
    found: list[SnmpFound] = field(default_factory=list)
    v3: bool | None = None      # True: answers v3 discovery; False: silent; None: not tried
    error: Text | None = None


async def scan_snmp(target: str, port: int, communities: Sequence[str], *, timeout: float,
                    progress: Progress, try_v3: bool = True) -> SnmpScan:
    """Try each community with v2c, then v1 where v2c got no answer; then a v3 discovery."""
    from agent.sources.snmp_client import SnmpClient
    scan = SnmpScan(target, port)
    attempts = [(c, v) for c in communities for v in ("2c", "1")]
    total = len(attempts) + (1 if try_v3 else 0)
    answered: set[str] = set()
    try:
        await asyncio.to_thread(socket.getaddrinfo, target, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        scan.error = text("src.cannot_resolve", host=repr(target), error=exc.strerror or str(exc))
        return scan
    for i, (community, version) in enumerate(attempts):
        if community in answered:
            continue
        progress(i, total, f"{target}:{port}  v{version}  {_mask(community)}")
        settings = SnmpSettings(host=target, port=port, version=version,
                                community=Secret(community), retries=0)
        client = SnmpClient(settings, timeout_s=timeout, device="scan")
        try:
            vbs = await client.get([SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME, SYS_NAME])
        except SourceError:
            continue   # silent (a wrong community is ignored) or unusable: try the next
        finally:
            await client.close()
        answered.add(community)
        by_oid = {vb.oid: vb for vb in vbs}
        scan.found.append(SnmpFound(
            version=version, community=community,
            sys_descr=_text(by_oid.get(SYS_DESCR)), sys_name=_text(by_oid.get(SYS_NAME)),
            sys_object_id=".".join(map(str, cast("tuple[int, ...]", by_oid[SYS_OBJECT_ID].value)))
            if SYS_OBJECT_ID in by_oid and isinstance(by_oid[SYS_OBJECT_ID].value, tuple) else "",
            uptime_s=(cast(int, by_oid[SYS_UPTIME].value) / 100) if SYS_UPTIME in by_oid
            and isinstance(by_oid[SYS_UPTIME].value, int) else None))
    if try_v3:
        progress(len(attempts), total, f"{target}:{port}  v3")
        scan.v3 = await _v3_answers(target, port, timeout)
    progress(total, total, "")
    return scan


async def _v3_answers(target: str, port: int, timeout: float) -> bool:
    """Whether the agent answers a v3 request at all (a made-up user is refused, not ignored)."""
    from agent.sources.snmp_client import SnmpClient
    settings = SnmpSettings(host=target, port=port, version="3", user="clinic-agent-scan",
                            retries=0)
    client = SnmpClient(settings, timeout_s=timeout, device="scan")
    try:
        await client.get([SYS_DESCR])
        return True
    except DeviceRefused:
        return True
    except SourceError:
        return False
    finally:
        await client.close()


def _text(vb: VarBind | None) -> str:
    if vb is None or not isinstance(vb.value, bytes):
        return ""
    return vb.value.decode("utf-8", errors="replace").strip()


def _mask(community: str) -> str:
    """Communities are secrets: show only enough to tell them apart."""
    return community if community in COMMON_COMMUNITIES else community[:2] + "***"


def snmp_entry(found: SnmpFound, *, host: str, port: int, name: str,
               comments: dict[str, str]) -> tuple[str, str]:
    """The ``[[devices]]`` entry and its secrets-file part for an SNMP agent the scan found."""
    lines = ["[[devices]]", f'name = "{name}"', 'kind = "snmp"', f'host = "{host}"']
    if port != 161:
        lines.append(f"port = {port}")
    lines += [f'version = "{found.version}"', "interval_s = 30", "timeout_s = 3",
              f"# {comments['community']}"]
    secret = f'[devices.{name}]\ncommunity = "{found.community}"\n'
    return "\n".join(lines) + "\n", secret


def default_gateway(route_table: str | None = None) -> str | None:
    """The IPv4 default gateway from /proc/net/route (the clinic router, usually)."""
    if route_table is None:
        try:
            with open("/proc/net/route") as f:
                route_table = f.read()
        except OSError:
            return None
    for line in route_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3 and fields[1] == "00000000" and int(fields[3], 16) & 2:
            return socket.inet_ntoa(struct.pack("<L", int(fields[2], 16)))
    return None


def serial_ports(dev: str = "/dev") -> list[str]:
    """Serial adapters present (by-id names first, they survive replugging)."""
    found: list[str] = []
    by_id = os.path.join(dev, "serial", "by-id")
    if os.path.isdir(by_id):
        found += sorted(os.path.join(by_id, n) for n in os.listdir(by_id))
    try:
        found += sorted(os.path.join(dev, n) for n in os.listdir(dev)
                        if n.startswith(("ttyUSB", "ttyACM")) and n[-1:].isdigit())
    except OSError:
        pass
    return found
