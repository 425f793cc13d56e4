"""The SNMP source against a real net-snmp agent, and the counter maths it relies on."""

from __future__ import annotations

import asyncio
import socket
import time
import tomllib
from typing import Awaitable, Callable

import pytest
from hypothesis import given, strategies as st

from agent.config import DeviceConfig, parse_config
from agent.errors import DeviceRefused, DeviceTimeout
from agent.readings import Sample
from agent.sources.snmp import (ABSOLUTE_MAX_BPS, SnmpSource, counter_rate, uptime_went_backwards)
from fixtures.snmp import FakeAgent, FakeClock, FakeInterface, router_values
from helpers import free_port, run


def device(table: dict) -> DeviceConfig:
    """A device parsed by the real config parser, so tests use what a config file would give."""
    config = parse_config({"site_id": "test-site", "mqtt": {"host": "127.0.0.1", "tls": False},
                           "devices": [table]})
    return config.devices[0]


def by_metric(samples: list[Sample]) -> dict[str, Sample]:
    return {s.metric: s for s in samples}


def read_once(source: SnmpSource) -> list[Sample]:
    """One poll, then close the source's socket (and v3 engine) whatever happened."""
    async def scenario():
        try:
            return await source.read()
        finally:
            await source.close()
    return run(scenario())


async def until(poll: Callable[[], Awaitable[object]], *, timeout: float, what: str):
    """Await ``poll()`` until it returns something truthy, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await poll()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.05)


def send_loopback_traffic(n: int = 200, size: int = 1200) -> None:
    """Datagrams through ``lo`` to a socket of our own (so no ICMP errors come back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        sink.bind(("127.0.0.1", 0))
        sink.setblocking(False)
        for _ in range(n):
            out.sendto(b"x" * size, sink.getsockname())


# -- real snmpd -------------------------------------------------------------------------------

def test_v2c_poll_reports_uptime_name_and_loopback_status(snmpd):
    source = SnmpSource(device(snmpd.device_table(interfaces=["lo"], timeout_s=2)))
    samples = by_metric(read_once(source))

    assert samples["system.name"].value == snmpd.sys_name
    assert samples["system.uptime_s"].unit == "s"
    assert 0 <= samples["system.uptime_s"].value < 600
    assert samples["if.lo.oper_up"].value is True
    assert samples["if.lo.admin_up"].value is True
    assert samples["if.lo.speed_bps"].unit == "bit/s"
    # Rates need two polls; only the selected interface is reported, and the WAN if the
    # host has a default route (the WAN is always reported).
    assert "if.lo.in_bps" not in samples
    assert {m.split(".")[1] for m in samples if m.startswith("if.")} <= {"lo", "wan"}
    if "if.wan.name" in samples:
        assert samples["if.wan.name"].value != "lo"
    assert "system.rebooted" not in samples


def test_second_poll_after_loopback_traffic_reports_positive_rates(snmpd):
    source = SnmpSource(device(snmpd.device_table(interfaces=["lo"], timeout_s=2,
                                                  profiles=["system", "if-mib"])))
    requests: list[int] = []

    async def scenario():
        await source.read()
        requests.append(source.last_poll_requests)

        async def traffic_seen():
            send_loopback_traffic()
            samples = by_metric(await source.read())
            requests.append(source.last_poll_requests)
            rate = samples.get("if.lo.in_bps")
            return samples if rate is not None and rate.value > 0 else None
        try:
            # net-snmp caches interface counters for a few seconds, so the first polls after
            # the traffic may still see the old values.
            return await until(traffic_seen, timeout=15, what="lo counters to move")
        finally:
            await source.close()
    samples = run(scenario())

    assert samples["if.lo.in_bps"].unit == "bit/s"
    assert 0 < samples["if.lo.in_bps"].value < 100e9
    assert 0 < samples["if.lo.out_bps"].value < 100e9
    # A handful of interfaces fit one GETBULK answer: one request per poll, even the first.
    if len(socket.if_nameindex()) <= 10:
        assert max(requests) == 1, requests
    else:      # a busy CI host: still the 48-port budget
        assert max(requests) <= 4, requests


def test_fixture_device_entries_are_valid_config(snmpd):
    for user in (None, "agent-sha-aes"):
        entry = tomllib.loads(snmpd.device_toml(user=user, interfaces=["lo"]))["devices"][0]
        assert entry == snmpd.device_table(user=user, interfaces=["lo"])
        assert device(entry).settings.port == snmpd.port


@pytest.mark.parametrize("user", ["agent-sha-aes", "agent-md5-des", "agent-sha256-aes256",
                                  "agent-auth-only", "agent-noauth"])
def test_v3_users_can_poll(snmpd, user):
    if rejected := snmpd.user_rejected(user):
        pytest.skip(f"this snmpd cannot serve {user}: {rejected}")
    source = SnmpSource(device(snmpd.device_table(user=user, interfaces=["lo"], timeout_s=2)))
    samples = by_metric(read_once(source))

    assert samples["system.name"].value == snmpd.sys_name
    assert samples["if.lo.oper_up"].value is True


def test_wrong_community_is_a_timeout_that_mentions_the_community(snmpd):
    table = snmpd.device_table(community="not-the-community", timeout_s=0.3, retries=0)
    source = SnmpSource(device(table))
    started = time.monotonic()
    with pytest.raises(DeviceTimeout) as caught:
        read_once(source)

    assert time.monotonic() - started < 3
    reason = caught.value.reason
    assert reason.startswith(f"timeout: no SNMP answer from {snmpd.address}")
    assert "community" in reason
    assert "not-the-community" not in reason      # a secret, even when wrong


@pytest.mark.parametrize("change", [{"auth_key": "not-the-auth-key"}, {"user": "nobody-here"}])
def test_wrong_v3_credentials_are_refused(snmpd, change):
    table = {**snmpd.device_table(user="agent-sha-aes", timeout_s=1, retries=0), **change}
    source = SnmpSource(device(table))
    with pytest.raises(DeviceRefused) as caught:
        read_once(source)

    assert caught.value.reason.startswith("authentication failed: check the v3 user and keys")
    assert "not-the-auth-key" not in str(caught.value)


def test_closed_port_is_reported_at_once_as_refused():
    # The host answers ICMP port-unreachable: say so now instead of waiting out the timeout.
    port = free_port(socket.SOCK_DGRAM)      # nothing listens there
    source = SnmpSource(device({"name": "router", "kind": "snmp", "host": "127.0.0.1",
                                "port": port, "community": "clinic-ro", "timeout_s": 5,
                                "retries": 2}))
    started = time.monotonic()
    with pytest.raises(DeviceRefused) as caught:
        read_once(source)

    assert time.monotonic() - started < 4     # well before one 5 s timeout
    assert caught.value.reason == (f"nothing is listening for SNMP at 127.0.0.1:{port} "
                                   "(the host answered 'port unreachable')")


@pytest.mark.parametrize("user", [None, "agent-sha-aes"])
def test_agent_restart_is_reported_as_reboot_and_rates_resume(snmpd, user):
    # v3 also checks that the reused engine resynchronises with the restarted agent's clock.
    source = SnmpSource(device(snmpd.device_table(user=user, interfaces=["lo"], timeout_s=2)))

    async def uptime() -> float:
        return by_metric(await source.read())["system.uptime_s"].value

    async def scenario():
        try:
            # The agent's uptime must be clearly above what it will be right after a restart.
            await until(lambda: _at_least(uptime(), 0.5), timeout=10, what="agent uptime >= 0.5 s")
            snmpd.restart()
            after_restart = by_metric(await source.read())
            next_poll = by_metric(await source.read())
            return after_restart, next_poll
        finally:
            await source.close()
    after_restart, next_poll = run(scenario())

    assert after_restart["system.rebooted"].value is True
    assert "if.lo.in_bps" not in after_restart
    assert "system.rebooted" not in next_poll
    assert "if.lo.in_bps" in next_poll and next_poll["if.lo.in_bps"].value >= 0


def test_v3_recovers_when_the_router_is_replaced(snmpd):
    source = SnmpSource(device(snmpd.device_table(user="agent-sha-aes", interfaces=["lo"],
                                                  timeout_s=0.5, retries=0)))

    async def scenario():
        try:
            await source.read()
            snmpd.restart(new_engine_id=True)
            return by_metric(await source.read())
        finally:
            await source.close()
    samples = run(scenario())

    assert samples["system.name"].value == snmpd.sys_name


async def _at_least(value: Awaitable[float], minimum: float) -> bool:
    return await value >= minimum


# -- requests per poll -----------------------------------------------------------------------

def _fake_source(agent: FakeAgent, clock: FakeClock, **settings) -> SnmpSource:
    table = {"name": "router", "kind": "snmp", "host": "127.0.0.1", "community": "clinic-ro",
             **settings}
    return SnmpSource(device(table), client=agent, clock=clock)


@pytest.mark.parametrize("cap, first_max, steady_max", [(0, 2, 2), (100, 5, 3)])
def test_48_port_router_needs_few_requests_per_poll(cap, first_max, steady_max):
    # cap=100 is net-snmp's default limit of values in one GETBULK answer. The first poll is a
    # discovery poll (also hourly): it reads names and types (8 values per port), so at 100
    # values per answer it needs one request more than the steady polls.
    ports = [FakeInterface(i, f"ether{i}", in_octets=i * 1000) for i in range(1, 49)]
    agent = FakeAgent(router_values(ports, uptime_ticks=100_000), max_bulk_values=cap)
    clock = FakeClock()
    source = _fake_source(agent, clock)

    async def scenario():
        counts = []
        for _ in range(3):
            samples = await source.read()
            counts.append(source.last_poll_requests)
            clock.advance(10)
        return counts, by_metric(samples)
    counts, last = run(scenario())

    assert counts[0] <= first_max and max(counts[1:]) <= steady_max, counts
    assert sum(1 for m in last if m.endswith(".in_bps")) == 48
    assert last["if.ether48.oper_up"].value is True


def test_interface_selection_with_alias_still_needs_at_most_4_requests():
    ports = [FakeInterface(i, f"ether{i}", alias="uplink" if i == 7 else "") for i in range(1, 49)]
    agent = FakeAgent(router_values(ports, uptime_ticks=100_000), max_bulk_values=100)
    clock = FakeClock()
    source = _fake_source(agent, clock, interfaces=["uplink"], wan_interface="ether1")

    async def scenario():
        first = await source.read()
        counts = [source.last_poll_requests]
        clock.advance(10)
        await source.read()
        return by_metric(first), counts + [source.last_poll_requests]
    samples, counts = run(scenario())

    assert counts[0] <= 5 and counts[1] <= 3, counts      # discovery, then a steady poll
    assert {m.rsplit(".", 1)[0] for m in samples if m.startswith("if.")} == {"if.ether7", "if.wan"}
    assert samples["if.wan.name"].value == "ether1"


# -- counter maths ----------------------------------------------------------------------------

def test_rate_is_bits_per_second_of_the_octet_delta():
    assert counter_rate(1_000, 126_000, 10.0, bits=64) == pytest.approx(100_000.0)


def test_32_bit_counter_wrap_gives_the_true_rate():
    prev = 2**32 - 1_000
    assert counter_rate(prev, 500, 10.0, bits=32, link_bps=100e6) == pytest.approx(1_500 * 8 / 10)


def test_64_bit_counter_wrap_gives_the_true_rate():
    assert counter_rate(2**64 - 24, 1_000, 8.0, bits=64) == pytest.approx(1_024.0)


def test_counter_reset_gives_no_rate_rather_than_an_absurd_one():
    # A 64-bit counter going from 10 TB to almost nothing was reset, not wrapped.
    assert counter_rate(10**13, 5, 10.0, bits=64) is None
    # A 32-bit "wrap" implying 3.4 Gbit/s on a 100 Mbit/s link is a reset too.
    assert counter_rate(1_000, 5, 10.0, bits=32, link_bps=100e6) is None
    assert counter_rate(1_000, 2_000, 0.0, bits=32) is None


@given(prev=st.integers(0, 2**64 - 1), cur=st.integers(0, 2**64 - 1),
       dt=st.floats(0.001, 86_400), bits=st.sampled_from([32, 64]),
       link=st.one_of(st.none(), st.floats(1e3, 1e11)))
def test_a_rate_is_never_negative_or_absurd(prev, cur, dt, bits, link):
    prev, cur = prev % 2**bits, cur % 2**bits
    rate = counter_rate(prev, cur, dt, bits=bits, link_bps=link)
    assert rate is None or 0 <= rate <= ABSOLUTE_MAX_BPS
    if rate is not None and cur < prev and link:
        assert rate <= link * 1.5


def test_uptime_backwards_is_a_reboot_but_its_497_day_wrap_is_not():
    assert not uptime_went_backwards(10_000, 11_000, 10.0)
    assert uptime_went_backwards(10_000_000, 500, 10.0)
    assert not uptime_went_backwards(2**32 - 300, 700, 10.0)    # wrapped 10 s later
    assert uptime_went_backwards(2**32 - 300, 50_000_000, 10.0)


def _hc_less_router(in_octets: int, uptime: int) -> dict:
    return router_values([FakeInterface(1, "wan0", in_octets=in_octets, out_octets=0, hc=False,
                                        speed=100_000_000)], uptime_ticks=uptime)


def test_32_bit_only_interface_rate_across_a_wrap():
    clock = FakeClock()
    agent = FakeAgent(_hc_less_router(2**32 - 5_000, 1_000))
    source = _fake_source(agent, clock, wan_interface="none")

    async def scenario():
        polls = [by_metric(await source.read())]       # learns there is no ifHCInOctets
        clock.advance(10)
        agent.set(_hc_less_router(2**32 - 5_000, 2_000))
        polls.append(by_metric(await source.read()))   # first 32-bit reading
        clock.advance(10)
        agent.set(_hc_less_router(2**32 - 5_000 + 12_500, 3_000))   # wrapped past 2^32
        polls.append(by_metric(await source.read()))
        return polls
    first, second, third = run(scenario())

    assert "if.wan0.in_bps" not in first and "if.wan0.in_bps" not in second
    assert third["if.wan0.in_bps"].value == pytest.approx(12_500 * 8 / 10)


def test_reboot_reported_once_and_no_rates_that_poll():
    clock = FakeClock()
    port = FakeInterface(1, "ether1", in_octets=5_000_000_000)
    agent = FakeAgent(router_values([port], uptime_ticks=9_000_000))
    source = _fake_source(agent, clock)

    async def scenario():
        polls = [by_metric(await source.read())]
        clock.advance(30)
        port.in_octets = 20_000            # counters start over after the reboot
        agent.set(router_values([port], uptime_ticks=1_500))
        polls.append(by_metric(await source.read()))
        clock.advance(10)
        port.in_octets += 1_000_000
        agent.set(router_values([port], uptime_ticks=2_500))
        polls.append(by_metric(await source.read()))
        return polls
    before, rebooted, after = run(scenario())

    assert "system.rebooted" not in before
    assert rebooted["system.rebooted"].value is True
    assert rebooted["system.uptime_s"].value == 15.0
    assert "if.ether1.in_bps" not in rebooted
    assert "system.rebooted" not in after
    assert after["if.ether1.in_bps"].value == pytest.approx(800_000.0)


# -- what the central side sees when a poll fails ---------------------------------------------

@pytest.mark.parametrize("case", ["closed-port", "community", "v3-key"])
def test_failed_polls_become_status_readings_with_the_technicians_reason(snmpd, case):
    from agent.clock import ClockGuard
    from agent.runtime.poller import poll_once
    if case == "closed-port":
        table = {"name": "router", "kind": "snmp", "host": "127.0.0.1",
                 "port": free_port(socket.SOCK_DGRAM), "community": "clinic-ro"}
    elif case == "community":
        table = snmpd.device_table(community="not-the-community")
    else:
        table = {**snmpd.device_table(user="agent-sha-aes"), "auth_key": "not-the-auth-key"}
    dev = device({**table, "timeout_s": 0.3, "retries": 0})
    source = SnmpSource(dev)

    async def scenario():
        try:
            return await poll_once(dev, source, ClockGuard())
        finally:
            await source.close()
    outcome = run(scenario())
    readings, status, reason = outcome.readings, outcome.status, outcome.reason

    by_name = {r.metric: r.value for r in readings}
    assert by_name["poll.status"] == status == ("timeout" if case == "community" else "refused")
    assert by_name["poll.reason"] == reason
    expected = {"closed-port": "nothing is listening for SNMP at 127.0.0.1:",
                "community": "the community is wrong",
                "v3-key": "authentication failed: check the v3 user and keys"}[case]
    assert expected in reason
    assert "not-the" not in reason          # secrets stay out of readings
