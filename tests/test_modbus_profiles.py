"""Device profiles: each shipped profile reads a device laid out as its source document says.

Each ``DOCUMENTED`` entry below is written from the profile's source document, not from the
profile file: values are placed at the documented addresses with the documented types, word
orders and scales, served by a real pymodbus server on 127.0.0.1 (scripts/sim_registers.py; the
simulator's own map for generic-ups), read by ``ModbusSource`` through ``profile = "..."``, and
must come out under the common names of docs/modbus-profiles.md with the documented values.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from agent.config import modbus_profiles
from agent.errors import ConfigError
from agent.sources.modbus import BusPool, ModbusSource
from fixtures.modbus import by_metric, config_from_toml, device_from_toml, modbus_device, run
from helpers import free_port, require_binary, wait_port

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ["apc-smart-ups", "eastron-sdm120", "eastron-sdm630", "generic-ups",
           "schneider-iem3x50"]


def _load_script(name: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module     # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


sim_registers = _load_script("sim_registers")


# -- the documents ---------------------------------------------------------------------------

@dataclass
class Documented:
    """A device image written from a profile's source document, and what it must read as."""

    profile: str
    unit: int
    fill: Callable[[Any, int], None]          # (RegisterImage, unit) -> None
    expected: dict[str, tuple[Any, str]]
    max_requests: int = 3


def eastron(points):
    """Eastron tables: float32 ABCD input registers numbered from 30001 (= wire address 0)."""
    def fill(image, unit):
        for register, value, _, _ in points:
            image.put_value(unit, "input", register - 30001, "float32", value)
    return fill, {name: (value, unit) for _, value, name, unit in points}


SDM630_TABLE = [   # SDM630Modbus (MID) V2 manual, 1.2.1 Input Registers: (register, value, ...)
    (30001, 230.1, "voltage.l1", "V"), (30003, 229.8, "voltage.l2", "V"),
    (30005, 231.4, "voltage.l3", "V"), (30007, 5.2, "current.l1", "A"),
    (30009, 4.8, "current.l2", "A"), (30011, 6.1, "current.l3", "A"),
    (30013, 1150.5, "power.l1_w", "W"), (30015, 1050.25, "power.l2_w", "W"),
    (30017, 1380.75, "power.l3_w", "W"), (30019, 1196.5, "apparent_power.l1_va", "VA"),
    (30021, 1103.0, "apparent_power.l2_va", "VA"), (30023, 1411.5, "apparent_power.l3_va", "VA"),
    (30025, -120.5, "reactive_power.l1_var", "var"),
    (30027, 80.25, "reactive_power.l2_var", "var"),
    (30029, 95.0, "reactive_power.l3_var", "var"), (30031, 0.96, "power_factor.l1", ""),
    (30033, 0.95, "power_factor.l2", ""), (30035, 0.978, "power_factor.l3", ""),
    (30043, 230.43, "voltage.ln_avg", "V"), (30047, 5.37, "current.avg", "A"),
    (30049, 16.1, "current.sum", "A"), (30053, 3581.5, "power.total_w", "W"),
    (30057, 3711.0, "apparent_power.total_va", "VA"),
    (30061, 54.75, "reactive_power.total_var", "var"), (30063, 0.965, "power_factor", ""),
    (30071, 50.01, "frequency_hz", "Hz"), (30073, 12345.6, "energy.import_kwh", "kWh"),
    (30075, 12.5, "energy.export_kwh", "kWh"),
    (30077, 456.7, "energy.reactive_import_kvarh", "kvarh"),
    (30079, 8.9, "energy.reactive_export_kvarh", "kvarh"),
    (30201, 399.1, "voltage.l1_l2", "V"), (30203, 398.7, "voltage.l2_l3", "V"),
    (30205, 401.3, "voltage.l3_l1", "V"), (30207, 399.7, "voltage.ll_avg", "V"),
    (30225, 0.85, "current.n", "A"), (30343, 12358.1, "energy.total_kwh", "kWh"),
    (30345, 465.6, "energy.reactive_total_kvarh", "kvarh"),
]

SDM120_TABLE = [   # Eastron single-phase input register table (SDM120 column)
    (30001, 229.5, "voltage.l1", "V"), (30007, 3.42, "current.l1", "A"),
    (30013, 760.25, "power.total_w", "W"), (30019, 784.5, "apparent_power.total_va", "VA"),
    (30025, -55.0, "reactive_power.total_var", "var"), (30031, 0.969, "power_factor", ""),
    (30071, 49.98, "frequency_hz", "Hz"), (30073, 842.37, "energy.import_kwh", "kWh"),
    (30075, 0.0, "energy.export_kwh", "kWh"), (30343, 842.37, "energy.total_kwh", "kWh"),
    (30345, 61.2, "energy.reactive_total_kvarh", "kvarh"),
]


def iem_fill(image, unit):
    """iEM3x50 manual (DOCA0005EN): holding registers, "Register Address" = wire address + 1;
    float32 values in A, V, kW; Total Active Energy Import at 3204 as Int64 Wh."""
    floats = {3000: 10.5, 3002: 11.25, 3004: 9.75, 3010: 10.5,           # I1-I3, I avg
              3020: 400.1, 3022: 399.8, 3024: 401.2, 3026: 400.4,       # V L-L, avg
              3028: 230.9, 3030: 231.2, 3032: 229.7, 3036: 230.6,       # V L-N, avg
              3054: 2.345, 3056: 2.5, 3058: 2.125, 3060: 6.97,          # P1-P3, Ptot in kW
              3084: 0.92, 3110: 50.02}                                  # PF, frequency
    for register, value in floats.items():
        image.put_value(unit, "holding", register - 1, "float32", value)
    image.put_value(unit, "holding", 3204 - 1, "int64", 12_345_678)       # Wh


IEM_EXPECTED = {
    "current.l1": (10.5, "A"), "current.l2": (11.25, "A"), "current.l3": (9.75, "A"),
    "current.avg": (10.5, "A"),
    "voltage.l1_l2": (400.1, "V"), "voltage.l2_l3": (399.8, "V"), "voltage.l3_l1": (401.2, "V"),
    "voltage.ll_avg": (400.4, "V"),
    "voltage.l1": (230.9, "V"), "voltage.l2": (231.2, "V"), "voltage.l3": (229.7, "V"),
    "voltage.ln_avg": (230.6, "V"),
    "power.l1_w": (2345.0, "W"), "power.l2_w": (2500.0, "W"), "power.l3_w": (2125.0, "W"),
    "power.total_w": (6970.0, "W"),
    "power_factor.encoded": (0.92, ""), "frequency_hz": (50.02, "Hz"),
    "energy.import_kwh": (12345.678, "kWh"),
}


def apc_fill(image, unit):
    """APC Smart-UPS Modbus map: 0-based holding registers, big-endian, fixed point raw/2^n."""
    # UPSStatus_BF (uint32 at 0-1): StateOnBattery (bit 2) and Overload (bit 21).
    image.put_value(unit, "holding", 0, "uint32", 1 << 2 | 1 << 21)
    image.set_bit(unit, "holding", 18, 1)                 # SimpleSignaling: ShutdownImminent
    image.set_bit(unit, "holding", 22, 2)                 # BatterySystemError: NeedsReplacement
    image.put_value(unit, "holding", 128, "uint32", 1830)         # RunTimeRemaining, s
    image.put(unit, "holding", 130, [int(87.5 * 2**9)])           # StateOfCharge_Pct
    image.put_value(unit, "holding", 131, "int16", int(27.25 * 2**5))    # battery V
    image.put_value(unit, "holding", 135, "int16", int(-2.5 * 2**7))     # battery °C
    image.put(unit, "holding", 136, [int(42.5 * 2**8)])           # real power %
    image.put(unit, "holding", 138, [int(47.25 * 2**8)])          # apparent power %
    image.put(unit, "holding", 140, [int(3.25 * 2**5)])           # output A
    image.put(unit, "holding", 142, [int(230.0 * 2**6)])          # output V
    image.put(unit, "holding", 144, [int(50.0 * 2**7)])           # output Hz
    image.put(unit, "holding", 151, [0])                          # input V: mains is off
    image.put_value(unit, "holding", 532, "string", "Smart-UPS 1500", length=16)
    image.put(unit, "holding", 588, [1500, 1000])                 # VA and W ratings


APC_EXPECTED = {
    "on_battery": (True, ""), "fault": (False, ""), "output.overload": (True, ""),
    "battery.low": (True, ""), "replace_battery": (True, ""),
    "battery.runtime_s": (1830, "s"), "battery.charge_pct": (87.5, "%"),
    "battery.voltage": (27.25, "V"), "battery.temperature_c": (-2.5, "°C"),
    "output.load_pct": (42.5, "%"), "output.apparent_load_pct": (47.25, "%"),
    "output.current": (3.25, "A"), "output.voltage": (230.0, "V"),
    "output.frequency": (50.0, "Hz"), "input.voltage": (0.0, "V"),
    "model": ("Smart-UPS 1500", ""),
    "output.apparent_power_rating_va": (1500, "VA"), "output.power_rating_w": (1000, "W"),
}

DOCUMENTED = [
    Documented("eastron-sdm630", 11, *eastron(SDM630_TABLE)),
    Documented("eastron-sdm120", 12, *eastron(SDM120_TABLE)),
    Documented("schneider-iem3x50", 13, iem_fill, IEM_EXPECTED),
    Documented("apc-smart-ups", 14, apc_fill, APC_EXPECTED),
]


@pytest.fixture(scope="module")
def documented_server():
    """One server on 127.0.0.1 holding every documented device, each on its own unit id."""
    image = sim_registers.RegisterImage()
    for doc in DOCUMENTED:
        doc.fill(image, doc.unit)
    server = sim_registers.ImageServer(image, port=free_port())
    server.start()
    wait_port(server.port)
    yield server
    server.stop()


def profile_device(port: int, profile: str, *, unit_id: int = 1, extra: str = "",
                   registers: str = "") -> str:
    return modbus_device(port=port, name="dev", unit_id=unit_id, registers=registers,
                         extra=f'profile = "{profile}"\n{extra}')


def poll(devices_toml: str, polls: int = 1):
    """The samples of each poll of the (first) device, and its read plan."""
    device = device_from_toml(devices_toml)

    async def body():
        pool = BusPool()
        source = ModbusSource(device, pool)
        try:
            return [await source.read() for _ in range(polls)], source.plan
        finally:
            await source.close()

    return run(body())


def problems_of(devices_toml: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_from_toml(devices_toml)
    return info.value.problems


# -- each profile against its document -------------------------------------------------------

@pytest.mark.parametrize("doc", DOCUMENTED, ids=[d.profile for d in DOCUMENTED])
def test_a_profile_reads_its_documented_register_image_under_the_common_names(
        documented_server, doc):
    documented_server.clear_requests()
    (samples,), plan = poll(profile_device(documented_server.port, doc.profile,
                                           unit_id=doc.unit))
    assert by_metric(samples) == doc.expected
    assert documented_server.request_count(unit=doc.unit) == len(plan) <= doc.max_requests


def test_the_sdm630_profile_reads_all_its_values_in_three_requests_per_poll(documented_server):
    documented_server.clear_requests()
    polls, _ = poll(profile_device(documented_server.port, "eastron-sdm630", unit_id=11), 3)
    assert [len(samples) for samples in polls] == [len(SDM630_TABLE)] * 3
    reads = [(r.table, r.address, r.count) for r in documented_server.requests]
    assert reads == [("input", 0, 80), ("input", 200, 26), ("input", 342, 4)] * 3


def test_generic_ups_reads_the_simulated_ups_under_the_common_names(modbus_server):
    device = profile_device(modbus_server.port, "generic-ups", unit_id=1)
    (online,), _ = poll(device)
    assert by_metric(online) == {
        "input.voltage": (127.0, "V"), "input.frequency": (60.0, "Hz"),
        "output.voltage": (127.0, "V"), "output.load_pct": (35, "%"),
        "battery.charge_pct": (100, "%"), "battery.voltage": (27.6, "V"),
        "battery.runtime_s": (42 * 60, "s"), "battery.temperature_c": (25.0, "°C"),
        "on_battery": (False, ""), "battery.low": (False, ""), "output.overload": (False, ""),
        "replace_battery": (False, ""), "battery.charging": (False, ""),
        "mode": ("online", ""), "on_battery.total_s": (90061, "s"),
        "model": ("SIM-UPS 1500VA", ""),
    }
    modbus_server.set_outage(True)
    modbus_server.set_value("ups", "status", 1 << 0 | 1 << 3)      # on battery, replace it
    (outage,), _ = poll(device)
    got = by_metric(outage)
    assert (got["on_battery"], got["replace_battery"], got["input.voltage"], got["mode"]) == \
        ((True, ""), (True, ""), (0.0, "V"), ("on battery", ""))


def test_the_sdm120_profile_reads_the_simulators_meter(modbus_server):
    # The simulator's unit 2 is laid out like an SDM120 (scripts/sim_ups.py).
    (samples,), _ = poll(profile_device(modbus_server.port, "eastron-sdm120", unit_id=2))
    got = by_metric(samples)
    assert {k: got[k] for k in ("voltage.l1", "current.l1", "power.total_w", "power_factor",
                                "frequency_hz", "energy.total_kwh")} == {
        "voltage.l1": (127.0, "V"), "current.l1": (4.25, "A"), "power.total_w": (513.25, "W"),
        "power_factor": (0.95, ""), "frequency_hz": (60.0, "Hz"),
        "energy.total_kwh": (1234.5, "kWh")}


# -- shipped profiles are complete and documented --------------------------------------------

def common_names() -> dict[str, str]:
    """{metric: unit} from the tables of docs/modbus-profiles.md's "Common metric names"."""
    text = (ROOT / "docs" / "modbus-profiles.md").read_text(encoding="utf-8")
    section = text.split("## Common metric names", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9_.]+)` \|([^|]*)\|", section, flags=re.M)
    return {name: unit.strip() for name, unit in rows}


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_is_valid_cites_its_source_and_uses_only_common_names(name):
    settings = device_from_toml(profile_device(502, name)).settings
    info = settings.profile
    assert (info.name, info.shipped, info.kind in ("ups", "meter")) == (name, True, True)
    assert info.where == str(ROOT / "agent" / "profiles" / f"modbus-{name}.toml")
    assert info.source.title and info.source.version
    assert info.source.url.startswith("https://") or (ROOT / info.source.path).is_file()
    names = common_names()
    for spec in settings.registers:
        assert spec.name in names, f"{name}: {spec.name} is not in docs/modbus-profiles.md"
        assert spec.unit == names[spec.name], f"{name}: {spec.name} unit {spec.unit!r}"


def test_the_shipped_profiles_are_the_ones_listed_and_share_the_folder_with_snmp_ones():
    assert list(modbus_profiles.available()) == SHIPPED
    files = sorted(p.name for p in (ROOT / "agent" / "profiles").glob("*.toml"))
    assert [f for f in files if not f.startswith("snmp-")] == \
        [f"modbus-{n}.toml" for n in SHIPPED]


# -- a clinic's own profiles -----------------------------------------------------------------

CUSTOM_SDM630 = '''
description = "SDM630 as wired at this clinic: L1 only"
kind = "meter"
address_base = "modicon"
[[registers]]
name = "voltage.l1"
address = 30003          # phases swapped in the cabinet
type = "float32"
unit = "V"
[source]
title = "clinic wiring notes"
version = "2026-03"
url = "https://example.org/wiring"
'''


def test_a_profile_in_the_devices_profiles_dir_wins_over_the_shipped_one(documented_server,
                                                                         tmp_path):
    (tmp_path / "modbus-eastron-sdm630.toml").write_text(CUSTOM_SDM630, encoding="utf-8")
    device = profile_device(documented_server.port, "eastron-sdm630", unit_id=11,
                            extra=f'profiles_dir = "{tmp_path}"')
    info = device_from_toml(device).settings.profile
    assert (info.where, info.shipped) == (str(tmp_path / "modbus-eastron-sdm630.toml"), False)
    (samples,), _ = poll(device)
    assert by_metric(samples) == {"voltage.l1": (229.8, "V")}      # 30003 of the image


def test_profiles_dir_only_changes_the_devices_that_name_it(tmp_path):
    (tmp_path / "modbus-eastron-sdm630.toml").write_text(CUSTOM_SDM630, encoding="utf-8")
    cfg = config_from_toml(profile_device(502, "eastron-sdm630",
                                          extra=f'profiles_dir = "{tmp_path}"')
                           + profile_device(502, "eastron-sdm630").replace('"dev"', '"dev2"'))
    first, second = (d.settings.profile for d in cfg.devices)
    assert (first.shipped, second.shipped) == (False, True)


def test_a_device_adds_registers_to_its_profile_and_replaces_them_by_name(documented_server):
    own = '''
[[devices.registers]]
name = "voltage.l1"          # replaces the profile's: read L1 as an average instead
address = 30043
type = "float32"
unit = "V"
[[devices.registers]]
name = "phase_angle.l1"      # not in the profile
address = 30037
type = "float32"
unit = "°"
'''
    device = profile_device(documented_server.port, "eastron-sdm630", unit_id=11,
                            registers=own, extra="max_registers_per_read = 40")
    settings = device_from_toml(device).settings
    assert settings.max_registers_per_read == 40                    # the device's own wins
    assert [s.name for s in settings.registers].count("voltage.l1") == 1
    (samples,), _ = poll(device)
    got = by_metric(samples)
    assert got["voltage.l1"] == (230.43, "V")
    assert got["phase_angle.l1"] == (0.0, "°")
    assert len(got) == len(SDM630_TABLE) + 1


# -- what a technician is told ---------------------------------------------------------------

def test_an_unknown_profile_names_the_key_and_lists_the_available_ones():
    assert problems_of(profile_device(502, "eastron-sdm999")) == [
        'devices[0].profile: no profile named "eastron-sdm999"; did you mean "eastron-sdm630"? '
        'Available (shipped with the agent): ' + ", ".join(SHIPPED)]


def test_an_unknown_profile_also_lists_the_clinics_own(tmp_path):
    (tmp_path / "modbus-my-ups.toml").write_text(CUSTOM_SDM630, encoding="utf-8")
    (tmp_path / "snmp-my-router.toml").write_text("", encoding="utf-8")   # not a Modbus one
    problems = problems_of(profile_device(502, "myups", extra=f'profiles_dir = "{tmp_path}"'))
    assert problems == [f'devices[0].profile: no profile named "myups"; did you mean "my-ups"? '
                        f'Available (shipped with the agent or in {tmp_path}): ' + ", ".join(
                            sorted(SHIPPED + ["my-ups"]))]


def test_problems_inside_a_profile_file_name_the_device_the_profile_and_the_file(tmp_path):
    broken = CUSTOM_SDM630.replace('type = "float32"', 'type = "float33"').replace(
        '[source]\ntitle = "clinic wiring notes"\n', '[source]\n')
    (tmp_path / "modbus-mine.toml").write_text(broken, encoding="utf-8")
    where = f'devices[0].profile "mine" ({tmp_path / "modbus-mine.toml"})'
    assert problems_of(profile_device(502, "mine", extra=f'profiles_dir = "{tmp_path}"')) == [
        f"{where}: source.title: is required but missing",
        f'{where}: registers[0].type: expected one of "int16", "uint16", "int32", "uint32", '
        f'"int64", "uint64", "float32", "float64", "string", "bit", got "float33"; did you mean "float32"?',
    ]


def test_a_profile_that_is_not_toml_is_reported_with_its_file(tmp_path):
    (tmp_path / "modbus-mine.toml").write_text("registers = [\n", encoding="utf-8")
    (problem,) = problems_of(profile_device(502, "mine", extra=f'profiles_dir = "{tmp_path}"'))
    assert problem.startswith(f'devices[0].profile: "mine" ({tmp_path / "modbus-mine.toml"}) '
                              f'is not valid TOML: ')


def test_a_profiles_dir_that_does_not_exist_or_is_relative_is_reported(tmp_path):
    missing = tmp_path / "nope"
    assert problems_of(profile_device(502, "generic-ups", extra=f'profiles_dir = "{missing}"')) \
        == [f"devices[0].profiles_dir: {missing} is not a directory (create it, or leave "
            f"profiles_dir out)"]
    assert problems_of(profile_device(502, "generic-ups", extra='profiles_dir = "profiles"')) \
        == ['devices[0].profiles_dir: expected an absolute directory path, e.g. '
            '"/etc/clinic-agent/profiles", got "profiles"']


def test_a_device_without_profile_or_registers_is_still_told_registers_are_missing():
    device = modbus_device(port=502, registers="")
    assert problems_of(device) == ["devices[0].registers: is required but missing (add at least "
                                   "one [[devices.registers]] entry)"]


# -- the benchmark ---------------------------------------------------------------------------

def test_the_benchmark_reads_every_sdm630_value_in_three_requests_over_tcp_and_rtu():
    require_binary("socat")
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_modbus.py"),
                          "--polls", "5", "--rtu-polls", "2"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert "Profile `eastron-sdm630`: 37 values in 3 reads" in out
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| Modbus")]
    assert [(row[0], row[2]) for row in rows] == [
        ("| Modbus TCP, 127.0.0.1", "3"), ("| Modbus RTU, socat pty pair, 9600 8N1", "3"),
        ("| Modbus RTU on a real 9600 8N1 line", "3")]
    assert "259 bytes: 270 ms on the wire" in rows[2][3]
