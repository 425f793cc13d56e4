#!/usr/bin/env python3
"""Simulated clinic UPS and power meter behind a Modbus gateway, for demos and tests.

    python scripts/sim_ups.py --port 5020                 # Modbus TCP on 127.0.0.1:5020
    python scripts/sim_ups.py --port 5020 --outages       # mains fails now and then
    python scripts/sim_ups.py --port 5020 --framer rtu    # RTU frames over TCP (serial server)
    python scripts/sim_ups.py --serial /dev/pts/7         # RTU on a serial port (or a pty)
    python scripts/sim_ups.py --port 5020 --print-config  # the TOML below, with that port

It plays a Modbus TCP-to-RS485 gateway with two units behind it, like a clinic that wired the
UPS and the mains power meter to one cheap gateway: unit 1 is the UPS, unit 2 the meter. Values
move over time (mains voltage wandering around 127 V, load, battery charge following outages);
``--frozen`` holds them at the nominal values listed below, which is what the tests use.
In-process: ``start_in_thread(port, moving=False)`` returns a running ``SimUps`` (see the class
for setting values, counting requests and stopping/starting it; tests/fixtures/modbus.py wraps
it as the ``modbus_server`` fixture).

A unit id other than 1 or 2 gets exception 11 "gateway target device failed to respond" over
TCP, and no answer at all on a serial line, as a real bus would. Needs pymodbus >= 3.16 (the
SimDevice server API); it does not import the agent.

Register map (addresses are 0-based wire addresses)
===================================================

Unit 1, the UPS ("ups"):

    table     addr  name                  type     scale  unit  nominal
    input     0     input.voltage         uint16   0.1    V     127.0
    input     1     input.frequency       uint16   0.01   Hz    60.0
    input     2     output.voltage        uint16   0.1    V     127.0
    input     3     output.load           uint16   1      %     35
    input     4     battery.charge        uint16   1      %     100
    input     5     battery.voltage       uint16   0.01   V     27.6
    input     6     battery.runtime       uint16   1      min   42
    input     7     battery.temperature   int16    0.1    °C    25.0
    input     8     status                uint16 flags: bit 0 on_battery, 1 low_battery,
                                                 2 overload, 3 replace_battery, 4 charging  0
    input     9     mode                  uint16 enum: 0 online, 1 on battery, 2 bypass,
                                                 3 fault                                  0
    input     10-11 on_battery.total      uint32 CDAB (low word first)   s     90061
    holding   100-107 model               string, 8 registers (16 chars)       "SIM-UPS 1500VA"
    discrete  0     on_battery            bit                                   false
    coil      0     beeper                bit                                   true

    Valid addresses: input 0-11, holding 100-107 and 1000-1063 (a zeroed scratch area that
    tests fill with values of any type), discrete 0-15, coil 0-15. Anything else answers
    "illegal data address" (input register 12, for instance).

Unit 2, the power meter ("meter"), float32 ABCD input registers laid out like an Eastron
SDM120 (its manual numbers them the Modicon way: 30001 is input register 0):

    table  addr  modicon  name          type     unit  nominal
    input  0     30001    voltage       float32  V     127.0
    input  6     30007    current       float32  A     4.25
    input  12    30013    power         float32  W     513.25
    input  30    30031    power_factor  float32        0.95
    input  70    30071    frequency     float32  Hz    60.0
    input  342   30343    energy        float32  kWh   1234.5

    Valid addresses: input 0-75 and 342-345; anything else answers "illegal data address".

With --outages the mains fails every 30-90 s for 10-40 s: input voltage, frequency and the
meter drop to 0, status.on_battery/on_battery/mode say so and the battery drains.

Ready-to-paste device entries (``[[devices]]`` of the agent's config)
=====================================================================

# --- begin devices ---
[[devices]]
name = "ups"
kind = "modbus"
host = "127.0.0.1"
port = 5020              # the --port given to scripts/sim_ups.py
unit_id = 1
interval_s = 10
timeout_s = 2

  [[devices.registers]]
  name = "input.voltage"
  table = "input"
  address = 0
  type = "uint16"
  scale = 0.1
  unit = "V"

  [[devices.registers]]
  name = "input.frequency"
  table = "input"
  address = 1
  type = "uint16"
  scale = 0.01
  unit = "Hz"

  [[devices.registers]]
  name = "output.voltage"
  table = "input"
  address = 2
  type = "uint16"
  scale = 0.1
  unit = "V"

  [[devices.registers]]
  name = "output.load"
  table = "input"
  address = 3
  type = "uint16"
  unit = "%"

  [[devices.registers]]
  name = "battery.charge"
  table = "input"
  address = 4
  type = "uint16"
  unit = "%"

  [[devices.registers]]
  name = "battery.voltage"
  table = "input"
  address = 5
  type = "uint16"
  scale = 0.01
  unit = "V"

  [[devices.registers]]
  name = "battery.runtime"
  table = "input"
  address = 6
  type = "uint16"
  unit = "min"

  [[devices.registers]]
  name = "battery.temperature"
  table = "input"
  address = 7
  type = "int16"
  scale = 0.1
  unit = "°C"

  [[devices.registers]]
  name = "status"
  table = "input"
  address = 8
  type = "uint16"
  flags = { 0 = "on_battery", 1 = "low_battery", 2 = "overload", 3 = "replace_battery", 4 = "charging" }

  [[devices.registers]]
  name = "mode"
  table = "input"
  address = 9
  type = "uint16"
  enum = { 0 = "online", 1 = "on battery", 2 = "bypass", 3 = "fault" }

  [[devices.registers]]
  name = "on_battery.total"
  table = "input"
  address = 10
  type = "uint32"
  order = "CDAB"
  unit = "s"

  [[devices.registers]]
  name = "model"
  table = "holding"
  address = 100
  type = "string"
  length = 8

  [[devices.registers]]
  name = "on_battery"
  table = "discrete"
  address = 0

  [[devices.registers]]
  name = "beeper"
  table = "coil"
  address = 0

[[devices]]
name = "meter"
kind = "modbus"
host = "127.0.0.1"
port = 5020              # same gateway, second unit on its RS-485 side
unit_id = 2
address_base = "modicon" # addresses as printed in the meter's manual
interval_s = 10
timeout_s = 2

  [[devices.registers]]
  name = "voltage"
  address = 30001
  type = "float32"
  unit = "V"

  [[devices.registers]]
  name = "current"
  address = 30007
  type = "float32"
  unit = "A"

  [[devices.registers]]
  name = "power"
  address = 30013
  type = "float32"
  unit = "W"

  [[devices.registers]]
  name = "power_factor"
  address = 30031
  type = "float32"

  [[devices.registers]]
  name = "frequency"
  address = 30071
  type = "float32"
  unit = "Hz"

  [[devices.registers]]
  name = "energy"
  address = 30343
  type = "float32"
  unit = "kWh"
# --- end devices ---

Each poll of both devices takes 8 requests on one connection: the UPS's input registers 0-11 in
one read, holding 100-107, discrete 0 and coil 0; the meter's 0-13 (voltage, current and power
merged across their gaps), 30, 70 and 342.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
import random
import struct
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any
from pathlib import Path

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

sys.path.insert(0, str(Path(__file__).resolve().parent))   # scripts/ is not a package
from sim_common import ServerThread, overlay  # noqa: E402

UPS_UNIT = 1
METER_UNIT = 2
UNITS = {"ups": UPS_UNIT, "meter": METER_UNIT}


@dataclass(frozen=True)
class Point:
    """One value of the register map."""

    device: str                 # "ups" or "meter"
    name: str                   # metric name, as in the TOML snippet
    table: str                  # holding | input | coil | discrete
    address: int                # 0-based wire address
    type: str                   # uint16 ... float32, string, bit
    scale: float = 1.0
    unit: str = ""
    order: str = "ABCD"
    length: int = 0             # registers, for strings
    nominal: Any = 0

    @property
    def unit_id(self) -> int:
        return UNITS[self.device]


POINTS: tuple[Point, ...] = (
    Point("ups", "input.voltage", "input", 0, "uint16", 0.1, "V", nominal=127.0),
    Point("ups", "input.frequency", "input", 1, "uint16", 0.01, "Hz", nominal=60.0),
    Point("ups", "output.voltage", "input", 2, "uint16", 0.1, "V", nominal=127.0),
    Point("ups", "output.load", "input", 3, "uint16", 1, "%", nominal=35),
    Point("ups", "battery.charge", "input", 4, "uint16", 1, "%", nominal=100),
    Point("ups", "battery.voltage", "input", 5, "uint16", 0.01, "V", nominal=27.6),
    Point("ups", "battery.runtime", "input", 6, "uint16", 1, "min", nominal=42),
    Point("ups", "battery.temperature", "input", 7, "int16", 0.1, "°C", nominal=25.0),
    Point("ups", "status", "input", 8, "uint16", nominal=0),
    Point("ups", "mode", "input", 9, "uint16", nominal=0),
    Point("ups", "on_battery.total", "input", 10, "uint32", 1, "s", order="CDAB", nominal=90061),
    Point("ups", "model", "holding", 100, "string", length=8, nominal="SIM-UPS 1500VA"),
    Point("ups", "on_battery", "discrete", 0, "bit", nominal=False),
    Point("ups", "beeper", "coil", 0, "bit", nominal=True),
    Point("meter", "voltage", "input", 0, "float32", unit="V", nominal=127.0),
    Point("meter", "current", "input", 6, "float32", unit="A", nominal=4.25),
    Point("meter", "power", "input", 12, "float32", unit="W", nominal=513.25),
    Point("meter", "power_factor", "input", 30, "float32", nominal=0.95),
    Point("meter", "frequency", "input", 70, "float32", unit="Hz", nominal=60.0),
    Point("meter", "energy", "input", 342, "float32", unit="kWh", nominal=1234.5),
)
POINT_BY_NAME = {(p.device, p.name): p for p in POINTS}

STATUS_FLAGS = {"on_battery": 0, "low_battery": 1, "overload": 2, "replace_battery": 3,
                "charging": 4}
MODES = {"online": 0, "on battery": 1, "bypass": 2, "fault": 3}

# Address ranges that exist, per unit and table: (first, count). Everything else is
# "illegal data address".
VALID = {
    UPS_UNIT: {"input": [(0, 12)], "holding": [(100, 8), (1000, 64)], "discrete": [(0, 16)],
               "coil": [(0, 16)]},
    METER_UNIT: {"input": [(0, 76), (342, 4)], "holding": [], "discrete": [], "coil": []},
}
SCRATCH_HOLDING = (1000, 64)   # unit 1 holding registers tests may fill freely

_FUNCTION_TABLE = {1: "coil", 5: "coil", 15: "coil", 2: "discrete", 4: "input",
                   3: "holding", 6: "holding", 16: "holding", 22: "holding", 23: "holding"}
_STRUCT = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "int64": "q",
           "uint64": "Q", "float32": "f", "float64": "d"}
_ORDERS = {"ABCD": (False, False), "CDAB": (True, False), "BADC": (False, True),
           "DCBA": (True, True)}        # -> (swap words, swap bytes)


def encode(type_: str, value: Any, *, order: str = "ABCD", length: int = 0,
           scale: float = 1.0) -> list[int]:
    """Registers a device would send for ``value`` (already in engineering units)."""
    swap_words, swap_bytes = _ORDERS[order]
    if type_ == "bit":
        return [1 if value else 0]
    if type_ == "string":
        data = str(value).encode("utf-8")[:2 * length].ljust(2 * length, b"\x00")
    else:
        raw = value
        if type_ not in ("float32", "float64"):
            raw = int(round(value / scale))
        elif scale != 1:
            raw = value / scale
        data = struct.pack(">" + _STRUCT[type_], raw)
    words = [int.from_bytes(data[i:i + 2], "little" if swap_bytes else "big")
             for i in range(0, len(data), 2)]
    return words[::-1] if swap_words and type_ != "string" else words


def decode(type_: str, words: list[int], *, order: str = "ABCD", scale: float = 1.0) -> Any:
    """Inverse of ``encode``."""
    swap_words, swap_bytes = _ORDERS[order]
    if type_ == "bit":
        return bool(words[0])
    if swap_words and type_ != "string":
        words = words[::-1]
    data = b"".join(w.to_bytes(2, "little" if swap_bytes else "big") for w in words)
    if type_ == "string":
        return data.split(b"\x00", 1)[0].decode("utf-8", "replace")
    value = struct.unpack(">" + _STRUCT[type_], data)[0]
    if type_ == "float32":
        value = float(f"{value:.7g}")
    return round(value * scale, 6) if scale != 1 else value


def _width(p: Point) -> int:
    if p.type == "string":
        return p.length
    return {"float64": 4, "int64": 4, "uint64": 4, "int32": 2, "uint32": 2,
            "float32": 2}.get(p.type, 1)


@dataclass(frozen=True)
class Request:
    """A request the server received (recorded before it is answered)."""

    t: float                    # time.monotonic() when it arrived
    unit: int
    function: int
    table: str
    address: int
    count: int


class UpsModel:
    """The physics, roughly: mains, load, battery. Writes its values through ``put``."""

    def __init__(self, *, outages: bool, seed: int | None) -> None:
        self.rng = random.Random(seed)
        self.outages = outages
        self.t0 = self.last = time.monotonic()
        self.on_battery = False
        self.next_change = self.t0 + self.rng.uniform(30, 90)
        self.vin = 127.0
        self.freq = 60.0
        self.charge = 100.0
        self.on_battery_total = 90061.0
        self.energy = 1234.5

    def advance(self, now: float) -> dict[tuple[str, str], Any]:
        """Move time on to ``now``; return every point's new value."""
        dt = max(0.0, now - self.last)
        self.last = now
        t = now - self.t0
        rng = self.rng
        if self.outages and now >= self.next_change:
            self.on_battery = not self.on_battery
            if not self.on_battery:
                self.vin = 127.0 + rng.gauss(0, 1)   # the mains returns at its usual level
            self.next_change = now + (rng.uniform(10, 40) if self.on_battery
                                      else rng.uniform(30, 90))
        load = min(95.0, max(5.0, 35 + 15 * math.sin(2 * math.pi * t / 300) + rng.gauss(0, 1)))
        if self.on_battery:
            self.vin, self.freq = 0.0, 0.0
            self.charge = max(0.0, self.charge - 0.3 * dt)
            self.on_battery_total += dt
            vout = 120.0 + rng.gauss(0, 0.3)
        else:
            pull = (127.0 - self.vin) * min(1.0, 0.05 * dt)
            self.vin = min(138.0, max(112.0, self.vin + pull + rng.gauss(0, 0.3) * math.sqrt(dt)))
            self.freq = 60.0 + rng.gauss(0, 0.02)
            self.charge = min(100.0, self.charge + 0.5 * dt)
            vout = 127.0 + rng.gauss(0, 0.2)
        charging = not self.on_battery and self.charge < 100
        status = (int(self.on_battery) << STATUS_FLAGS["on_battery"]
                  | int(self.charge < 20) << STATUS_FLAGS["low_battery"]
                  | int(load > 90) << STATUS_FLAGS["overload"]
                  | int(charging) << STATUS_FLAGS["charging"])
        pf = 0.93 + 0.03 * math.sin(t / 120)
        current = 0.0 if self.on_battery else 0.5 + 15.0 * load / 100
        power = self.vin * current * pf
        self.energy += power * dt / 3_600_000
        return {
            ("ups", "input.voltage"): round(self.vin, 1),
            ("ups", "input.frequency"): round(self.freq, 2),
            ("ups", "output.voltage"): round(vout, 1),
            ("ups", "output.load"): round(load),
            ("ups", "battery.charge"): round(self.charge),
            ("ups", "battery.voltage"): round(24 + 3.6 * self.charge / 100
                                              - (1.0 if self.on_battery else 0), 2),
            ("ups", "battery.runtime"): round(self.charge / 100 * 90 * 35 / load),
            ("ups", "battery.temperature"): round(25 + 3 * math.sin(t / 600), 1),
            ("ups", "status"): status,
            ("ups", "mode"): MODES["on battery"] if self.on_battery else MODES["online"],
            ("ups", "on_battery.total"): int(self.on_battery_total),
            ("ups", "on_battery"): self.on_battery,
            ("meter", "voltage"): round(self.vin, 2),
            ("meter", "current"): round(current, 3),
            ("meter", "power"): round(power, 1),
            ("meter", "power_factor"): round(pf if current else 0.0, 3),
            ("meter", "frequency"): round(self.freq, 2),
            ("meter", "energy"): round(self.energy, 3),
        }


class SimUps:
    """The simulator: a pymodbus server plus the values it serves and a record of requests.

    Run it in a thread of its own with ``start()``/``stop()`` (tests; it can be started again
    on the same port), or inside a running loop with ``await serve()`` (the command line).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 5020,
                 serial_port: str | None = None, framer: str = "socket", moving: bool = True,
                 outages: bool = False, seed: int | None = None, baudrate: int = 9600) -> None:
        self.host = host
        self.port = port
        self.serial_port = serial_port
        self.framer = "rtu" if serial_port else framer
        self.baudrate = baudrate
        self.moving = moving
        self.model = UpsModel(outages=outages, seed=seed)
        self._lock = threading.Lock()
        self._registers: dict[tuple[int, str], dict[int, int]] = {}
        self._pinned: set[tuple[int, str, int]] = set()
        self._requests: list[Request] = []
        self._connections = 0
        self._silent = False
        self._faults: dict[tuple[int, str | None], int] = {}
        self._runner = ServerThread(f"sim-ups-{self.port}", "simulator")
        self._stop: asyncio.Event | None = None
        self._release: asyncio.Event | None = None
        for p in POINTS:
            self._put(p, p.nominal, pin=False)

    # -- values --------------------------------------------------------------------------------

    def set_value(self, device: str, name: str, value: Any) -> None:
        """Set a map point (e.g. ``("ups", "battery.charge", 42)``) and keep it there."""
        self._put(POINT_BY_NAME[(device, name)], value, pin=True)

    def value(self, device: str, name: str) -> Any:
        """The value a point has now, in engineering units (as the agent should report it)."""
        p = POINT_BY_NAME[(device, name)]
        with self._lock:
            regs = self._registers[(p.unit_id, p.table)]
            words = [regs.get(p.address + i, 0) for i in range(_width(p))]
        return decode(p.type, words, order=p.order, scale=p.scale)

    def set_registers(self, unit: int, table: str, address: int, words: list[int]) -> None:
        """Put raw register (or bit: 0/1) values at ``address``; they stay until set again."""
        with self._lock:
            regs = self._registers.setdefault((unit, table), {})
            for i, w in enumerate(words):
                regs[address + i] = int(w) & 0xFFFF
                self._pinned.add((unit, table, address + i))

    def set_typed(self, unit: int, table: str, address: int, type_: str, value: Any, *,
                  order: str = "ABCD", length: int = 0) -> None:
        """Encode ``value`` as ``type_`` in ``order`` and put it at ``address``."""
        self.set_registers(unit, table, address, encode(type_, value, order=order,
                                                        length=length))

    def set_outage(self, on_battery: bool) -> None:
        """Mains off (True) or back (False), with everything that follows from it."""
        self.set_value("ups", "on_battery", on_battery)
        self.set_value("ups", "mode", MODES["on battery"] if on_battery else MODES["online"])
        self.set_value("ups", "status", 1 << STATUS_FLAGS["on_battery"] if on_battery else 0)
        self.set_value("ups", "input.voltage", 0.0 if on_battery else 127.0)
        self.set_value("ups", "input.frequency", 0.0 if on_battery else 60.0)
        self.set_value("meter", "voltage", 0.0 if on_battery else 127.0)

    def _put(self, p: Point, value: Any, *, pin: bool) -> None:
        words = encode(p.type, value, order=p.order, length=p.length, scale=p.scale)
        with self._lock:
            regs = self._registers.setdefault((p.unit_id, p.table), {})
            for i, w in enumerate(words):
                key = (p.unit_id, p.table, p.address + i)
                if pin:
                    self._pinned.add(key)
                elif key in self._pinned:
                    return
                regs[p.address + i] = w

    # -- faults --------------------------------------------------------------------------------

    @property
    def silent(self) -> bool:
        """While True, requests are received (and counted) but never answered."""
        return self._silent

    @silent.setter
    def silent(self, value: bool) -> None:
        self._silent = bool(value)

    def set_exception(self, unit: int, code: int | None, table: str | None = None) -> None:
        """Answer requests to ``unit`` (only those for ``table`` if given) with Modbus
        exception ``code``; ``code=None`` answers normally again."""
        with self._lock:
            if code is None:
                self._faults.pop((unit, table), None)
            else:
                self._faults[(unit, table)] = int(code)

    # -- what the server saw -------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """Every request received since the start (or ``clear_requests``), oldest first."""
        with self._lock:
            return list(self._requests)

    def request_count(self, unit: int | None = None, table: str | None = None) -> int:
        """How many requests arrived, optionally only for one unit and/or table."""
        return sum(1 for r in self.requests
                   if (unit is None or r.unit == unit) and (table is None or r.table == table))

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    @property
    def connections(self) -> int:
        """TCP connections accepted since creation (a shared bus keeps this at one)."""
        return self._connections

    # -- running -------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Serve in a background thread; return once it listens. Raises if it cannot."""
        self._runner.start(lambda ready: self.serve(ready=ready), timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and drop every connection (a gateway losing power)."""
        self._runner.stop(lambda: self._stop is not None and self._stop.set(), timeout)

    async def serve(self, ready: threading.Event | None = None) -> None:
        """Serve in the running loop until ``stop()`` (or cancellation)."""
        self._stop = asyncio.Event()
        self._release = asyncio.Event()
        server = self._make_server()
        await server.serve_forever(background=True)
        if ready is not None:
            ready.set()
        try:
            await self._stop.wait()
        finally:
            self._release.set()
            await server.shutdown()

    def _make_server(self) -> Any:
        devices = [self._device(UPS_UNIT), self._device(METER_UNIT),
                   # Unit 0 stands for "any other unit" in pymodbus.
                   SimDevice(id=0, simdata=[SimData(0, count=65536, values=0,
                                                    datatype=DataType.REGISTERS)],
                             action=self._unknown_unit)]
        if self.serial_port:
            return ModbusSerialServer(devices, framer=FramerType.RTU, port=self.serial_port,
                                      baudrate=self.baudrate, trace_pdu=self._trace_pdu,
                                      trace_connect=self._trace_connect)
        framer = FramerType.RTU if self.framer == "rtu" else FramerType.SOCKET
        return ModbusTcpServer(devices, framer=framer, address=(self.host, self.port),
                               trace_pdu=self._trace_pdu, trace_connect=self._trace_connect)

    def _device(self, unit: int) -> SimDevice:
        def block(table: str, bits: bool) -> list[SimData]:
            ranges = VALID[unit][table] or [(60000, 1)]   # pymodbus wants a non-empty block
            dtype = DataType.BITS if bits else DataType.REGISTERS
            return [SimData(first, count=count, values=False if bits else 0, datatype=dtype)
                    for first, count in ranges]
        simdata = (block("coil", True), block("discrete", True), block("holding", False),
                   block("input", False))
        return SimDevice(id=unit, simdata=simdata, action=functools.partial(self._action, unit))

    def _trace_pdu(self, sending: bool, pdu: Any) -> Any:
        if not sending:
            fc = int(getattr(pdu, "function_code", 0))
            req = Request(time.monotonic(), int(getattr(pdu, "dev_id", 0)), fc,
                          _FUNCTION_TABLE.get(fc, "?"), int(getattr(pdu, "address", 0) or 0),
                          int(getattr(pdu, "count", 0) or 0))
            with self._lock:
                self._requests.append(req)
        return pdu

    def _trace_connect(self, connected: bool) -> None:
        if connected:
            self._connections += 1

    async def _wait_released(self) -> None:
        assert self._release is not None
        await self._release.wait()
        # The server is stopping: drop the request without an answer, like a dead device.
        raise asyncio.CancelledError

    async def _action(self, unit: int, function: int, start: int, address: int, count: int,
                      registers: list[int], values: Any) -> ExcCodes | None:
        """Called by pymodbus for every valid request: refresh the block it is served from."""
        if self._silent:
            await self._wait_released()
        table = _FUNCTION_TABLE.get(function)
        with self._lock:
            code = self._faults.get((unit, table), self._faults.get((unit, None)))
        if code is not None:
            return ExcCodes(code)
        if self.moving:
            for (device, name), value in self.model.advance(time.monotonic()).items():
                self._put(POINT_BY_NAME[(device, name)], value, pin=False)
        with self._lock:
            current = dict(self._registers.get((unit, table), {}))
        overlay(registers, start, current, bits=table in ("coil", "discrete"))
        return None

    async def _unknown_unit(self, function: int, start: int, address: int, count: int,
                            registers: list[int], values: Any) -> ExcCodes | None:
        if self.framer == "rtu":
            await self._wait_released()      # nobody on the line with that address
        return ExcCodes.GATEWAY_NO_RESPONSE


def start_in_thread(port: int, **options: Any) -> SimUps:
    """Start a simulator on 127.0.0.1:``port`` in a background thread; ``.stop()`` ends it.

    ``options`` are ``SimUps``'s (``moving=False`` for fixed values, ``framer="rtu"``, ...).
    """
    sim = SimUps(port=port, **options)
    sim.start()
    return sim


def devices_toml(port: int = 5020, host: str = "127.0.0.1") -> str:
    """The ready-to-paste ``[[devices]]`` entries from this module's docstring."""
    text = __doc__.split("# --- begin devices ---\n", 1)[1].split("# --- end devices ---", 1)[0]
    return (text.replace('host = "127.0.0.1"', f'host = "{host}"')
                .replace("port = 5020 ", f"port = {port} "))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Simulated clinic UPS + power meter "
                                                 "(Modbus units 1 and 2).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5020)
    parser.add_argument("--serial", metavar="DEVICE", help="serve RTU on this serial port/pty "
                                                             "instead of TCP")
    parser.add_argument("--baudrate", type=int, default=9600)
    parser.add_argument("--framer", choices=("socket", "rtu"), default="socket",
                        help="rtu: RTU frames over TCP, like a transparent serial server")
    parser.add_argument("--outages", action="store_true", help="mains fails now and then")
    parser.add_argument("--frozen", action="store_true", help="hold the nominal values")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--print-config", action="store_true",
                        help="print the [[devices]] entries for this port and exit")
    args = parser.parse_args(argv)
    if args.print_config:
        print(devices_toml(args.port, args.host), end="")
        return 0
    sim = SimUps(host=args.host, port=args.port, serial_port=args.serial, framer=args.framer,
                 moving=not args.frozen, outages=args.outages, seed=args.seed,
                 baudrate=args.baudrate)
    where = args.serial or f"{args.host}:{args.port} ({args.framer} framing)"
    print(f"sim_ups: UPS (unit 1) and power meter (unit 2) on {where}; Ctrl-C stops",
          flush=True)
    try:
        asyncio.run(sim.serve())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
