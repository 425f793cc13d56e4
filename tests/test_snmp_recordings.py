"""The SNMP source against real devices' recordings, served by snmpsim on loopback.

Each recording (../shared/testdata/snmprec, see its README) is polled three times through the real
pysnmp client, with the profiles such a device would be configured with. Everything it reported
is compared with tests/golden/snmp-recordings/<recording>.json (regenerate with
``SNMP_GOLDEN_UPDATE=1`` and review the diff); the tests below spell out what matters for each.
Recorded values do not move, so every rate is 0.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from agent.config import parse_config
from agent.sources.snmp import SKIPPED_METRIC, SnmpSource
from fixtures.snmpsim import snmpsim  # noqa: F401 - the fixture
from helpers import run

GOLDEN = Path(__file__).parent / "golden" / "snmp-recordings"
ROUTER = ["system", "if-mib", "host-resources"]
UPS = ["system", "if-mib", "ups-mib"]
CASES = {
    "routeros": {"profiles": ROUTER},
    "draytek": {"profiles": ROUTER},
    "rutos-2xx": {"profiles": [*ROUTER, "teltonika"]},
    "deltaups": {"profiles": UPS},
    "abbups_abbups": {"profiles": UPS},
}
POLLS = 3


def poll_recording(sim, community: str, caplog=None, **settings) -> list[dict]:
    """Poll a recording ``POLLS`` times: requests, samples and (with ``caplog``) warnings."""
    table = sim.device_table(community, name=community, **settings)
    config = parse_config({"site_id": "golden", "mqtt": {"host": "127.0.0.1"},
                           "devices": [table]})
    source = SnmpSource(config.devices[0])

    async def polls_of_recording():
        polls = []
        try:
            for _ in range(POLLS):
                if caplog is not None:
                    caplog.clear()
                samples = await source.read()
                polls.append({
                    "requests": source.last_poll_requests,
                    "samples": [[s.metric, s.value, s.unit] for s in samples],
                    "warnings": [r.getMessage() for r in (caplog.records if caplog else [])
                                 if r.levelno >= logging.WARNING and r.name.startswith("agent.")],
                })
        finally:
            await source.close()
        return polls
    if caplog is None:
        return run(polls_of_recording(), timeout=120)
    with caplog.at_level(logging.INFO, logger="agent.sources"):
        return run(polls_of_recording(), timeout=120)


@pytest.fixture(scope="module")
def recorded(snmpsim):  # noqa: F811 - pytest fixture injection
    """{recording: its polls}, each recording polled once for the whole module."""
    return {name: poll_recording(snmpsim, name, **settings) for name, settings in CASES.items()}


def metrics(poll: dict) -> dict:
    return {m: v for m, v, _ in poll["samples"]}


@pytest.mark.parametrize("name", list(CASES))
def test_recording_matches_golden_file(snmpsim, caplog, name):  # noqa: F811
    got = {"recording": name, "settings": CASES[name],
           "polls": poll_recording(snmpsim, name, caplog, **CASES[name])}
    path = GOLDEN / f"{name}.json"
    if os.environ.get("SNMP_GOLDEN_UPDATE"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n")
    assert json.loads(json.dumps(got)) == json.loads(path.read_text())


def test_routeros_wan_is_pppoe_and_rates_come_from_64_bit_counters(recorded):
    first, second, third = (metrics(p) for p in recorded["routeros"])
    assert first["if.wan.name"] == "pppoe-out1"          # ifType ppp, not the port named "WAN"
    assert first["if.wan.oper_up"] is True
    assert "if.wan_3.oper_up" in first                    # that port keeps its own key
    # No ifSpeed in this agent: ifHighSpeed from the second poll on (10 Mbit/s PPPoE).
    assert "if.wan.speed_bps" not in first and second["if.wan.speed_bps"] == 10e6
    # Only ifHC* counters exist: rates from the second poll, never a 32-bit fallback.
    assert second["if.wan.in_bps"] == 0.0 and third["if.wan.out_bps"] == 0.0
    assert first["cpu.load_pct"] == 21
    assert first["memory.total_bytes"] == 65536 * 1024
    assert first["memory.used_pct"] == pytest.approx(100 * 27196 / 65536, abs=0.05)
    assert "in32" not in json.dumps(recorded["routeros"])


def test_draytek_32_bit_counters_index_gaps_and_empty_descriptions(recorded):
    first, second, third = (metrics(p) for p in recorded["draytek"])
    keys = {m.split(".")[1] for m in first if m.startswith("if.")}
    # ifIndex 1, 4..10: no rows for 2 and 3; rows 8-10 have an empty ifDescr (and no ifName).
    assert {"lan", "wan", "wan2", "wan3", "resrved", "if8", "if9", "if10"} <= keys
    assert first["if.wan.name"] == "WAN1"                  # named like a WAN and up
    assert first["if.wan.speed_bps"] == 100e6
    # No ifXTable: the first poll learns it, the second reads ifInOctets, the third has a rate.
    assert "if.wan.in_bps" not in first and "if.wan.in_bps" not in second
    assert third["if.wan.in_bps"] == 0.0
    assert "cpu.load_pct: not offered" in first[SKIPPED_METRIC]


def test_teltonika_lte_wan_signal_and_operator(recorded):
    first, second, _ = (metrics(p) for p in recorded["rutos-2xx"])
    assert first["if.wan.name"] == "wwan0"
    assert first["cellular.signal_dbm"] == -97               # a string in the vendor MIB
    assert first["cellular.operator"] == "Orange SK"
    assert first["cellular.network_type"] == "WCDMA"
    assert first["cellular.connected"] is True
    assert first["cellular.modem_temperature_c"] == 39.0
    assert first["memory.used_pct"] == pytest.approx(100 * 48304 / 61016, abs=0.05)
    assert second["if.wan.in_bps"] == 0.0                  # ifHC* only; no ifInOctets here


def test_delta_ups_nulls_missing_instance_and_nul_padded_names(recorded):
    first = metrics(recorded["deltaups"][0])
    assert first["manufacturer"] == "Minuteman"              # recorded without its .0
    assert first["battery.status"] == "normal"
    assert first["battery.charge_pct"] == 100
    assert first["battery.runtime_s"] == 22 * 60
    assert first["battery.voltage"] == 41.2
    assert first["on_battery"] is False and first["output.source"] == "normal"
    assert first["input.voltage"] == 121 and first["input.frequency"] == 59.9
    assert first["output.load_pct"] == 79 and first["output.power_w"] == 951
    assert "battery.current" not in first                    # NULL in the recording
    skipped = first[SKIPPED_METRIC]
    assert "battery.current: the device sent NULL" in skipped
    assert "bypass.frequency: the device sent NULL" in skipped
    assert "if.eth0.oper_up" in first and "if.lo.oper_up" in first    # NULs stripped
    # The skipped list is sent once, not every poll.
    assert all(SKIPPED_METRIC not in metrics(p) for p in recorded["deltaups"][1:])


def test_abb_three_phase_ups_without_system_uptime_or_name(recorded):
    first = metrics(recorded["abbups_abbups"][0])
    assert [first[f"input.l{n}.voltage"] for n in (1, 2, 3)] == [239, 239, 238]
    assert first["input.voltage"] == 238                     # the lowest phase
    assert [first[f"output.l{n}.load_pct"] for n in (1, 2, 3)] == [6, 6, 4]
    assert first["output.load_pct"] == 6                     # the most loaded phase
    assert first["output.l2.current"] == 0.8
    assert first["battery.runtime_s"] == 452 * 60
    assert first["battery.voltage"] == 434.8
    assert first["bypass.l1.voltage"] == 239
    assert "system.uptime_s" not in first and "system.name" not in first
    assert "system.uptime_s: not offered" in first[SKIPPED_METRIC]
