#!/usr/bin/env python3
"""A Modbus server that serves a fixed register image: any unit, any table, any address.

For tests and benchmarks of device profiles: put a meter's or UPS's values at the addresses its
manual gives (``RegisterImage.put_value(unit, "input", 0, "float32", 230.1)``), serve them over
Modbus TCP, RTU over TCP or RTU on a serial port (a pty), and count the requests that arrive::

    image = RegisterImage()
    image.put_value(1, "input", 0, "float32", 230.1)
    server = ImageServer(image, port=5021)        # or serial_port="/dev/pts/7"
    server.start()                                # in a thread of its own; .stop() ends it
    ...
    server.request_count(unit=1)

Every holding and input register of a unit in the image exists (0 unless the image says
otherwise), as on meters that answer any block read; coils and discrete inputs 0-15 exist.
Units not in the image get no answer on a serial line and exception 11 over TCP. Needs
pymodbus >= 3.16 (the SimDevice server API); it does not import the agent.
"""

from __future__ import annotations

import asyncio
import functools
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

TABLES = ("coil", "discrete", "holding", "input")
_FUNCTION_TABLE = {1: "coil", 2: "discrete", 3: "holding", 4: "input"}
_STRUCT = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "int64": "q",
           "uint64": "Q", "float32": "f", "float64": "d"}
# -> (swap words, swap bytes), for values wider than one register
_ORDERS = {"ABCD": (False, False), "CDAB": (True, False), "BADC": (False, True),
           "DCBA": (True, True)}


def encode(type_: str, value: Any, *, order: str = "ABCD", length: int = 0) -> list[int]:
    """The registers a device sends for ``value`` stored as ``type_`` (raw, unscaled)."""
    swap_words, swap_bytes = _ORDERS[order]
    if type_ == "string":
        data = str(value).encode("ascii").ljust(2 * length, b" ")[:2 * length]
    else:
        data = struct.pack(">" + _STRUCT[type_], value)
    words = [int.from_bytes(data[i:i + 2], "little" if swap_bytes else "big")
             for i in range(0, len(data), 2)]
    return words[::-1] if swap_words and type_ != "string" else words


class RegisterImage:
    """What each unit holds: {(unit, table): {wire address: 16-bit word (or 0/1 for bits)}}."""

    def __init__(self) -> None:
        self.words: dict[tuple[int, str], dict[int, int]] = {}

    def put(self, unit: int, table: str, address: int, words: list[int]) -> None:
        """Raw registers (or bits) from ``address`` on (0-based wire address)."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        regs = self.words.setdefault((unit, table), {})
        for i, w in enumerate(words):
            if not 0 <= address + i <= 65535:
                raise ValueError(f"address {address + i} is outside 0-65535")
            regs[address + i] = int(w) & 0xFFFF

    def put_value(self, unit: int, table: str, address: int, type_: str, value: Any, *,
                  order: str = "ABCD", length: int = 0) -> None:
        """``value`` encoded as ``type_`` in ``order`` at ``address``."""
        self.put(unit, table, address, encode(type_, value, order=order, length=length))

    def set_bit(self, unit: int, table: str, address: int, bit: int, on: bool = True) -> None:
        """One bit of a holding or input register (status words)."""
        regs = self.words.setdefault((unit, table), {})
        word = regs.get(address, 0)
        regs[address] = (word | 1 << bit) if on else (word & ~(1 << bit))

    @property
    def units(self) -> list[int]:
        return sorted({unit for unit, _ in self.words})


@dataclass(frozen=True)
class Request:
    """A request the server received."""

    t: float                    # time.monotonic() when it arrived
    unit: int
    table: str
    address: int
    count: int


class ImageServer:
    """Serves a ``RegisterImage`` from a background thread; counts the requests it gets."""

    def __init__(self, image: RegisterImage, *, host: str = "127.0.0.1", port: int = 5020,
                 serial_port: str | None = None, framer: str = "socket",
                 baudrate: int = 9600) -> None:
        self.image = image
        self.host, self.port = host, port
        self.serial_port = serial_port
        self.framer = "rtu" if serial_port else framer
        self.baudrate = baudrate
        self._requests: list[Request] = []
        self._lock = threading.Lock()
        self._runner = ServerThread(f"sim-registers-{self.port}", "register image server")
        self._stop: asyncio.Event | None = None

    # -- what arrived ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def request_count(self, unit: int | None = None) -> int:
        return sum(1 for r in self.requests if unit is None or r.unit == unit)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- running --------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Serve in a background thread; return once it listens. Raises if it cannot."""
        self._runner.start(self._serve, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and drop every connection."""
        self._runner.stop(lambda: self._stop is not None and self._stop.set(), timeout)

    async def _serve(self, ready: threading.Event) -> None:
        self._stop = asyncio.Event()
        server = self._make_server()
        await server.serve_forever(background=True)
        ready.set()
        try:
            await self._stop.wait()
        finally:
            await server.shutdown()

    def _make_server(self) -> Any:
        devices = [self._device(unit) for unit in self.image.units]
        # Unit 0 stands for "any other unit" in pymodbus.
        devices.append(SimDevice(id=0, simdata=[SimData(0, count=1, values=0,
                                                        datatype=DataType.REGISTERS)],
                                 action=self._unknown_unit))
        if self.serial_port:
            return ModbusSerialServer(devices, framer=FramerType.RTU, port=self.serial_port,
                                      baudrate=self.baudrate, trace_pdu=self._trace_pdu)
        framer = FramerType.RTU if self.framer == "rtu" else FramerType.SOCKET
        return ModbusTcpServer(devices, framer=framer, address=(self.host, self.port),
                               trace_pdu=self._trace_pdu)

    def _device(self, unit: int) -> SimDevice:
        def bits() -> list[SimData]:
            return [SimData(0, count=16, values=False, datatype=DataType.BITS)]

        def registers() -> list[SimData]:
            return [SimData(0, count=65536, values=0, datatype=DataType.REGISTERS)]

        return SimDevice(id=unit, simdata=(bits(), bits(), registers(), registers()),
                         action=functools.partial(self._action, unit))

    def _trace_pdu(self, sending: bool, pdu: Any) -> Any:
        if not sending:
            fc = int(getattr(pdu, "function_code", 0))
            with self._lock:
                self._requests.append(Request(time.monotonic(), int(getattr(pdu, "dev_id", 0)),
                                              _FUNCTION_TABLE.get(fc, "?"),
                                              int(getattr(pdu, "address", 0) or 0),
                                              int(getattr(pdu, "count", 0) or 0)))
        return pdu

    async def _action(self, unit: int, function: int, start: int, address: int, count: int,
                      registers: list[int], values: Any) -> ExcCodes | None:
        """Called by pymodbus for every valid request: lay the image over the answer."""
        table = _FUNCTION_TABLE.get(function)
        image = self.image.words.get((unit, table or ""), {})
        overlay(registers, start, image, bits=table in ("coil", "discrete"))
        return None

    async def _unknown_unit(self, function: int, start: int, address: int, count: int,
                            registers: list[int], values: Any) -> ExcCodes | None:
        if self.framer == "rtu":
            assert self._stop is not None
            await self._stop.wait()           # nobody on the line with that address
            raise asyncio.CancelledError
        return ExcCodes.GATEWAY_NO_RESPONSE
