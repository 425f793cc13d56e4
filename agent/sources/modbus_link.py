"""The only module that talks to pymodbus: one connection to one bus, behind a small interface.

pymodbus both raises and returns errors (an exception response is a returned object, a missing
answer is a raised ``ModbusIOException``), swallows the reason a connection failed, raises out of
its protocol's ``data_received`` on a frame it cannot decode (asyncio logs a "Fatal error" and
drops the connection), and renamed arguments between 3.x minor versions (``slave=`` became
``device_id=``). This module is written for one version, ``PYMODBUS_VERSION``, with explicit
arguments; tests/test_modbus_link.py fails when another is installed. All of that stays here:
``ModbusLink.read`` returns plain lists or raises ``agent.errors`` (plus ``ExceptionResponse``
for a Modbus exception code, which the source turns into words about the register it asked for).

Timeouts are ours, not pymodbus's: one link serves several devices with different ``timeout_s``,
so each request gets its own deadline, and pymodbus's own timer only acts as a backstop.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import termios
from dataclasses import dataclass
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.framer import FramerType

from agent.errors import DeviceProtocolError, DeviceRefused, DeviceTimeout
from agent.i18n import Text, text

log = logging.getLogger(__name__)

# Names of the exception codes of the Modbus application protocol spec (section 7).
EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}



class _DemotePymodbusRecords(logging.Filter):
    """Re-label pymodbus's own log records as debug.

    pymodbus logs every failed connect as a warning and every missing answer as an error, each
    poll. This adapter turns those into one ``SourceError`` with a reason, which the poller logs
    once; repeating pymodbus's words at every poll would flood the journal of a clinic whose
    UPS is switched off. The records stay available at debug level.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.CRITICAL:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        # Handlers do not check the logger's level again: drop what debug would not show.
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def _demote_pymodbus_logging() -> None:
    target = logging.getLogger("pymodbus.logging")     # the one logger pymodbus uses
    if not any(isinstance(f, _DemotePymodbusRecords) for f in target.filters):
        target.addFilter(_DemotePymodbusRecords())


_demote_pymodbus_logging()

# The pymodbus release this adapter was written and tested for (setup.cfg pins 3.16.x).
PYMODBUS_VERSION = "3.16.1"

# The function code of the answer must be the one asked: an input-register answer to a
# holding-register read would report values from the wrong table as good.
FUNCTION_CODES = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}

# Upper bound handed to pymodbus; every request and connect has a shorter deadline of ours
# (timeout_s is at most 600), so pymodbus's own "no response" path never fires.
_BACKSTOP_TIMEOUT_S = 3600.0


class ExceptionResponse(Exception):
    """The device answered a read with a Modbus exception code (``code``)."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.name = EXCEPTION_NAMES.get(code, "unknown exception")
        super().__init__(f"Modbus exception {code} ({self.name})")


# Exception codes a gateway sends when the unit behind it is silent ("gateway path unavailable",
# "gateway target device failed to respond"): a timeout in all but name, nobody there.
GATEWAY_CODES = (10, 11)


class ConnectionLost(DeviceTimeout):
    """The connection closed under a request: the gateway restarted, or dropped us."""


@dataclass(frozen=True)
class BusParams:
    """Where a bus is and how to talk on it; devices with equal params share one link."""

    transport: str                  # tcp | rtu | rtu_over_tcp
    host: str | None = None
    port: int | None = None
    serial_port: str | None = None
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8

    @property
    def where(self) -> str:
        """The bus in words: "HOST:PORT" or the serial device path."""
        return str(self.serial_port) if self.transport == "rtu" else f"{self.host}:{self.port}"

    @property
    def line(self) -> str:
        """Serial line settings in the usual short form, e.g. "9600 8N1"."""
        return f"{self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"

    @property
    def is_serial(self) -> bool:
        return self.transport == "rtu"


class ModbusLink:
    """One pymodbus client for one bus. Not safe for concurrent use: the caller holds a lock."""

    def __init__(self, params: BusParams) -> None:
        self.params = params
        self._client: Any = None
        self._lost = asyncio.Event()
        self._garbled = False            # pymodbus could not decode what came for this request
        # Bytes received since the current request was sent (pymodbus drops what it cannot
        # match to the request; we keep it to tell "silent" from "talking nonsense").
        self._received = b""
        self._pending: asyncio.Future[Any] | None = None

    @property
    def connected(self) -> bool:
        """True while the connection (or serial port) is open."""
        return self._client is not None and bool(self._client.connected) and \
            not self._lost.is_set()

    async def connect(self, timeout: float) -> None:
        """Open the connection or serial port; raise DeviceTimeout/DeviceRefused saying why not."""
        self.close()
        lost = asyncio.Event()
        client = self._make_client(lost)
        try:
            ok = await asyncio.wait_for(client.connect(), timeout)
        except TimeoutError:
            client.close()
            raise DeviceTimeout(self._connect_timeout_reason()) from None
        except (OSError, ModbusException) as exc:
            client.close()
            raise await self._why_not_connected(timeout) from exc
        except termios.error as exc:
            client.close()
            refused: str | None = f"{exc.args[-1] if exc.args else exc}"
        else:
            refused = None
        if refused is not None:
            # pyserial lets termios errors through when the port refuses the line settings
            # (seen with parity on a pty), after opening and locking it. That open port is only
            # reachable from the error's traceback, a reference cycle: collect it now (hence no
            # `from exc` here), or every retry finds the port locked and says "in use".
            del client
            gc.collect()
            raise DeviceRefused(text("src.modbus.line_refused", port=str(self.params.serial_port),
                                     line=self.params.line, error=refused))
        if not ok:
            client.close()
            raise await self._why_not_connected(timeout)
        self._client, self._lost = client, lost

    async def read(self, table: str, address: int, count: int, *, unit: int,
                   timeout: float) -> list[int] | list[bool]:
        """Read ``count`` registers (or bits) of ``table`` at wire ``address`` from ``unit``."""
        client = self._client
        if client is None or not self.connected:
            raise ConnectionLost(text("src.modbus.closed", where=self.params.where))
        call = {"holding": client.read_holding_registers, "input": client.read_input_registers,
                "coil": client.read_coils, "discrete": client.read_discrete_inputs}[table]
        self._received = b""
        self._garbled = False
        request = asyncio.ensure_future(call(address, count=count, device_id=unit))
        self._pending = request          # a lost connection cancels it (see _make_client)
        try:
            await asyncio.wait({request}, timeout=timeout)
        finally:
            self._pending = None
            if not request.done():
                # pymodbus releases its own lock as the cancellation unwinds.
                request.cancel()
        if not request.done() or request.cancelled():
            if self._garbled:
                raise DeviceProtocolError(self._nonsense_reason(unit))
            if self._lost.is_set():
                raise ConnectionLost(text("src.modbus.lost", where=self.params.where, unit=unit))
            if self._received:
                raise DeviceProtocolError(self._nonsense_reason(unit))
            raise DeviceTimeout(self._no_answer_reason(unit))
        try:
            response = request.result()
        except ConnectionException as exc:
            raise ConnectionLost(text("src.modbus.lost", where=self.params.where,
                                      unit=unit)) from exc
        except ModbusException as exc:
            # With our deadline shorter than pymodbus's, what is left is an answer pymodbus
            # could not match to the request (wrong unit or transaction id) or could not decode.
            raise DeviceProtocolError(text("src.modbus.unusable", unit=unit,
                                           where=self.params.where, error=str(exc))) from exc
        if response is None:
            raise DeviceTimeout(self._no_answer_reason(unit))
        expected = FUNCTION_CODES[table]
        if int(response.function_code) & 0x7F != expected:
            raise DeviceProtocolError(text(
                "src.modbus.wrong_function", unit=unit, where=self.params.where,
                got=int(response.function_code) & 0x7F, table=table, expected=expected))
        if response.isError():
            raise ExceptionResponse(int(getattr(response, "exception_code", 0) or 0))
        if table in ("coil", "discrete"):
            bits = list(getattr(response, "bits", None) or [])
            if len(bits) < count:
                raise DeviceProtocolError(self._short_answer(unit, count, len(bits), "bits"))
            return [bool(b) for b in bits[:count]]
        registers = list(getattr(response, "registers", None) or [])
        if len(registers) != count:
            raise DeviceProtocolError(self._short_answer(unit, count, len(registers),
                                                         "registers"))
        return registers

    def close(self) -> None:
        """Close the connection; the next ``connect`` opens a fresh one."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:   # closing a half-dead transport must never hide the real error
                log.debug("modbus bus %s: error while closing", self.params.where, exc_info=True)

    # -- internals -----------------------------------------------------------------------------

    def _make_client(self, lost: asyncio.Event) -> Any:
        p = self.params

        def on_connect(connected: bool) -> None:
            if not connected:
                lost.set()
                # No need to wait out the timeout of a request on this connection (a closed
                # earlier client may report late: it must not touch the current request).
                if self._lost is lost and self._pending is not None:
                    self._pending.cancel()

        def on_packet(sending: bool, data: bytes) -> bytes:
            # pymodbus hands over its whole receive buffer each time: keep the longest seen.
            if not sending and len(data) > len(self._received):
                self._received = bytes(data)
            return data

        client: AsyncModbusSerialClient | AsyncModbusTcpClient
        if p.is_serial:
            client = AsyncModbusSerialClient(
                str(p.serial_port), framer=FramerType.RTU, baudrate=p.baudrate, parity=p.parity,
                stopbits=p.stopbits, bytesize=p.bytesize, name=f"modbus {p.where}",
                timeout=_BACKSTOP_TIMEOUT_S, retries=0, reconnect_delay=0,
                trace_connect=on_connect, trace_packet=on_packet)
        else:
            client = AsyncModbusTcpClient(
                str(p.host), port=int(p.port or 502),
                framer=FramerType.RTU if p.transport == "rtu_over_tcp" else FramerType.SOCKET,
                name=f"modbus {p.where}", timeout=_BACKSTOP_TIMEOUT_S, retries=0,
                reconnect_delay=0, trace_connect=on_connect, trace_packet=on_packet)
        self._guard_frames(client, lost)
        return client

    def _guard_frames(self, client: Any, lost: asyncio.Event) -> None:
        """Make a frame pymodbus cannot decode (a bad MBAP length, an unknown function code) a
        garbled answer to the current request, instead of an exception out of the protocol's
        ``data_received`` (asyncio's "Fatal error" traceback, and a dropped connection that
        reads as "did the gateway restart?")."""
        manager = client.ctx
        handle = manager.callback_data

        def guarded(data: bytes, addr: tuple[str, int] | None = None) -> int:
            try:
                return int(handle(data, addr))
            except Exception as exc:  # noqa: BLE001 - any decoding failure of hostile bytes
                log.debug("modbus bus %s: undecodable frame %s: %s", self.params.where,
                          bytes(data[:16]).hex(" "), exc)
                if self._lost is lost:
                    self._garbled = True
                    if self._pending is not None:
                        self._pending.cancel()     # fail now, not at the timeout
                return len(data)                   # drop it all: the stream is out of step

        manager.callback_data = guarded

    def _no_answer_reason(self, unit: int) -> Text:
        p = self.params
        if p.is_serial:
            return text("src.modbus.no_answer_serial", unit=unit, port=str(p.serial_port),
                        line=p.line)
        return text("src.modbus.no_answer", unit=unit, where=p.where)

    def _nonsense_reason(self, unit: int) -> Text:
        p = self.params
        shown = self._received[:16].hex(" ") + (" ..." if len(self._received) > 16 else "")
        rtu = p.is_serial or p.transport == "rtu_over_tcp"
        return text("src.modbus.nonsense_rtu" if rtu else "src.modbus.nonsense_tcp", where=p.where,
                    n=len(self._received), unit=unit, data=shown)

    def _connect_timeout_reason(self) -> Text:
        if self.params.is_serial:
            return text("src.modbus.open_timeout", port=str(self.params.serial_port))
        return text("src.modbus.connect_timeout", where=self.params.where)

    def _short_answer(self, unit: int, asked: int, got: int, what: str) -> Text:
        return text(f"src.modbus.short_{what}", unit=unit, where=self.params.where, asked=asked,
                    got=got)

    async def _why_not_connected(self, timeout: float) -> Exception:
        """pymodbus only says "could not connect": find out why, to tell the technician."""
        p = self.params
        if p.is_serial:
            path = str(p.serial_port)
            if not os.path.exists(path):
                return DeviceTimeout(text("src.modbus.no_port", port=path))
            if not os.access(path, os.R_OK | os.W_OK):
                return DeviceRefused(text("src.modbus.no_permission", port=path))
            return DeviceRefused(text("src.modbus.port_busy", port=path))
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(p.host, p.port), timeout)
        except ConnectionRefusedError:
            return DeviceRefused(text("src.modbus.refused", where=p.where))
        except TimeoutError:
            return DeviceTimeout(self._connect_timeout_reason())
        except socket.gaierror as exc:
            return DeviceTimeout(text("src.cannot_resolve", host=repr(p.host),
                                      error=str(exc.strerror)))
        except OSError as exc:
            return DeviceTimeout(text("src.modbus.unreachable", where=p.where,
                                      error=exc.strerror or str(exc)))
        writer.close()
        return DeviceTimeout(text("src.modbus.second_try", where=p.where))
