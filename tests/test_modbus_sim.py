"""The UPS/meter simulator itself: its command line, its documented map, its outages."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from agent.sources.modbus import BusPool, ModbusSource
from fixtures.modbus import by_metric, config_from_toml, run, sim_ups
from helpers import free_port, wait_port

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "sim_ups.py"


def test_print_config_gives_the_entries_for_the_chosen_port():
    out = subprocess.run([sys.executable, str(SCRIPT), "--port", "6123", "--print-config"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    devices = config_from_toml(out).devices
    assert [(d.name, d.settings.port, d.settings.unit_id) for d in devices] == \
        [("ups", 6123, 1), ("meter", 6123, 2)]


def test_the_command_line_server_serves_moving_values_the_agent_can_read():
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--port", str(port), "--seed", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, timeout=30)
        ups, meter = config_from_toml(sim_ups.devices_toml(port)).devices

        async def body():
            pool = BusPool()
            sources = [ModbusSource(ups, pool), ModbusSource(meter, pool)]
            got = [by_metric(await s.read()) for s in sources]
            for s in sources:
                await s.close()
            return got

        ups_got, meter_got = run(body())
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert "UPS (unit 1) and power meter (unit 2) on 127.0.0.1" in out
    assert ups_got["model"] == ("SIM-UPS 1500VA", "")
    assert 110 <= ups_got["input.voltage"][0] <= 140
    assert ups_got["mode"] == ("online", "")
    assert 0.8 <= meter_got["power_factor"][0] <= 1


def test_outages_drop_the_mains_and_drain_the_battery():
    model = sim_ups.UpsModel(outages=True, seed=3)
    start = model.t0
    before = model.advance(start + 1)
    assert before[("ups", "mode")] == sim_ups.MODES["online"]
    during = model.advance(model.next_change + 0.1)           # the scheduled outage begins
    later = model.advance(model.last + 5)                     # outages last 10-40 s
    assert during[("ups", "mode")] == later[("ups", "mode")] == sim_ups.MODES["on battery"]
    assert during[("ups", "input.voltage")] == 0.0 and during[("meter", "current")] == 0.0
    assert during[("ups", "status")] & 1 << sim_ups.STATUS_FLAGS["on_battery"]
    assert later[("ups", "battery.charge")] < before[("ups", "battery.charge")]
    assert later[("ups", "on_battery.total")] > before[("ups", "on_battery.total")]


def test_the_mains_returns_at_its_usual_voltage_after_an_outage():
    # Not at the model's 112 V floor: the demo would show a "low voltage" event after each cut.
    model = sim_ups.UpsModel(outages=True, seed=3)
    model.advance(model.next_change + 0.1)                    # the outage begins
    model.advance(model.next_change - 0.5)                    # polled every half second
    after = model.advance(model.next_change + 0.1)            # it ends
    assert after[("ups", "mode")] == sim_ups.MODES["online"]
    assert 118.1 < after[("ups", "input.voltage")] < 135.9    # docs/events.md: clear levels


def test_encode_and_decode_are_inverse_for_every_point():
    for p in sim_ups.POINTS:
        words = sim_ups.encode(p.type, p.nominal, order=p.order, length=p.length, scale=p.scale)
        assert sim_ups.decode(p.type, words, order=p.order, scale=p.scale) == p.nominal, p.name


def test_start_in_thread_serves_until_stopped():
    port = free_port()
    sim = sim_ups.start_in_thread(port, moving=False)
    try:
        wait_port(port)
        ups = config_from_toml(sim_ups.devices_toml(port)).devices[0]

        async def body():
            source = ModbusSource(ups, BusPool())
            try:
                return by_metric(await source.read())
            finally:
                await source.close()

        assert run(body())["model"] == ("SIM-UPS 1500VA", "")
    finally:
        sim.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
