"""The pymodbus adapter against hostile gateways: what comes back must be the answer asked for,
and bytes pymodbus cannot decode are a bad answer with its reason, never a traceback."""

from __future__ import annotations

import importlib.metadata
import logging
import struct
import time

import pytest

from agent.errors import DeviceProtocolError
from agent.sources.modbus import BusPool, ModbusSource
from agent.sources.modbus_link import PYMODBUS_VERSION
from fixtures.modbus import device_from_toml, modbus_device, run
from test_modbus_source import RawGateway, reg_toml


def test_the_installed_pymodbus_is_the_one_the_adapter_was_written_for():
    # pymodbus renames arguments and changes behaviour between minor versions: a bump must be
    # a deliberate edit of agent/sources/modbus_link.py (and of PYMODBUS_VERSION), after its tests.
    assert importlib.metadata.version("pymodbus") == PYMODBUS_VERSION


def request_of(request: bytes) -> tuple[int, int, int, int]:
    """(transaction id, unit, function code, count) of a Modbus TCP read request."""
    tid, _, _, unit, function, _, count = struct.unpack(">HHHBBHH", request[:12])
    return tid, unit, function, count


def mbap(tid: int, unit: int, pdu: bytes, *, length: int | None = None) -> bytes:
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1 if length is None else length, unit) + pdu


def poll(gateway: RawGateway, timeout_s: float = 2.0):
    device = device_from_toml(modbus_device(port=gateway.port, registers=reg_toml("a", 0),
                                            timeout_s=timeout_s))

    async def body():
        source = ModbusSource(device, BusPool())
        start = time.monotonic()
        try:
            with pytest.raises(DeviceProtocolError) as info:
                await source.read()
        finally:
            await source.close()
        return info.value, time.monotonic() - start
    return run(body())


def test_an_answer_from_another_table_is_a_bad_answer():
    def input_registers_instead(request: bytes) -> bytes:
        tid, unit, function, count = request_of(request)
        assert function == 3
        return mbap(tid, unit, bytes([4, 2 * count]) + b"\x00\x2a" * count)

    with RawGateway(input_registers_instead) as gateway:
        error, _ = poll(gateway)
    assert error.status == "bad_answer"
    assert "function code 4 in answer to a holding read (code 3)" in error.reason


@pytest.mark.parametrize("answer", [
    lambda tid, unit: mbap(tid, unit, b"\x03", length=2),                  # PDU cut after the code
    lambda tid, unit: mbap(tid, unit, b"\x03\x02\x00\x2a", length=3),     # length too short
    lambda tid, unit: mbap(tid, unit, b"\x41\x01\x02"),                    # no such function
])
def test_a_frame_pymodbus_cannot_decode_is_garbage_at_once_without_a_traceback(answer, caplog):
    with RawGateway(lambda request: answer(*request_of(request)[:2])) as gateway:
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            error, elapsed = poll(gateway, timeout_s=5)
    assert error.status == "bad_answer"
    assert error.reason.startswith(f"garbage: 127.0.0.1:{gateway.port} sent ")
    assert "did the gateway restart" not in error.reason
    assert elapsed < 4, "failed at once, not at the timeout"
    assert not [r for r in caplog.records if r.name == "asyncio"], "no asyncio 'Fatal error'"
