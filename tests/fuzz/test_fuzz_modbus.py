"""Fuzz: Modbus answers. A gateway on loopback answers each read with damaged or invented bytes;
the adapter returns the registers asked for or raises one of the agent's errors, within the
request's timeout, without asyncio's "Fatal error" and within memory."""

from __future__ import annotations

import asyncio
import logging
import struct

from hypothesis import given, strategies as st

from agent.errors import SourceError
from agent.sources.modbus_link import BusParams, ExceptionResponse, ModbusLink
from fuzz_budget import bounded, fuzz_settings

TIMEOUT_S = 0.2


def crc16(data: bytes) -> bytes:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return struct.pack("<H", crc)


@st.composite
def answers(draw):
    """(transport, a function of the request giving the bytes sent back)."""
    transport = draw(st.sampled_from(["tcp", "rtu_over_tcp"]))
    mode = draw(st.sampled_from(["damaged", "random", "function", "length"]))
    flips = draw(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 255)), max_size=3))
    cut = draw(st.integers(0, 12)) if draw(st.booleans()) else 0
    extra = draw(st.binary(max_size=8)) if draw(st.booleans()) else b""
    fc = draw(st.sampled_from([4, 1, 2, 0x83, 0x84, 0x41, 0x80, 0x2B, 0]))
    length = draw(st.sampled_from([0, 1, 2, 3, 4, 6, 8, 254, 255, 0xFFFF]))
    noise = draw(st.binary(max_size=300))

    def reply(request: bytes) -> bytes:
        if transport == "tcp":
            tid, _, _, unit, function, _, count = struct.unpack(">HHHBBHH", request[:12])
            pdu = bytes([function, 2 * count]) + b"\x00\x2a" * count
            genuine = struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu
        else:
            unit, function, _, count = struct.unpack(">BBHH", request[:6])
            body = bytes([unit, function, 2 * count]) + b"\x00\x2a" * count
            genuine = body + crc16(body)
        if mode == "random":
            return noise
        data = bytearray(genuine)
        if mode == "function":
            data[7 if transport == "tcp" else 1] = fc
            if transport != "tcp":
                data[-2:] = crc16(bytes(data[:-2]))
            return bytes(data)
        if mode == "length" and transport == "tcp":
            data[4:6] = struct.pack(">H", length)
            return bytes(data)
        for at, byte in flips:
            data[at % len(data)] = byte
        return bytes(data[:len(data) - cut] if cut < len(data) else data) + extra
    return transport, mode, reply


class FatalErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def exchange(transport: str, mode: str, reply) -> None:
    handlers: set[asyncio.Task] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.add(asyncio.current_task())
        try:
            while request := await reader.read(260):
                if data := reply(request):
                    writer.write(data)
                    await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = ModbusLink(BusParams(transport=transport, host="127.0.0.1", port=port))
    try:
        await link.connect(2)
        for _ in range(2):               # the second read shows the link is still usable
            try:
                registers = await link.read("holding", 0, 2, unit=1, timeout=TIMEOUT_S)
                # Modbus TCP has no checksum: a changed value byte is undetectable, a changed
                # count or function code is not.
                assert len(registers) == 2 and all(0 <= r <= 0xFFFF for r in registers)
                assert mode != "function", "registers from an answer with another function code"
            except (SourceError, ExceptionResponse):
                pass
            if not link.connected:
                await link.connect(2)
    finally:
        link.close()
        server.close()
        # Let the gateway's handlers see the hang-up and end, before the loop does.
        await asyncio.wait_for(asyncio.gather(*handlers, return_exceptions=True), 2)
        await server.wait_closed()


@fuzz_settings(20)
@given(answers())
def test_any_answer_is_the_registers_or_a_typed_error(answer):
    transport, mode, reply = answer
    fatal = FatalErrors()
    logging.getLogger("asyncio").addHandler(fatal)
    try:
        with bounded("Modbus exchange", seconds=4 * TIMEOUT_S + 2, mib=64):
            asyncio.run(exchange(transport, mode, reply))
    finally:
        logging.getLogger("asyncio").removeHandler(fatal)
    assert not fatal.records, [r.getMessage() for r in fatal.records]
