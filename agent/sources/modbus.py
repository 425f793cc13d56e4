"""Modbus devices (UPS, power meter) over TCP, RTU on a serial port, or RTU tunnelled over TCP.

    ModbusSettings --compile_plan--> ReadPlan (once, at construction)
    ModbusSource.read():  for each ReadRequest -> Bus (lock, frame gap) -> ModbusLink (pymodbus)
                          -> registers -> modbus_decode.to_samples -> [Sample]

A bus has one master: devices on the same serial port, or behind the same TCP gateway, share one
``Bus`` from the ``BusPool`` -- one connection, one lock held per request, and a quiet
``frame_gap_ms`` between frames. After a failure the link is closed and the next poll reconnects.

Failures are isolated as far as the device allows: a read the device rejects with "illegal data
address" is split into one read per register, registers that do not exist are remembered and
left out of later polls, and a value that decodes to garbage (NaN, a string that is not text) is
skipped and logged once. A poll returns whatever it could read; it raises (so the poll status
says why) only when nothing at all could be read.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Sequence

from agent.config import DeviceConfig
from agent.config.modbus import BIT_TABLES, ModbusSettings, RegisterSpec
from agent.errors import DeviceProtocolError, DeviceRefused, DeviceTimeout, SourceError
from agent.i18n import Text, text
from agent.logs import OnceLog
from agent.readings import Sample
from agent.sources.modbus_decode import Garbage, to_samples
from agent.sources.modbus_link import (
    GATEWAY_CODES,
    BusParams,
    ConnectionLost,
    ExceptionResponse,
    ModbusLink,
)
from agent.sources.modbus_plan import ReadPlan, ReadRequest, compile_plan, single_reads

log = logging.getLogger(__name__)

# Exception codes meaning "not at this address": the read is split to find the culprit.
_ADDRESS_CODES = (2, 3)


class Bus:
    """One physical bus: a link, the lock that makes it one request at a time, the frame gap."""

    def __init__(self, params: BusParams) -> None:
        self.params = params
        self.link = ModbusLink(params)
        self.lock = asyncio.Lock()
        self.users: list[str] = []
        self._last_frame = 0.0

    async def read(self, table: str, address: int, count: int, *, unit: int, timeout: float,
                   frame_gap_s: float) -> list[int] | list[bool]:
        """One request, alone on the bus; connects first if needed. Raises agent errors."""
        async with self.lock:
            for attempt in (1, 2):
                fresh = not self.link.connected
                if fresh:
                    await self.link.connect(timeout)
                    log.debug("%s: connected to %s", self.who, self.params.where)
                await self._frame_gap(frame_gap_s)
                try:
                    return await self.link.read(table, address, count, unit=unit,
                                                timeout=timeout)
                except ConnectionLost:
                    self.link.close()
                    # A connection that sat idle since the last poll may have died unnoticed
                    # (the gateway restarted): reads are idempotent, so try once on a new one.
                    if fresh or attempt == 2:
                        raise
                    log.debug("%s: connection to %s was closed; reconnecting once", self.who,
                              self.params.where)
                except (DeviceTimeout, DeviceRefused, DeviceProtocolError,
                        asyncio.CancelledError):
                    # Over TCP a late answer would be taken for the next request's: start
                    # afresh. A serial port stays open: the other units on it are probably fine.
                    if not self.params.is_serial:
                        self.link.close()
                    raise
                finally:
                    self._last_frame = asyncio.get_running_loop().time()
        raise AssertionError("unreachable")

    @property
    def who(self) -> str:
        """The devices on this bus, for log lines."""
        return ", ".join(self.users) or "modbus"

    async def _frame_gap(self, gap_s: float) -> None:
        wait = self._last_frame + gap_s - asyncio.get_running_loop().time()
        if wait > 0:
            # The RTU silent interval: a frame sent too soon after the last answer is read by
            # the devices as the tail of that answer.
            await asyncio.sleep(wait)

    def close(self) -> None:
        self.link.close()


class BusPool:
    """Shares one ``Bus`` per TCP endpoint (host, port, transport) or per serial port."""

    def __init__(self) -> None:
        self._buses: dict[tuple[object, ...], Bus] = {}

    def acquire(self, settings: ModbusSettings, device: str) -> tuple[Bus, Text | None]:
        """The bus for ``settings``, and why ``device`` cannot use it (None when it can)."""
        params = bus_params(settings)
        key = bus_key(params)
        bus = self._buses.get(key)
        if bus is None:
            bus = self._buses[key] = Bus(params)
        conflict = None
        if params.is_serial and params.line != bus.params.line:
            conflict = text("src.modbus.bus_conflict", port=str(params.serial_port),
                            other=bus.users[0], used=bus.params.line, line=params.line)
        bus.users.append(device)
        return bus, conflict

    async def release(self, bus: Bus, device: str) -> None:
        """``device`` no longer uses ``bus``; the last user closes it."""
        if device in bus.users:
            bus.users.remove(device)
        if not bus.users:
            async with bus.lock:
                bus.close()
            for key, b in list(self._buses.items()):
                if b is bus:
                    del self._buses[key]

    async def close(self) -> None:
        """Close every bus (the agent is stopping)."""
        for bus in list(self._buses.values()):
            bus.close()
        self._buses.clear()

    def buses(self) -> list[Bus]:
        """The buses currently open or ready to open."""
        return list(self._buses.values())


def bus_params(s: ModbusSettings) -> BusParams:
    """The bus part of a device's settings."""
    if s.transport == "rtu":
        return BusParams(transport="rtu", serial_port=s.serial_port, baudrate=s.baudrate,
                         parity=s.parity, stopbits=s.stopbits, bytesize=s.bytesize)
    return BusParams(transport=s.transport, host=s.host, port=s.port)


def bus_key(p: BusParams) -> tuple[object, ...]:
    if p.is_serial:
        # /dev/serial/by-id/... and /dev/ttyUSB0 can be the same adapter: one bus, one lock.
        return ("rtu", os.path.realpath(str(p.serial_port)))
    return (p.transport, str(p.host).lower(), p.port)


class ModbusSource:
    """Reads one Modbus device (one unit id on one bus) per its compiled read plan."""

    def __init__(self, device: DeviceConfig[ModbusSettings], buses: BusPool) -> None:
        settings: ModbusSettings = device.settings
        self.name = device.name
        self.settings = settings
        self.timeout_s = device.timeout_s
        self._buses = buses
        self._bus, self._conflict = buses.acquire(settings, device.name)
        self.plan: ReadPlan = compile_plan(settings.registers,
                                           max_registers_per_read=settings.max_registers_per_read,
                                           max_gap=settings.max_gap)
        # Registers the device said it does not have, with the reason; left out of later polls.
        self.bad_registers: dict[RegisterSpec, str] = {}
        self._bad_codes: dict[RegisterSpec, Text | str] = {}   # the same, as catalogue codes
        self._log = OnceLog(log)
        self._closed = False

    async def read(self) -> list[Sample]:
        """Poll the device once; see the module docstring for what happens on failures."""
        if self._conflict:
            raise SourceError(self._conflict)
        if not self.plan.requests:
            raise DeviceProtocolError(text("src.modbus.no_registers",
                                           reasons=list(self._bad_codes.values())))
        samples: list[Sample] = []
        failures: list[SourceError] = []
        missing: list[SourceError] = []      # registers found missing (logged when found)
        garbage: list[Text] = []
        answered = 0
        queue: deque[ReadRequest] = deque(self.plan.requests)
        while queue:
            req = queue.popleft()
            try:
                data = await self._bus.read(req.table, req.address, req.count,
                                            unit=self.settings.unit_id, timeout=self.timeout_s,
                                            frame_gap_s=self.settings.frame_gap_ms / 1000)
            except ExceptionResponse as exc:
                if exc.code in _ADDRESS_CODES and len(req.registers) > 1:
                    singles = single_reads(req.registers)
                    log.info("%s: %s was rejected (%s); reading its %d registers one by one "
                             "from now on", self.name, self._what(req), exc.name, len(singles))
                    self._replace(req, singles)
                    queue.extendleft(reversed(singles))
                    continue
                error = self._exception_error(req, exc)
                if exc.code in _ADDRESS_CODES:
                    spec = req.registers[0]
                    self.bad_registers[spec] = error.reason
                    self._bad_codes[spec] = error.code or error.reason
                    self._replace(req, [])
                    log.warning("%s: skipping %s until the agent restarts: %s", self.name,
                                spec.name, error.reason)
                    missing.append(error)
                    continue
                failures.append(error)
                if isinstance(error, DeviceTimeout):
                    break
                continue
            except (DeviceTimeout, DeviceRefused) as exc:
                # The bus or the unit is gone: the remaining reads would only time out too.
                failures.append(exc)
                break
            except DeviceProtocolError as exc:
                failures.append(exc)
                continue
            answered += 1
            got, skipped = self._decode(req, data)
            samples.extend(got)
            garbage.extend(skipped)

        if not answered:
            raise _most_telling(failures + missing)
        if failures:
            partial = "; ".join(f.reason for f in failures)
            self._log.problem("partial", "%s: some registers could not be read: %s", self.name,
                              partial, change=partial)
        else:
            self._log.ok("partial", "%s: all registers read again", self.name)
        if not samples and garbage:
            raise DeviceProtocolError(text("src.modbus.all_garbage", values=garbage))
        return samples

    async def close(self) -> None:
        """Stop using the bus (closing it if this was its last device)."""
        if not self._closed:
            self._closed = True
            await self._buses.release(self._bus, self.name)

    # -- internals -----------------------------------------------------------------------------

    def _decode(self, req: ReadRequest,
                data: Sequence[int | bool]) -> tuple[list[Sample], list[Text]]:
        """Samples from one read's answer, and why any value in it was skipped."""
        out: list[Sample] = []
        skipped: list[Text] = []
        for spec in req.registers:
            key = f"garbage {spec.name}"
            try:
                out.extend(to_samples(spec, req.slice_for(spec, data)))
            except Garbage as exc:
                why = text("src.modbus.garbage_value", name=spec.name, label=_label(spec),
                           why=exc.code)
                skipped.append(why)
                self._log.problem(key, "%s: %s; skipping it", self.name, why, change=str(why))
                continue
            self._log.ok(key, "%s: %s (%s) has a valid value again", self.name, spec.name,
                         spec.label)
        return out, skipped

    def _replace(self, old: ReadRequest, new: list[ReadRequest]) -> None:
        requests: list[ReadRequest] = []
        for r in self.plan.requests:
            requests.extend(new if r == old else [r])
        self.plan = ReadPlan(tuple(requests))

    def _what(self, req: ReadRequest) -> str:
        kind = "bits" if req.table in BIT_TABLES else "registers"
        return f"the read of {req.count} {kind} at {req.label()}"

    def _exception_error(self, req: ReadRequest, exc: ExceptionResponse) -> SourceError:
        s, unit = self.settings, self.settings.unit_id
        at = _at(req)
        if exc.code == 2:
            return DeviceProtocolError(text("src.modbus.illegal_address", at=at))
        if exc.code == 3:
            return DeviceProtocolError(text("src.modbus.illegal_value", at=at))
        if exc.code == 1:
            function = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}[req.table]
            return DeviceProtocolError(text("src.modbus.illegal_function", unit=unit,
                                            what=text(f"src.modbus.what.{req.table}"),
                                            function=function, at=at))
        if exc.code == 6:
            return DeviceProtocolError(text("src.modbus.busy", at=at))
        if exc.code in GATEWAY_CODES:
            return DeviceTimeout(text("src.modbus.gateway_silent", where=s.where, unit=unit,
                                      name=exc.name))
        return DeviceProtocolError(text("src.modbus.exception", name=exc.name, code=exc.code,
                                        at=at))


def _at(req: ReadRequest) -> Text | str:
    """The addresses a read covers, as the technician wrote them (``ReadRequest.label``)."""
    first, last = req.registers[0], max(req.registers, key=lambda s: s.end)
    if len(req.registers) == 1:
        return _label(first)
    return text("src.modbus.range", first=_label(first), last=_label(last))


def _label(spec: RegisterSpec) -> Text | str:
    """``spec.label`` in the reader's language: "input register 12" is built in English by the
    config ("<table> register|bit <address>"); a Modicon address (40001) is a bare number."""
    words = spec.label.split()
    if len(words) == 3 and words[0] == spec.table and words[2].isdigit():
        return text(f"src.modbus.label.{spec.table}", n=int(words[2]))
    return spec.label


def _most_telling(failures: list[SourceError]) -> SourceError:
    """The failure that best explains a poll where nothing could be read."""
    for f in failures:
        if isinstance(f, (DeviceTimeout, DeviceRefused)):
            return f
    return failures[0] if failures else DeviceProtocolError(text("src.modbus.no_reply"))
