"""The ``kind = "modbus"`` device settings: what a technician may write, and what they are told."""

from __future__ import annotations

import pytest

from agent.config.modbus import RegisterSpec
from agent.errors import ConfigError
from fixtures.modbus import sim_ups
from fixtures.modbus import config_from_toml, device_from_toml


def problems_of(devices_toml: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_from_toml(devices_toml)
    return info.value.problems


def test_the_simulators_ready_to_paste_entries_are_valid_and_match_its_register_map():
    cfg = config_from_toml(sim_ups.devices_toml(5020))
    assert [d.name for d in cfg.devices] == ["ups", "meter"]
    seen = set()
    for device in cfg.devices:
        for spec in device.settings.registers:
            point = sim_ups.POINT_BY_NAME[(device.name, spec.name)]
            seen.add((device.name, spec.name))
            assert device.settings.unit_id == point.unit_id
            assert (spec.table, spec.address, spec.type) == (point.table, point.address,
                                                              point.type), spec.name
            assert spec.scale == pytest.approx(point.scale), spec.name
            assert spec.unit == point.unit, spec.name
            expected_order = sim_ups._ORDERS[point.order]
            assert (spec.word_order == "little", spec.byte_order == "little") == expected_order
    assert seen == set(sim_ups.POINT_BY_NAME), "every map point has a TOML entry"


def test_defaults_for_a_tcp_device():
    s = device_from_toml('[[devices]]\nname = "ups"\nkind = "modbus"\nhost = "10.0.0.5"\n'
                         '[[devices.registers]]\nname = "battery.charge"\naddress = 4\n').settings
    assert (s.transport, s.host, s.port, s.unit_id) == ("tcp", "10.0.0.5", 502, 1)
    assert (s.frame_gap_ms, s.max_registers_per_read, s.max_gap, s.address_base) == (0, 125, 8, 0)
    assert s.registers == (RegisterSpec(name="battery.charge", table="holding", address=4,
                                        label="holding register 4", type="int16", count=1),)


def test_defaults_for_a_serial_device_leave_a_frame_gap():
    s = device_from_toml('[[devices]]\nname = "ups"\nkind = "modbus"\ntransport = "rtu"\n'
                         'serial_port = "/dev/ttyUSB0"\n'
                         '[[devices.registers]]\nname = "battery.charge"\naddress = 4\n').settings
    assert (s.serial_port, s.baudrate, s.parity, s.stopbits, s.bytesize) == \
        ("/dev/ttyUSB0", 9600, "N", 1, 8)
    assert s.frame_gap_ms == 30
    assert s.line == "9600 8N1"


@pytest.mark.parametrize("address, table, wire", [
    (1, "coil", 0), (10001, "discrete", 0), (30001, "input", 0), (40010, "holding", 9),
    (49999, "holding", 9998), (300001, "input", 0), (465536, "holding", 65535),
])
def test_modicon_addresses_carry_their_table(address, table, wire):
    s = device_from_toml('[[devices]]\nname = "meter"\nkind = "modbus"\nhost = "h"\n'
                         'address_base = "modicon"\n[[devices.registers]]\nname = "x"\n'
                         f'address = {address}\n').settings
    spec = s.registers[0]
    assert (spec.table, spec.address, spec.label) == (table, wire, str(address))


def test_one_based_addresses_are_shifted_to_the_wire_address():
    s = device_from_toml('[[devices]]\nname = "ups"\nkind = "modbus"\nhost = "h"\n'
                         'address_base = 1\n[[devices.registers]]\nname = "x"\ntable = "input"\n'
                         'address = 1\n').settings
    assert (s.registers[0].address, s.registers[0].label) == (0, "input register 1")


def test_order_names_and_separate_word_and_byte_order_mean_the_same():
    s = device_from_toml('[[devices]]\nname = "ups"\nkind = "modbus"\nhost = "h"\n'
                         '[[devices.registers]]\nname = "a"\naddress = 0\ntype = "float32"\n'
                         'order = "BADC"\n'
                         '[[devices.registers]]\nname = "b"\naddress = 2\ntype = "float32"\n'
                         'word_order = "big"\nbyte_order = "little"\n').settings
    a, b = s.registers
    assert (a.word_order, a.byte_order) == (b.word_order, b.byte_order) == ("big", "little")


def test_every_problem_is_reported_at_once_with_its_key_path():
    problems = problems_of('''
[[devices]]
name = "ups"
kind = "modbus"
host = "10.0.0.5"
unit_id = 300
max_registers_per_read = 200

  [[devices.registers]]
  name = "battery.charge"
  address = 4

  [[devices.registers]]
  name = "battery.voltage"
  address = 5
  type = "int17"

  [[devices.registers]]
  address = 6

  [[devices.registers]]
  name = "Battery Temp"
  address = -1
  scael = 0.1

  [[devices.registers]]
  name = "status"
  address = 8
  type = "float32"
  flags = { 0 = "on_battery" }
  order = "ACBD"
''')
    assert problems == [
        'devices[0].unit_id: expected an integer 0-255, got 300',
        'devices[0].max_registers_per_read: expected an integer 1-125, got 200',
        'devices[0].registers[1].type: expected one of "int16", "uint16", "int32", "uint32", '
        '"int64", "uint64", "float32", "float64", "string", "bit", got "int17"; did you mean "int16"?',
        'devices[0].registers[2].name: is required but missing',
        'devices[0].registers[3].name: expected a metric name of dotted lowercase words, '
        'e.g. "battery.charge", got "Battery Temp"',
        'devices[0].registers[3].address: expected an integer 0-65535, got -1',
        'devices[0].registers[3].scael: is not a known setting; did you mean scale?',
        'devices[0].registers[4].order: expected one of "ABCD", "CDAB", "BADC", "DCBA", '
        'got "ACBD"',
        'devices[0].registers[4].flags: is only used with integer types (int16 ... uint64), '
        'got type = "float32"',
    ]


def test_bus_keys_that_belong_to_the_other_transport_are_pointed_out():
    problems = problems_of('''
[[devices]]
name = "ups"
kind = "modbus"
transport = "rtu"
host = "10.0.0.5"
[[devices.registers]]
name = "a"
address = 0

[[devices]]
name = "meter"
kind = "modbus"
host = "10.0.0.5"
serial_port = "/dev/ttyUSB0"
baudrate = 19200
[[devices.registers]]
name = "a"
address = 0
''')
    assert problems == [
        'devices[0].serial_port: is required but missing',
        'devices[0].host: is only used with transport = "tcp" or "rtu_over_tcp"; this device '
        'uses transport = "rtu" (serial_port)',
        'devices[1].serial_port: is only used with transport = "rtu"; set transport = "rtu" '
        'for a serial line',
        'devices[1].baudrate: is only used with transport = "rtu"; over TCP the gateway\'s own '
        'serial settings apply',
    ]


def test_register_problems_name_the_value_and_the_expectation():
    problems = problems_of('''
[[devices]]
name = "meter"
kind = "modbus"
host = "h"
address_base = "modicon"
max_registers_per_read = 10

  [[devices.registers]]
  name = "voltage"
  address = 20005

  [[devices.registers]]
  name = "voltage"
  address = 30001
  table = "holding"

  [[devices.registers]]
  name = "serial"
  address = 40001
  type = "string"
  length = 20

  [[devices.registers]]
  name = "poll.status"
  address = 40003
  type = "bit"
  bit = 16

  [[devices.registers]]
  name = "mode"
  address = 40004
  type = "uint16"
  enum = { x = "online" }
  scale = 0

  [[devices.registers]]
  name = "alarm"
  address = 10001
  type = "uint16"
''')
    assert problems == [
        'devices[0].registers[0].address: expected a Modicon address like 40001 (holding), '
        '30001 (input), 10001 (discrete) or 1 (coil), got 20005',
        'devices[0].registers[1].table: address 30001 is a Modicon input address, but table = '
        '"holding"; leave table out or fix the address',
        'devices[0].registers[2].length: expected an integer 1-10, got 20',
        'devices[0].registers[3].name: names starting with "poll." are reserved for the '
        'poller\'s own metrics, got "poll.status"',
        'devices[0].registers[3].bit: expected an integer 0-15, got 16',
        'devices[0].registers[4].scale: expected a number other than 0, got 0',
        'devices[0].registers[4].enum.x: expected an integer code, got "x"',
        'devices[0].registers[5].type: discrete addresses hold single bits: use type = "bit" '
        'or leave type out, got "uint16"',
    ]


def test_metric_names_must_be_unique_including_the_flags_they_expand_to():
    problems = problems_of('''
[[devices]]
name = "ups"
kind = "modbus"
host = "h"
  [[devices.registers]]
  name = "status"
  address = 0
  type = "uint16"
  flags = { 0 = "on_battery" }
  [[devices.registers]]
  name = "status.on_battery"
  address = 1
  type = "bit"
  bit = 0
''')
    assert problems == ['devices[0].registers[1].name: "status.on_battery" is already used by '
                        'devices[0].registers[0]']


def test_a_device_without_registers_is_an_error():
    problems = problems_of('[[devices]]\nname = "ups"\nkind = "modbus"\nhost = "h"\n')
    assert problems == ["devices[0].registers: is required but missing (add at least one [[devices.registers]] entry)"]


def test_unit_ids_on_a_serial_bus_stop_at_247():
    problems = problems_of('[[devices]]\nname = "ups"\nkind = "modbus"\ntransport = "rtu"\n'
                           'serial_port = "/dev/ttyUSB0"\nunit_id = 255\n'
                           '[[devices.registers]]\nname = "a"\naddress = 0\n')
    assert problems == ["devices[0].unit_id: expected an integer 1-247, got 255"]


def test_a_register_may_not_run_past_the_end_of_the_address_space():
    problems = problems_of('[[devices]]\nname = "ups"\nkind = "modbus"\nhost = "h"\n'
                           '[[devices.registers]]\nname = "a"\naddress = 65535\n'
                           'type = "float32"\n')
    assert problems == ["devices[0].registers[0].address: the register's 2 address(es) run "
                        "past the end of the address space (65535), got holding register 65535"]
