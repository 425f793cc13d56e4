"""Modbus RTU on a serial line (a socat pty pair): two units, one bus, one request at a time."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from agent.errors import DeviceTimeout, SourceError
from agent.sources.modbus import BusPool, ModbusSource
from fixtures.modbus import by_metric, device_from_toml, run


def rtu_device(name: str, serial_port: str, unit_id: int, registers: str, *, extra: str = "",
               timeout_s: float = 1.0) -> str:
    return (f'[[devices]]\nname = "{name}"\nkind = "modbus"\ntransport = "rtu"\n'
            f'serial_port = "{serial_port}"\nunit_id = {unit_id}\ntimeout_s = {timeout_s}\n'
            f"{extra}\n{registers}")


UPS_REGISTERS = '''
[[devices.registers]]
name = "input.voltage"
table = "input"
address = 0
type = "uint16"
scale = 0.1
unit = "V"
[[devices.registers]]
name = "battery.charge"
table = "input"
address = 4
type = "uint16"
unit = "%"
[[devices.registers]]
name = "on_battery"
table = "discrete"
address = 0
'''
METER_REGISTERS = '''
[[devices.registers]]
name = "voltage"
table = "input"
address = 0
type = "float32"
unit = "V"
[[devices.registers]]
name = "energy"
table = "input"
address = 342
type = "float32"
unit = "kWh"
'''


def test_two_units_on_one_line_share_one_bus_and_take_turns(modbus_rtu_server):
    line = modbus_rtu_server.client_end
    ups = device_from_toml(rtu_device("ups", line, 1, UPS_REGISTERS))
    # The same adapter, named by its real path: still the same bus, still one lock.
    meter = device_from_toml(rtu_device("meter", os.path.realpath(line), 2, METER_REGISTERS))
    modbus_rtu_server.set_value("ups", "battery.charge", 77)

    async def body():
        pool = BusPool()
        sources = [ModbusSource(ups, pool), ModbusSource(meter, pool)]
        assert len(pool.buses()) == 1
        results = []
        for _ in range(3):
            results.append(await asyncio.gather(*(s.read() for s in sources)))
        for s in sources:
            await s.close()
        return results

    for ups_samples, meter_samples in run(body()):
        assert by_metric(ups_samples) == {"input.voltage": (127.0, "V"),
                                          "battery.charge": (77, "%"),
                                          "on_battery": (False, "")}
        assert by_metric(meter_samples) == {"voltage": (127.0, "V"), "energy": (1234.5, "kWh")}
    requests = modbus_rtu_server.requests
    assert len(requests) == 3 * (2 + 2)     # ups: input 0-4 merged + discrete; meter: 0, 342
    assert {r.unit for r in requests} == {1, 2}
    # One master on the line: each frame waits frame_gap_ms (30 ms by default for RTU) after the
    # previous answer, so no two requests ever arrive closer together than that.
    gaps = [b.t - a.t for a, b in zip(requests, requests[1:])]
    assert min(gaps) >= 0.027, gaps


def test_a_unit_nobody_answers_for_times_out_and_the_line_stays_usable(modbus_rtu_server):
    line = modbus_rtu_server.client_end
    ghost = device_from_toml(rtu_device("ghost", line, 9, UPS_REGISTERS, timeout_s=0.3))
    ups = device_from_toml(rtu_device("ups", line, 1, UPS_REGISTERS))

    async def body():
        pool = BusPool()
        ghost_source, ups_source = ModbusSource(ghost, pool), ModbusSource(ups, pool)
        start = time.monotonic()
        with pytest.raises(DeviceTimeout) as info:
            await ghost_source.read()
        elapsed = time.monotonic() - start
        samples = await ups_source.read()
        await ghost_source.close()
        await ups_source.close()
        return info.value, elapsed, samples

    error, elapsed, samples = run(body())
    assert error.reason == (f"timeout: no answer from unit 9 on {line} (9600 8N1); check wiring "
                            f"(A/B), baud rate and unit id")
    assert 0.25 <= elapsed < 2
    assert by_metric(samples)["battery.charge"] == (100, "%")
    # The silent unit was asked once; the poll gave up instead of trying its other reads.
    assert modbus_rtu_server.request_count(unit=9) == 1


def test_a_missing_serial_adapter_is_named(tmp_path):
    path = tmp_path / "ttyUSB-not-plugged"
    device = device_from_toml(rtu_device("ups", str(path), 1, UPS_REGISTERS))

    async def body():
        source = ModbusSource(device, BusPool())
        with pytest.raises(DeviceTimeout) as info:
            await source.read()
        await source.close()
        return info.value

    assert run(body()).reason == (f"serial port {path} does not exist; is the USB-RS485 adapter "
                                  f"plugged in?")


def test_devices_on_one_serial_port_must_agree_on_the_line_settings(modbus_rtu_server):
    line = modbus_rtu_server.client_end
    ups = device_from_toml(rtu_device("ups", line, 1, UPS_REGISTERS))
    meter = device_from_toml(rtu_device("meter", line, 2, METER_REGISTERS,
                                        extra="baudrate = 19200\nparity = \"E\""))

    async def body():
        pool = BusPool()
        ups_source, meter_source = ModbusSource(ups, pool), ModbusSource(meter, pool)
        await ups_source.read()
        with pytest.raises(SourceError) as info:
            await meter_source.read()
        await ups_source.close()
        await meter_source.close()
        return info.value

    assert run(body()).reason == (
        f"{line} is already used by device ups at 9600 8N1, but this device says 19200 8E1; "
        f"all devices on one serial bus must use the same baudrate, parity, stopbits, bytesize")


def test_an_adapter_pulled_out_and_plugged_back_is_picked_up_again(modbus_rtu_server, serial_pair):
    line = modbus_rtu_server.client_end
    ups = device_from_toml(rtu_device("ups", line, 1, UPS_REGISTERS, timeout_s=0.5))

    async def body():
        source = ModbusSource(ups, BusPool())
        before = await source.read()
        await asyncio.to_thread(modbus_rtu_server.stop)
        await asyncio.to_thread(serial_pair.unplug)
        with pytest.raises(DeviceTimeout) as info:
            await source.read()
        await asyncio.to_thread(serial_pair.plug)
        await asyncio.to_thread(modbus_rtu_server.start)
        after = await source.read()
        await source.close()
        return before, info.value, after

    before, error, after = run(body())
    assert error.reason == (f"serial port {line} does not exist; is the USB-RS485 adapter "
                            f"plugged in?")
    assert by_metric(before) == by_metric(after) == {
        "input.voltage": (127.0, "V"), "battery.charge": (100, "%"), "on_battery": (False, "")}
