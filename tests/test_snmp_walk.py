"""How the SNMP source copes with agents: small buffers, broken ordering, changing interfaces, v1."""

from __future__ import annotations

import logging

import pytest

from agent.config import parse_config
from agent.errors import DeviceProtocolError, DeviceTimeout
from agent.sources import snmp_client as sc
from agent.sources.snmp import SnmpSource
from agent.sources.snmp_client import TooBig, VarBind
from fixtures.snmp import FakeAgent, FakeClock, FakeInterface, router_values
from helpers import run


def make_source(agent: FakeAgent, clock: FakeClock | None = None, **settings) -> SnmpSource:
    table = {"name": "router", "kind": "snmp", "host": "127.0.0.1", "community": "clinic-ro",
             "version": agent.version, **settings}
    config = parse_config({"site_id": "test-site", "mqtt": {"host": "127.0.0.1"}, "devices": [table]})
    return SnmpSource(config.devices[0], client=agent, clock=clock or FakeClock())


def metrics(samples) -> dict:
    return {s.metric: s.value for s in samples}


def poll(source: SnmpSource, n: int = 1, clock: FakeClock | None = None) -> list[dict]:
    async def polls():
        out = []
        for _ in range(n):
            out.append(metrics(await source.read()))
            if clock:
                clock.advance(10)
        return out
    return run(polls())


class SmallBufferAgent(FakeAgent):
    """Says tooBig when asked for more than ``limit`` values, as some embedded agents do."""

    limit = 30

    async def get_bulk(self, non_repeaters, repeaters, max_repetitions):
        if len(non_repeaters) + len(repeaters) * max_repetitions > self.limit:
            self._count("getbulk-toobig", 0)
            raise TooBig("tooBig")
        return await super().get_bulk(non_repeaters, repeaters, max_repetitions)


def test_too_big_answers_shrink_the_request_and_it_is_remembered():
    ports = [FakeInterface(i, f"ether{i}") for i in range(1, 11)]
    agent = SmallBufferAgent(router_values(ports, uptime_ticks=5_000))
    clock = FakeClock()
    source = make_source(agent, clock)

    [first] = poll(source, 1, clock)
    first_log, agent.log = agent.log, []
    [second] = poll(source, 1, clock)

    assert first["if.ether10.oper_up"] is True
    assert len([m for m in second if m.endswith(".in_bps")]) == 10
    assert any("toobig" in kind for kind, _ in first_log)
    # The second poll starts at the size that worked, so it is not refused again.
    assert agent.log and not any("toobig" in kind for kind, _ in agent.log)


class UnorderedAgent(FakeAgent):
    """Answers GETBULK rows with the same OIDs again (a known firmware bug)."""

    async def get_bulk(self, non_repeaters, repeaters, max_repetitions):
        answer = await super().get_bulk(non_repeaters, repeaters, 1)
        return answer + answer[len(non_repeaters):] * 3


def test_oids_out_of_order_end_the_walk_instead_of_looping(caplog):
    agent = UnorderedAgent(router_values([FakeInterface(1, "ether1")], uptime_ticks=5_000))
    source = make_source(agent)

    with caplog.at_level(logging.WARNING):
        [samples] = poll(source)
        poll(source)

    assert samples["if.ether1.oper_up"] is True
    assert source.last_poll_requests < 10
    out_of_order = [r for r in caplog.records if "out of order" in r.getMessage()]
    assert out_of_order and all("router:" in r.getMessage() for r in out_of_order)
    assert len(out_of_order) == len({r.getMessage() for r in out_of_order})   # once per column


def test_a_new_interface_is_named_in_the_poll_that_first_sees_it():
    ports = [FakeInterface(1, "ether1"), FakeInterface(2, "ether2")]
    agent = FakeAgent(router_values(ports, uptime_ticks=5_000))
    clock = FakeClock()
    source = make_source(agent, clock)
    poll(source, 2, clock)

    ports.append(FakeInterface(7, "sfp7", in_octets=10))
    agent.set(router_values(ports, uptime_ticks=7_000))
    [samples] = poll(source)

    assert samples["if.sfp7.oper_up"] is True
    assert "if.if7.oper_up" not in samples


def test_selectors_that_match_nothing_are_logged_once_with_the_choices(caplog):
    agent = FakeAgent(router_values([FakeInterface(1, "ether1"), FakeInterface(2, "wlan1")],
                                    uptime_ticks=5_000))
    source = make_source(agent, interfaces=["ether9"], wan_interface="pppoe-out1")

    with caplog.at_level(logging.WARNING):
        [samples] = poll(source)

    messages = [r.getMessage() for r in caplog.records]
    assert any("interfaces[0] 'ether9' matches none" in m and "ether1, wlan1" in m for m in messages)
    assert any("wan_interface 'pppoe-out1' matches none" in m for m in messages)
    assert not any(m.startswith("if.") for m in samples)
    assert samples["system.name"] == "fake-router"


def test_v1_walks_with_getnext_and_survives_no_such_name_at_the_end_of_the_mib():
    # Nothing after the IF-MIB: the v1 agent answers the last column's GETNEXT with noSuchName.
    values = router_values([FakeInterface(1, "ether1", in_octets=1_000)], uptime_ticks=5_000)
    values = {oid: vb for oid, vb in values.items() if oid[:9] != (1, 3, 6, 1, 2, 1, 31, 1, 1)}
    agent = FakeAgent(values, version="1")
    clock = FakeClock()
    source = make_source(agent, clock, interfaces=["ether1"])

    first, second = poll(source, 2, clock)

    assert first["if.ether1.oper_up"] is True
    assert "if.ether1.in_bps" in second
    assert all(kind == "getnext" for kind, _ in agent.log)


def test_a_timeout_keeps_the_counters_so_the_next_rate_spans_the_gap():
    port = FakeInterface(1, "ether1", in_octets=0)
    agent = FakeAgent(router_values([port], uptime_ticks=5_000))
    clock = FakeClock()
    source = make_source(agent, clock)
    poll(source)

    clock.advance(10)
    agent.fail_with = DeviceTimeout("timeout")
    with pytest.raises(DeviceTimeout):
        poll(source)

    clock.advance(10)
    agent.fail_with = None
    port.in_octets = 50_000
    agent.set(router_values([port], uptime_ticks=7_000))
    [samples] = poll(source)
    assert samples["if.ether1.in_bps"] == pytest.approx(50_000 * 8 / 20)


def test_an_answer_without_rows_is_a_protocol_error_not_a_hang():
    class Mute(FakeAgent):
        async def get_bulk(self, non_repeaters, repeaters, max_repetitions):
            self._count("getbulk", 0)
            return [VarBind(o + (0,), sc.TIMETICKS, 1) for o in non_repeaters]

    source = make_source(Mute(router_values([], uptime_ticks=1)))
    with pytest.raises(DeviceProtocolError):
        poll(source)


def test_odd_names_become_safe_distinct_keys():
    ports = [FakeInterface(1, "Gi0/1 (Uplink)"), FakeInterface(2, "ether1"),
             FakeInterface(3, "ETHER1"), FakeInterface(4, "pppoe..out")]
    [samples] = poll(make_source(FakeAgent(router_values(ports, uptime_ticks=5)),
                                 wan_interface="none"))

    keys = sorted({m.split(".")[1] for m in samples if m.startswith("if.")})
    assert keys == ["ether1", "ether1_3", "gi0_1_uplink", "pppoe"]
    assert samples["if.pppoe.out.oper_up"] is True


def test_high_speed_is_read_once_if_speed_saturates():
    port = FakeInterface(1, "sfp1", speed=10_000_000_000)
    clock = FakeClock()
    [first, second] = poll(make_source(FakeAgent(router_values([port], uptime_ticks=5)), clock),
                           2, clock)

    assert "if.sfp1.speed_bps" not in first          # ifSpeed says only "more than 4.29 Gbit/s"
    assert second["if.sfp1.speed_bps"] == 10e9
