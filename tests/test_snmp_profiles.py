"""SNMP profiles as data, interface selection, the WAN, counter discontinuities, skipped metrics."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from agent.config import ConfigError, parse_config
from agent.config.snmp import InterfaceSelector
from agent.config.snmp_profiles import BUILTIN_DIR, DEFAULT_PROFILES
from agent.sources import snmp_client as sc
from agent.sources.snmp import SKIPPED_METRIC, SnmpSource, format_skipped
from agent.sources.snmp_client import VarBind
from fixtures.snmp import IF_X_TABLE, FakeAgent, FakeClock, FakeInterface, router_values
from helpers import run


def config(**table):
    entry = {"name": "router", "kind": "snmp", "host": "127.0.0.1", "community": "clinic-ro",
             **table}
    return parse_config({"site_id": "test-site", "mqtt": {"host": "127.0.0.1"},
                         "devices": [entry]})


def problems(**table) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config(**table)
    return caught.value.problems


def make_source(agent: FakeAgent, clock: FakeClock, **table) -> SnmpSource:
    return SnmpSource(config(**table).devices[0], client=agent, clock=clock)


def poll(source: SnmpSource, clock: FakeClock, n: int = 1) -> list[dict]:
    async def polls():
        out = []
        for _ in range(n):
            out.append({s.metric: s.value for s in await source.read()})
            clock.advance(10)
        return out
    return run(polls())


def put(values: dict, oid: tuple, kind: str, value) -> None:
    values[oid] = VarBind(oid, kind, value)


# -- profiles as data -------------------------------------------------------------------------

def test_routers_get_system_interfaces_and_host_resources_by_default():
    settings = config().devices[0].settings
    assert settings.profiles.names == DEFAULT_PROFILES
    assert settings.profiles.interfaces is not None
    assert {s.metric for s in settings.profiles.scalars} >= {"system.uptime_s", "system.name"}
    assert {t.prefix for t in settings.profiles.tables} == {"cpu", "memory"}


def test_every_shipped_profile_parses():
    names = sorted(p.name[len("snmp-"):-len(".toml")] for p in BUILTIN_DIR.glob("snmp-*.toml"))
    assert {"system", "if-mib", "host-resources", "ups-mib", "teltonika"} <= set(names)
    settings = config(profiles=names).devices[0].settings
    assert settings.profiles.names == tuple(names)


def test_unknown_profile_names_the_available_ones():
    [problem] = problems(profiles=["system", "mikrotik-lte"])
    assert problem.startswith('devices[0].profiles[1]: no SNMP profile "mikrotik-lte"')
    assert "if-mib" in problem and "ups-mib" in problem


def test_a_vendor_is_added_by_writing_a_profile_file(tmp_path):
    (tmp_path / "snmp-acme-lte.toml").write_text('''
description = "ACME LTE router"
[[scalars]]
metric = "cellular.rsrp_dbm"
oid = "1.3.6.1.4.1.99999.1.1"
unit = "dBm"
''')
    values = router_values([FakeInterface(1, "ether1")], uptime_ticks=100)
    put(values, (1, 3, 6, 1, 4, 1, 99999, 1, 1, 0), sc.INTEGER, -101)
    clock = FakeClock()
    source = make_source(FakeAgent(values), clock, profiles=["system", "if-mib", "acme-lte"],
                         profiles_dir=str(tmp_path))

    [samples] = poll(source, clock)

    assert samples["cellular.rsrp_dbm"] == -101
    assert samples["if.ether1.oper_up"] is True


def test_a_profiles_dir_file_replaces_the_shipped_one_of_the_same_name(tmp_path):
    (tmp_path / "snmp-system.toml").write_text('''
[[scalars]]
metric = "system.contact"
oid = "1.3.6.1.2.1.1.4"
type = "string"
''')
    names = {s.metric for s in config(profiles=["system"], profiles_dir=str(tmp_path))
             .devices[0].settings.profiles.scalars}
    assert names == {"system.contact"}


def test_a_broken_profile_is_a_config_problem_with_file_and_key(tmp_path):
    (tmp_path / "snmp-bad.toml").write_text('''
[[tables]]
prefix = "ups"
oid = "1.3.6.1.2.1.33.1.4.4.1"
columns = { load = 5 }
  [[tables.metrics]]
  metric = "load_pct"
  value = "__import__('os').system('true')"
[[scalars]]
metric = "Bad Name"
oid = "1.3.6.x"
''')
    found = problems(profiles=["bad"], profiles_dir=str(tmp_path))
    path = tmp_path / "snmp-bad.toml"
    assert any(p.startswith(f"devices[0].profiles[0]: {path}: tables[0].metrics[0].value: only "
                            "column names, numbers and + - * / are allowed") for p in found), found
    assert any("scalars[0].metric: expected a dotted lowercase metric name" in p for p in found)
    assert any("scalars[0].oid: expected a numeric OID" in p for p in found)


def test_profiles_dir_must_be_an_absolute_existing_folder(tmp_path):
    assert problems(profiles_dir="profiles") == [
        'devices[0].profiles_dir: expected an absolute path (the agent does not run from the '
        'config\'s folder), got "profiles"']
    assert problems(profiles_dir=str(tmp_path / "nope"))[0].endswith("is not a folder")


# -- interface selection ----------------------------------------------------------------------

def test_selectors_by_type_name_number_alias_and_regex():
    ppp = InterfaceSelector.parse("type:ppp")
    assert ppp.matches("pppoe-out1", if_type=23) and not ppp.matches("ether1", if_type=6)
    assert InterfaceSelector.parse("type:ethernetCsmacd").matches("x", if_type=6)
    assert InterfaceSelector.parse("type:6").matches("x", if_type=6)
    alias = InterfaceSelector.parse("alias:Uplink")
    assert alias.matches("ether7", alias="uplink") and not alias.matches("uplink", alias="")
    assert InterfaceSelector.parse("re:^wlan").matches("wlan2")
    [problem] = problems(interfaces=["type:token-ring"])
    assert problem.startswith("devices[0].interfaces[0]: unknown ifType 'token-ring'")


def test_interfaces_chosen_by_type():
    values = router_values([FakeInterface(1, "ether1"), FakeInterface(2, "ether2")],
                           uptime_ticks=100)
    values[(1, 3, 6, 1, 2, 1, 2, 2, 1, 3, 2)] = VarBind((1, 3, 6, 1, 2, 1, 2, 2, 1, 3, 2),
                                                        sc.INTEGER, 23)
    clock = FakeClock()
    [samples] = poll(make_source(FakeAgent(values), clock, interfaces=["type:ppp"],
                                 wan_interface="none"), clock)
    assert {m.split(".")[1] for m in samples if m.startswith("if.")} == {"ether2"}


# -- the WAN ----------------------------------------------------------------------------------

def _with_default_route(values: dict, if_index: int) -> dict:
    # ipCidrRouteIfIndex.0.0.0.0.0.0.0.0.0.<next hop 192.0.2.1>
    oid = (1, 3, 6, 1, 2, 1, 4, 24, 4, 1, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1)
    put(values, oid, sc.INTEGER, if_index)
    put(values, oid[:-5] + (24, 0, 0, 0, 192, 0, 2, 0, 0), sc.INTEGER, 3)   # another route
    return values


def test_the_wan_is_the_interface_of_the_default_route_before_any_name():
    ports = [FakeInterface(1, "wan"), FakeInterface(2, "pppoe-out1"), FakeInterface(3, "sfp1")]
    clock = FakeClock()
    source = make_source(FakeAgent(_with_default_route(router_values(ports, uptime_ticks=1), 3)),
                         clock)
    [samples] = poll(source, clock)
    assert samples["if.wan.name"] == "sfp1"
    assert "if.wan_1.oper_up" in samples          # the port named "wan" keeps a key of its own


def test_without_routes_a_ppp_interface_then_a_wan_like_name():
    ports = [FakeInterface(1, "ether1"), FakeInterface(2, "WAN1", oper_up=False),
             FakeInterface(3, "WAN2")]
    clock = FakeClock()
    [samples] = poll(make_source(FakeAgent(router_values(ports, uptime_ticks=1)), clock), clock)
    assert samples["if.wan.name"] == "WAN2"       # the one that is up

    values = router_values(ports, uptime_ticks=1)
    put(values, (1, 3, 6, 1, 2, 1, 2, 2, 1, 3, 1), sc.INTEGER, 23)     # ether1 is ppp
    [samples] = poll(make_source(FakeAgent(values), clock), clock)
    assert samples["if.wan.name"] == "ether1"


def test_a_vanished_ppp_wan_is_reported_down_not_replaced(caplog):
    ports = [FakeInterface(1, "ether1"), FakeInterface(2, "ether2-wan"), FakeInterface(7, "ppp0")]
    values = router_values(ports, uptime_ticks=1_000)
    put(values, (1, 3, 6, 1, 2, 1, 2, 2, 1, 3, 7), sc.INTEGER, 23)
    agent = FakeAgent(values)
    clock = FakeClock()
    source = make_source(agent, clock)
    [before] = poll(source, clock)
    agent.set(router_values(ports[:2], uptime_ticks=2_000))      # the PPP session dropped

    with caplog.at_level(logging.WARNING):
        after, later = poll(source, clock, 2)

    assert before["if.wan.name"] == "ppp0" and before["if.wan.oper_up"] is True
    for samples in (after, later):
        assert samples["if.wan.name"] == "ppp0" and samples["if.wan.oper_up"] is False
        assert "if.ether2-wan.oper_up" in samples
    assert sum("the WAN ppp0 is gone" in r.getMessage() for r in caplog.records) == 1


def test_wan_none_reports_no_wan():
    clock = FakeClock()
    [samples] = poll(make_source(FakeAgent(router_values([FakeInterface(1, "pppoe-out1")],
                                                         uptime_ticks=1)),
                                 clock, wan_interface="none"), clock)
    assert not any(m.startswith("if.wan.") for m in samples)
    assert samples["if.pppoe-out1.oper_up"] is True


def test_snmpd_reports_the_hosts_default_route_interface_as_wan(snmpd):
    routes = Path("/proc/net/route").read_text().splitlines()[1:]
    default = next((line.split()[0] for line in routes if line.split()[1] == "00000000"), None)
    source = SnmpSource(config(**{**snmpd.device_table(), "timeout_s": 2}).devices[0])

    async def scenario():
        try:
            first = {s.metric: s.value for s in await source.read()}
            counts = [source.last_poll_requests]
            second = {s.metric: s.value for s in await source.read()}
            return first, second, counts + [source.last_poll_requests]
        finally:
            await source.close()
    first, second, counts = run(scenario())

    if default is None:
        assert "if.wan.name" not in first
    else:
        assert first["if.wan.name"] == default
    # HOST-RESOURCES from net-snmp: memory, read cell by cell after the first poll.
    assert 0 < first["memory.used_pct"] <= 100
    assert second["memory.total_bytes"] == first["memory.total_bytes"]
    assert counts[1] <= 2, counts
    hosts_interfaces = len(socket.if_nameindex())
    if hosts_interfaces <= 8:
        assert counts[1] == 1, counts


# -- counters ---------------------------------------------------------------------------------

def _with_discontinuity(values: dict, ticks: dict[int, int]) -> dict:
    for index, t in ticks.items():
        put(values, IF_X_TABLE + (19, index), sc.TIMETICKS, t)
    return values


def test_a_counter_discontinuity_gives_no_rate_instead_of_a_spike():
    port = FakeInterface(1, "ether1", in_octets=1_000)
    agent = FakeAgent(_with_discontinuity(router_values([port], uptime_ticks=10_000), {1: 0}))
    clock = FakeClock()
    source = make_source(agent, clock, wan_interface="none")

    def step(octets: int, uptime: int, discontinuity: int) -> None:
        port.in_octets = octets
        agent.set(_with_discontinuity(router_values([port], uptime_ticks=uptime),
                                      {1: discontinuity}))
    first, = poll(source, clock)
    step(11_000, 11_000, 0)
    second, = poll(source, clock)
    # The interface was re-created (a PPP session coming back): its counters started again and
    # already passed the old value. Without ifCounterDiscontinuityTime this is a huge "rate".
    step(900_000_000, 12_000, 11_500)
    third, = poll(source, clock)
    step(900_125_000, 13_000, 11_500)
    fourth, = poll(source, clock)

    assert "if.ether1.in_bps" not in first
    assert second["if.ether1.in_bps"] == pytest.approx(10_000 * 8 / 10)
    assert "if.ether1.in_bps" not in third
    assert "system.rebooted" not in third
    assert fourth["if.ether1.in_bps"] == pytest.approx(125_000 * 8 / 10)


def test_no_discontinuity_column_means_it_is_not_asked_for_again():
    agent = FakeAgent(router_values([FakeInterface(1, "ether1")], uptime_ticks=100))
    clock = FakeClock()
    source = make_source(agent, clock)
    poll(source, clock, 2)
    agent.log.clear()
    walked = []
    original = agent.get_bulk

    async def spy(non_repeaters, repeaters, reps):
        walked.extend(repeaters)
        return await original(non_repeaters, repeaters, reps)
    agent.get_bulk = spy
    poll(source, clock)
    assert not any(oid[:11] == IF_X_TABLE + (19,) for oid in walked)


# -- skipped metrics --------------------------------------------------------------------------

def test_skipped_metrics_are_reported_once_and_when_they_change(caplog):
    ports = [FakeInterface(1, "ether1"), FakeInterface(2, "ether2")]
    values = router_values(ports, uptime_ticks=100)
    status = (1, 3, 6, 1, 2, 1, 2, 2, 1, 8, 2)
    put(values, status, sc.NULL, None)
    agent = FakeAgent(values)
    clock = FakeClock()
    source = make_source(agent, clock, profiles=["system", "if-mib"], wan_interface="none")

    with caplog.at_level(logging.INFO):
        first, second = poll(source, clock, 2)
        agent.update({status: VarBind(status, sc.INTEGER, 1)})
        third, fourth = poll(source, clock, 2)

    assert first[SKIPPED_METRIC] == ("if.ether2.oper_up: the device sent NULL; "
                                     "system.location: not offered by the device")
    assert SKIPPED_METRIC not in second
    assert third[SKIPPED_METRIC] == "system.location: not offered by the device"
    assert SKIPPED_METRIC not in fourth
    warnings = [r for r in caplog.records if "skipping if.ether2.oper_up" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def test_a_long_skipped_list_is_cut_with_a_count():
    text = format_skipped({f"if.port{i}.speed_bps": "the device sent NULL" for i in range(200)},
                          limit=200)
    assert len(text) < 260 and text.endswith("more")
