"""Scanning for devices not configured yet: what is tried, in which order, what is suggested."""

from __future__ import annotations

import pytest

from agent.diagnose import scan
from fixtures.modbus import config_from_toml, run


def test_unit_lists_and_their_mistakes():
    assert scan.parse_units("1-3,7,2") == (1, 2, 3, 7)
    assert scan.parse_units("247") == (247,)
    for bad in ("0-300", "5-1", "x", ""):
        with pytest.raises(ValueError):
            scan.parse_units(bad)


def test_the_default_gateway_comes_from_the_routing_table():
    table = ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"
             "eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n"
             "eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\n")
    assert scan.default_gateway(table) == "192.168.1.1"
    assert scan.default_gateway(table.splitlines()[0] + "\n") is None


def test_a_serial_scan_finds_the_line_setting_first_then_every_unit(modbus_rtu_server):
    settings = scan.serial_settings(modbus_rtu_server.client_end, (19200, 9600), ("N",))
    seen: list[tuple[int, int]] = []
    result = run(scan.scan_modbus(settings, scan.parse_units("1-13"), timeout=0.05,
                                  progress=lambda done, total, text: seen.append((done, total))))
    assert [f.unit for f in result.found] == [1, 2]
    # A pty has no baud rate: the first setting answers, and the others are never tried.
    assert result.tried == ["19200 8N1"]
    assert [d for d, _ in seen] == sorted(d for d, _ in seen), "progress only goes forward"
    assert seen[-1][0] == seen[-1][1], "and ends full"
    assert seen[-1][1] == 13, "10 quick unit ids, then the 3 others under the setting that answered"
    entry = scan.modbus_entry(result.found[0], name="ups", comments={"registers": "from the manual"})
    device = config_from_toml(entry).devices[0]
    assert (device.settings.transport, device.settings.baudrate, device.settings.parity,
            device.settings.unit_id) == ("rtu", 19200, "N", 1)


def test_a_gateway_says_which_units_are_not_there(modbus_server):
    from agent.sources.modbus_link import BusParams
    result = run(scan.scan_modbus([BusParams("tcp", host="127.0.0.1", port=modbus_server.port)],
                                  scan.parse_units("1-247"), timeout=0.5,
                                  progress=lambda *a: None))
    assert [(f.unit, f.table, f.value) for f in result.found] == [(1, "input", 1270), (2, "input", 17150)]
    assert modbus_server.connections == 1, "one connection for the whole scan"


def test_a_line_setting_the_port_cannot_take_is_skipped_not_fatal(modbus_rtu_server):
    # A pty refuses parity (termios EINVAL), as some USB adapters refuse some settings.
    settings = scan.serial_settings(modbus_rtu_server.client_end, (9600,), ("E", "N"))
    result = run(scan.scan_modbus(settings, scan.parse_units("1-3"), timeout=0.05,
                                  progress=lambda *a: None))
    assert result.error is None and [f.unit for f in result.found] == [1, 2]
    assert result.unsupported and result.unsupported[0].startswith("9600 8E1")
