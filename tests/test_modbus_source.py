"""The Modbus source against a real pymodbus server (scripts/sim_ups.py) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import threading
import time

import pytest

from agent.errors import DeviceProtocolError, DeviceRefused, DeviceTimeout
from agent.sources.modbus import BusPool, ModbusSource
from fixtures.modbus import (by_metric, config_from_toml, device_from_toml, eventually,
                             modbus_device, run)
from helpers import free_port

UPS_EXPECTED = {
    "input.voltage": (127.0, "V"),
    "input.frequency": (60.0, "Hz"),
    "output.voltage": (127.0, "V"),
    "output.load": (35, "%"),
    "battery.charge": (100, "%"),
    "battery.voltage": (27.6, "V"),
    "battery.runtime": (42, "min"),
    "battery.temperature": (25.0, "°C"),
    "status": (0, ""),
    "status.on_battery": (False, ""),
    "status.low_battery": (False, ""),
    "status.overload": (False, ""),
    "status.replace_battery": (False, ""),
    "status.charging": (False, ""),
    "mode": ("online", ""),
    "on_battery.total": (90061, "s"),
    "model": ("SIM-UPS 1500VA", ""),
    "on_battery": (False, ""),
    "beeper": (True, ""),
}
METER_EXPECTED = {
    "voltage": (127.0, "V"),
    "current": (4.25, "A"),
    "power": (513.25, "W"),
    "power_factor": (0.95, ""),
    "frequency": (60.0, "Hz"),
    "energy": (1234.5, "kWh"),
}


def reg_toml(name: str, address: int, **keys) -> str:
    extra = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in keys.items())
    return f"[[devices.registers]]\nname = \"{name}\"\naddress = {address}\n{extra}"


class RawGateway:
    """A bare TCP listener whose answers a test writes byte by byte (for misbehaving gateways).

    ``answer(request)`` returns the bytes to send back, None to stay silent, or ``HANG_UP`` to
    close the connection.
    """

    HANG_UP = b"hang up"

    def __init__(self, answer) -> None:
        self.answer = answer
        self.requests = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "RawGateway":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def _serve(self) -> None:
        conns: list[socket.socket] = []
        while not self._stop.is_set():
            try:
                conn = self._listener.accept()[0]
                conn.settimeout(0.05)
                conns.append(conn)
            except OSError:
                pass
            for conn in list(conns):
                try:
                    request = conn.recv(260)
                except socket.timeout:
                    continue
                except OSError:
                    request = b""
                if not request:
                    conns.remove(conn)
                    conn.close()
                    continue
                self.requests += 1
                reply = self.answer(request)
                if reply == self.HANG_UP:
                    conns.remove(conn)
                    conn.close()
                elif reply:
                    conn.sendall(reply)
        for conn in conns:
            conn.close()


def test_reads_the_ups_and_the_meter_with_scale_units_enum_and_flags(modbus_server):
    ups, meter = config_from_toml(modbus_server.devices_toml()).devices

    async def body():
        pool = BusPool()
        sources = [ModbusSource(ups, pool), ModbusSource(meter, pool)]
        got = [by_metric(await s.read()) for s in sources]
        for s in sources:
            await s.close()
        return got

    ups_got, meter_got = run(body())
    assert ups_got == UPS_EXPECTED
    assert meter_got == METER_EXPECTED
    # Both devices sit behind one gateway: one connection, four reads each.
    assert modbus_server.connections == 1
    assert modbus_server.request_count(unit=1) == 4
    assert modbus_server.request_count(unit=2) == 4


def test_readings_follow_what_the_device_reports(modbus_server):
    ups = config_from_toml(modbus_server.devices_toml()).devices[0]

    async def body():
        source = ModbusSource(ups, BusPool())
        modbus_server.set_value("ups", "battery.charge", 42)
        modbus_server.set_outage(True)
        first = by_metric(await source.read())
        modbus_server.set_outage(False)
        second = by_metric(await source.read())
        await source.close()
        return first, second

    during, after = run(body())
    assert during["battery.charge"] == (42, "%")
    assert during["input.voltage"] == (0.0, "V")
    assert during["status.on_battery"] == (True, "")
    assert during["on_battery"] == (False, "") or during["on_battery"] == (True, "")
    assert during["mode"] == ("on battery", "")
    assert after["mode"] == ("online", "")
    assert after["status.on_battery"] == (False, "")


def test_every_type_and_order_from_the_device(modbus_server):
    srv = modbus_server
    srv.set_typed(1, "holding", 1000, "int32", -123456, order="CDAB")
    srv.set_typed(1, "holding", 1002, "float64", 6.02214076e23, order="DCBA")
    srv.set_typed(1, "holding", 1006, "uint64", 2 ** 40 + 5, order="BADC")
    srv.set_typed(1, "holding", 1010, "string", "CLINIC", order="BADC", length=4)
    srv.set_registers(1, "holding", 1014, [0b1010, 0xFF38])
    srv.set_typed(1, "holding", 1016, "float32", -40.5, order="ABCD")
    registers = "".join([
        reg_toml("a.int32", 1000, type="int32", order="CDAB"),
        reg_toml("a.float64", 1002, type="float64", order="DCBA"),
        reg_toml("a.uint64", 1006, type="uint64", word_order="big", byte_order="little"),
        reg_toml("a.string", 1010, type="string", length=4, byte_order="little"),
        reg_toml("a.bit1", 1014, type="bit", bit=1),
        reg_toml("a.bit2", 1014, type="bit", bit=2),
        reg_toml("a.int16", 1015, type="int16", scale=0.5, offset=100),
        reg_toml("a.float32", 1016, type="float32", unit="°C"),
    ])
    device = device_from_toml(modbus_device(port=srv.port, registers=registers))

    async def body():
        source = ModbusSource(device, BusPool())
        try:
            return by_metric(await source.read())
        finally:
            await source.close()

    assert run(body()) == {
        "a.int32": (-123456, ""),
        "a.float64": (6.02214076e23, ""),
        "a.uint64": (2 ** 40 + 5, ""),
        "a.string": ("CLINIC", ""),
        "a.bit1": (True, ""),
        "a.bit2": (False, ""),
        "a.int16": (0.0, ""),           # -200 * 0.5 + 100
        "a.float32": (-40.5, "°C"),
    }
    # All of it in one request: 1000-1017 merged.
    assert [(r.table, r.address, r.count) for r in srv.requests] == [("holding", 1000, 18)]


def test_registers_are_merged_into_as_few_requests_as_the_settings_allow(modbus_server):
    registers = "".join(reg_toml(f"r{a}", a, table="input") for a in (0, 1, 2, 3, 6))

    def requests_for(extra: str) -> list[tuple[int, int]]:
        modbus_server.clear_requests()
        device = device_from_toml(modbus_device(port=modbus_server.port, registers=registers,
                                                extra=extra))

        async def body():
            source = ModbusSource(device, BusPool())
            samples = await source.read()
            await source.close()
            return samples

        assert len(run(body())) == 5
        return [(r.address, r.count) for r in modbus_server.requests]

    assert requests_for("") == [(0, 7)]
    assert requests_for("max_gap = 1") == [(0, 4), (6, 1)]
    assert requests_for("max_gap = 1\nmax_registers_per_read = 2") == [(0, 2), (2, 2), (6, 1)]


def test_a_missing_register_is_split_out_and_the_rest_still_read(modbus_server, caplog):
    caplog.set_level(logging.INFO, logger="agent.sources.modbus")
    registers = "".join(reg_toml(n, a, table="input", type="uint16") for n, a in
                        (("input.voltage", 0), ("output.load", 3), ("battery.charge", 4),
                         ("battery.extra", 12)))        # input 12 does not exist on the UPS
    registers += reg_toml("model", 100, type="string", length=8)
    device = device_from_toml(modbus_device(port=modbus_server.port, registers=registers,
                                            extra="max_gap = 10"))

    async def body():
        source = ModbusSource(device, BusPool())
        first = await source.read()
        after_first = list(modbus_server.requests)
        modbus_server.clear_requests()
        second = await source.read()
        await source.close()
        return source, first, after_first, second

    source, first, requests_first, second = run(body())
    expected = {"input.voltage": (1270, ""), "output.load": (35, ""),
                "battery.charge": (100, ""), "model": ("SIM-UPS 1500VA", "")}
    assert by_metric(first) == by_metric(second) == expected
    # Poll 1: the merged read 0-12 is refused, then each of its registers is tried alone.
    assert [(r.table, r.address, r.count) for r in requests_first] == [
        ("holding", 100, 8), ("input", 0, 13),
        ("input", 0, 1), ("input", 3, 1), ("input", 4, 1), ("input", 12, 1)]
    # Poll 2: the missing register is no longer asked for.
    assert [(r.table, r.address, r.count) for r in modbus_server.requests] == [
        ("holding", 100, 8), ("input", 0, 1), ("input", 3, 1), ("input", 4, 1)]
    assert list(source.bad_registers.values()) == [
        "illegal data address at input register 12 (the device does not have this register)"]
    # Said once, when found; the second poll has nothing new to say.
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "ups: the read of 13 registers at input register 0 to input register 12 was "
                 "rejected (illegal data address); reading its 4 registers one by one from now "
                 "on"),
        ("WARNING", "ups: skipping battery.extra until the agent restarts: illegal data address "
                    "at input register 12 (the device does not have this register)"),
    ]


def test_a_failing_read_loses_only_its_own_metrics_and_is_logged_once(modbus_server, caplog):
    caplog.set_level(logging.DEBUG, logger="agent.sources.modbus")
    registers = reg_toml("battery.charge", 4, table="input", unit="%")
    registers += reg_toml("model", 100, type="string", length=8)
    device = device_from_toml(modbus_device(port=modbus_server.port, registers=registers))
    modbus_server.set_exception(1, 4, table="holding")

    async def body():
        source = ModbusSource(device, BusPool())
        polls = [by_metric(await source.read()) for _ in range(2)]
        modbus_server.set_exception(1, None, table="holding")
        polls.append(by_metric(await source.read()))
        await source.close()
        return polls

    polls = run(body())
    assert polls == [{"battery.charge": (100, "%")}] * 2 + [
        {"battery.charge": (100, "%"), "model": ("SIM-UPS 1500VA", "")}]
    why = ("ups: some registers could not be read: server device failure (Modbus exception 4) "
           "reading holding register 100")
    assert [(r.levelname, r.getMessage()) for r in caplog.records
            if "registers" in r.getMessage()] == [
        ("WARNING", why), ("DEBUG", why), ("INFO", "ups: all registers read again")]


def test_a_device_without_any_of_the_registers_says_which_address_it_refused(modbus_server):
    registers = reg_toml("reactive_power", 30025, type="float32")   # wire address 24 exists
    registers += reg_toml("thd", 30081, type="float32")              # wire address 80 does not
    device = device_from_toml(modbus_device(name="meter", port=modbus_server.port, unit_id=2,
                                            registers=reg_toml("thd", 30081, type="float32"),
                                            extra='address_base = "modicon"'))

    async def body():
        source = ModbusSource(device, BusPool())
        errors = []
        for _ in range(2):
            with pytest.raises(DeviceProtocolError) as info:
                await source.read()
            errors.append(info.value)
        await source.close()
        return errors

    first, second = run(body())
    assert first.reason == ("illegal data address at 30081 (the device does not have this "
                            "register)")
    assert first.status == "bad_answer"
    assert second.reason == ("none of the configured registers exist on the device: illegal "
                             "data address at 30081 (the device does not have this register)")
    assert modbus_server.request_count() == 1, "a missing register is asked for only once"


@pytest.mark.parametrize("code, error, reason", [
    (6, DeviceProtocolError, "server device busy reading input register 0 to input register 1; "
                             "try a longer interval_s"),
    (4, DeviceProtocolError, "server device failure (Modbus exception 4) reading input "
                             "register 0 to input register 1"),
    (1, DeviceProtocolError, "illegal function: unit 1 does not support reading input "
                             "registers (function 4); check the table of input register 0 to "
                             "input register 1"),
    (11, DeviceTimeout, "timeout: the gateway at 127.0.0.1:{port} got no answer from unit 1 "
                        "(gateway target device failed to respond); check the RS-485 wiring "
                        "and unit id"),
])
def test_exception_responses_become_plain_words(modbus_server, code, error, reason):
    registers = reg_toml("a", 0, table="input") + reg_toml("b", 1, table="input")
    device = device_from_toml(modbus_device(port=modbus_server.port, registers=registers))
    modbus_server.set_exception(1, code)

    async def body():
        source = ModbusSource(device, BusPool())
        try:
            with pytest.raises(error) as info:
                await source.read()
            return info.value
        finally:
            await source.close()

    assert run(body()).reason == reason.format(port=modbus_server.port)


def test_a_unit_the_gateway_cannot_reach_is_a_timeout(modbus_server):
    device = device_from_toml(modbus_device(port=modbus_server.port, unit_id=9,
                                            registers=reg_toml("a", 0)))

    async def body():
        source = ModbusSource(device, BusPool())
        with pytest.raises(DeviceTimeout) as info:
            await source.read()
        await source.close()
        return info.value

    assert run(body()).reason == (
        f"timeout: the gateway at 127.0.0.1:{modbus_server.port} got no answer from unit 9 "
        f"(gateway target device failed to respond); check the RS-485 wiring and unit id")


def test_nothing_listening_is_refused_at_once():
    port = free_port()
    device = device_from_toml(modbus_device(port=port, registers=reg_toml("a", 0),
                                            timeout_s=5))

    async def body():
        source = ModbusSource(device, BusPool())
        start = time.monotonic()
        with pytest.raises(DeviceRefused) as info:
            await source.read()
        elapsed = time.monotonic() - start
        await source.close()
        return info.value, elapsed

    error, elapsed = run(body())
    assert error.reason == f"nothing listening at 127.0.0.1:{port}; is the Modbus TCP gateway on?"
    assert error.status == "refused"
    assert elapsed < 2, "a refused connection must not wait for the timeout"


def test_a_silent_device_times_out_after_timeout_s(modbus_server):
    device = device_from_toml(modbus_device(port=modbus_server.port,
                                            registers=reg_toml("a", 0, table="input"),
                                            timeout_s=0.3))
    modbus_server.silent = True

    async def body():
        source = ModbusSource(device, BusPool())
        start = time.monotonic()
        with pytest.raises(DeviceTimeout) as info:
            await source.read()
        elapsed = time.monotonic() - start
        await source.close()
        return info.value, elapsed

    error, elapsed = run(body())
    assert error.reason == (f"timeout: no answer from unit 1 at 127.0.0.1:{modbus_server.port}; "
                            f"check wiring/address/unit id")
    assert error.status == "timeout"
    assert 0.25 <= elapsed < 2
    assert modbus_server.request_count() == 1, "the request did arrive"


def test_a_gateway_that_accepts_but_never_answers_times_out():
    with RawGateway(lambda request: None) as gateway:
        device = device_from_toml(modbus_device(port=gateway.port, registers=reg_toml("a", 0),
                                                timeout_s=0.3))

        async def body():
            source = ModbusSource(device, BusPool())
            start = time.monotonic()
            with pytest.raises(DeviceTimeout) as info:
                await source.read()
            elapsed = time.monotonic() - start
            await source.close()
            return info.value, elapsed

        error, elapsed = run(body())
    assert error.reason == (f"timeout: no answer from unit 1 at 127.0.0.1:{gateway.port}; "
                            f"check wiring/address/unit id")
    assert elapsed < 2


def test_an_answer_for_another_unit_is_garbage_not_silence():
    def answer_as_unit_5(request: bytes) -> bytes:
        tid, _, _, unit, function, _, count = struct.unpack(">HHHBBHH", request[:12])
        pdu = bytes([function, 2 * count]) + b"\x00\x2a" * count
        return struct.pack(">HHHB", tid, 0, len(pdu) + 1, 5) + pdu

    with RawGateway(answer_as_unit_5) as gateway:
        device = device_from_toml(modbus_device(port=gateway.port, registers=reg_toml("a", 0),
                                                timeout_s=0.3))

        async def body():
            source = ModbusSource(device, BusPool())
            with pytest.raises(DeviceProtocolError) as info:
                await source.read()
            await source.close()
            return info.value

        error = run(body())
    assert error.reason == (f"garbage: 127.0.0.1:{gateway.port} sent 11 bytes that are no answer "
                            f"to a request for unit 1 (00 01 00 00 00 05 05 03 02 00 2a); check "
                            f"the unit id and that this is a Modbus TCP port")
    assert error.status == "bad_answer"


def test_a_gateway_that_hangs_up_on_every_request_is_reported_as_such():
    # Some gateways close the connection instead of answering for a unit they cannot reach.
    with RawGateway(lambda request: RawGateway.HANG_UP) as gateway:
        device = device_from_toml(modbus_device(port=gateway.port, registers=reg_toml("a", 0),
                                                timeout_s=5))

        async def body():
            source = ModbusSource(device, BusPool())
            start = time.monotonic()
            with pytest.raises(DeviceTimeout) as info:
                await source.read()
            elapsed = time.monotonic() - start
            await source.close()
            return info.value, elapsed

        error, elapsed = run(body())
    assert error.reason == (f"connection to 127.0.0.1:{gateway.port} was closed before unit 1 "
                            f"answered; did the gateway restart?")
    assert elapsed < 4, "a hang-up must not wait for the timeout"
    assert gateway.requests == 1, "a fresh connection that hangs up is not retried"


def test_the_source_recovers_by_itself_when_the_gateway_comes_back(modbus_server):
    ups = config_from_toml(modbus_server.devices_toml()).devices[0]

    async def body():
        source = ModbusSource(ups, BusPool())
        assert by_metric(await source.read()) == UPS_EXPECTED
        await asyncio.to_thread(modbus_server.stop)
        with pytest.raises((DeviceRefused, DeviceTimeout)) as info:
            await source.read()
        down = info.value
        await asyncio.to_thread(modbus_server.start)
        back = by_metric(await source.read())
        await source.close()
        return down, back

    down, back = run(body())
    assert isinstance(down, DeviceRefused), down.reason
    assert back == UPS_EXPECTED
    assert modbus_server.connections == 2


def test_a_connection_dropped_mid_request_fails_at_once_not_at_the_timeout(modbus_server):
    device = device_from_toml(modbus_device(port=modbus_server.port,
                                            registers=reg_toml("a", 0, table="input"),
                                            timeout_s=8))

    async def body():
        source = ModbusSource(device, BusPool())
        await source.read()
        modbus_server.silent = True
        start = time.monotonic()
        poll = asyncio.create_task(source.read())
        await eventually(lambda: modbus_server.request_count() == 2, what="the request")
        await asyncio.to_thread(modbus_server.stop)
        with pytest.raises(DeviceRefused) as info:
            await poll
        elapsed = time.monotonic() - start
        await source.close()
        return info.value, elapsed

    error, elapsed = run(body())
    # The source noticed the drop at once, tried a new connection and found the gateway gone.
    assert error.reason == (f"nothing listening at 127.0.0.1:{modbus_server.port}; is the "
                            f"Modbus TCP gateway on?")
    assert elapsed < 4


def test_a_poll_cancelled_mid_request_leaves_no_late_answer_behind(modbus_server):
    # The poller cancels a poll that overruns its hard deadline. Over TCP the answer to the
    # cancelled request may still arrive; it must never be taken for the next request's.
    registers = reg_toml("battery.charge", 4, table="input")
    device = device_from_toml(modbus_device(port=modbus_server.port, registers=registers,
                                            timeout_s=5))
    modbus_server.silent = True

    async def body():
        source = ModbusSource(device, BusPool())
        poll = asyncio.create_task(source.read())
        await eventually(lambda: modbus_server.request_count() == 1, what="the request")
        poll.cancel()
        with pytest.raises(asyncio.CancelledError):
            await poll
        modbus_server.silent = False
        modbus_server.set_value("ups", "battery.charge", 64)
        samples = await source.read()
        await source.close()
        return samples

    assert by_metric(run(body())) == {"battery.charge": (64, "")}
    assert modbus_server.connections == 2, "the cancelled request's connection was dropped"


def test_nan_is_skipped_and_logged_once_while_the_rest_is_reported(modbus_server, caplog):
    caplog.set_level(logging.DEBUG, logger="agent.sources.modbus")
    modbus_server.set_registers(1, "holding", 1000, [0x7FC0, 0x0000])     # float32 NaN
    modbus_server.set_typed(1, "holding", 1002, "float32", 12.5)
    registers = reg_toml("a.power", 1000, type="float32") + reg_toml("b.power", 1002,
                                                                       type="float32")
    device = device_from_toml(modbus_device(port=modbus_server.port, registers=registers))

    async def body():
        source = ModbusSource(device, BusPool())
        polls = [by_metric(await source.read()) for _ in range(3)]
        modbus_server.set_typed(1, "holding", 1000, "float32", 1.0)
        polls.append(by_metric(await source.read()))
        await source.close()
        return polls

    polls = run(body())
    assert polls[:3] == [{"b.power": (12.5, "")}] * 3
    assert polls[3] == {"a.power": (1.0, ""), "b.power": (12.5, "")}
    about_a = [(r.levelname, r.getMessage()) for r in caplog.records if "a.power" in r.getMessage()]
    assert about_a == [
        ("WARNING", "ups: a.power (holding register 1000) is NaN (the device marks the value as "
                    "not available); skipping it"),
        ("DEBUG", "ups: a.power (holding register 1000) is NaN (the device marks the value as "
                  "not available); skipping it"),
        ("DEBUG", "ups: a.power (holding register 1000) is NaN (the device marks the value as "
                  "not available); skipping it"),
        ("INFO", "ups: a.power (holding register 1000) has a valid value again"),
    ]


def test_a_device_sending_only_garbage_fails_the_poll_with_the_reason(modbus_server):
    modbus_server.set_registers(1, "holding", 1000, [0xFFFE, 0x4142])
    device = device_from_toml(modbus_device(
        port=modbus_server.port, registers=reg_toml("serial", 1000, type="string", length=2)))

    async def body():
        source = ModbusSource(device, BusPool())
        with pytest.raises(DeviceProtocolError) as info:
            await source.read()
        await source.close()
        return info.value

    assert run(body()).reason == ("every value the device sent was garbage: serial (holding "
                                  "register 1000) is not text (bytes ff fe 41 42)")


def test_devices_behind_one_gateway_share_one_connection_and_take_turns(modbus_server):
    ups, meter = config_from_toml(modbus_server.devices_toml()).devices

    async def body():
        pool = BusPool()
        sources = [ModbusSource(ups, pool), ModbusSource(meter, pool)]
        assert len(pool.buses()) == 1
        for _ in range(5):
            results = await asyncio.gather(*(s.read() for s in sources))
            assert by_metric(results[0]) == UPS_EXPECTED
            assert by_metric(results[1]) == METER_EXPECTED
        for s in sources:
            await s.close()
        assert pool.buses() == []

    run(body())
    assert modbus_server.connections == 1
    assert modbus_server.request_count() == 5 * 8


def test_frame_gap_spaces_requests_on_the_bus(modbus_server):
    registers = "".join(reg_toml(f"r{a}", a, table="input") for a in (0, 5))
    device = device_from_toml(modbus_device(port=modbus_server.port, registers=registers,
                                            extra="max_gap = 0\nframe_gap_ms = 50"))

    async def body():
        source = ModbusSource(device, BusPool())
        for _ in range(2):
            await source.read()
        await source.close()

    run(body())
    times = [r.t for r in modbus_server.requests]
    assert len(times) == 4
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= 0.045, gaps


def test_rtu_frames_over_tcp(modbus_server_factory):
    server = modbus_server_factory(framer="rtu")
    device = device_from_toml(modbus_device(
        name="meter", port=server.port, unit_id=2, extra='transport = "rtu_over_tcp"',
        registers=reg_toml("voltage", 0, table="input", type="float32", unit="V")))

    async def body():
        source = ModbusSource(device, BusPool())
        try:
            return by_metric(await source.read())
        finally:
            await source.close()

    assert run(body()) == {"voltage": (127.0, "V")}
    assert device.settings.frame_gap_ms == 30


def test_moving_values_stay_plausible(modbus_server_factory):
    server = modbus_server_factory(moving=True, seed=7)
    ups, meter = config_from_toml(server.devices_toml()).devices

    async def body():
        pool = BusPool()
        sources = [ModbusSource(ups, pool), ModbusSource(meter, pool)]
        got = [by_metric(await s.read()) for s in sources]
        for s in sources:
            await s.close()
        return got

    ups_got, meter_got = run(body())
    assert set(ups_got) == set(UPS_EXPECTED) and set(meter_got) == set(METER_EXPECTED)
    assert 110 <= ups_got["input.voltage"][0] <= 140
    assert 59 <= meter_got["frequency"][0] <= 61
    assert 0 <= ups_got["battery.charge"][0] <= 100
