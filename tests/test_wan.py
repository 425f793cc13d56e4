"""WAN health from the clinic's side: reachability, latency and loss, with the router's view.

Every target here is on 127.0.0.1: a TCP listener the test opens for "up", a port nobody listens
on for "down". Nothing is ever sent off this machine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import ConfigError, parse_config
from agent.readings import Sample
from agent.sources import wan as wan_mod
from agent.sources.factory import SourceFactory
from agent.sources.latest import LatestSamples
from agent.sources.wan import IcmpNotPermitted, WanSource, icmp_checksum
from fixtures.snmp import FakeClock
from helpers import free_port


def wan_device(**table):
    entry = {"name": "wan", "kind": "wan", "timeout_s": 0.5, **table}
    devices = [entry]
    if "router" in table:    # the router it names must be an snmp device of the same config
        devices.append({"name": table["router"], "kind": "snmp", "host": "127.0.0.1",
                        "community": "clinic-ro"})
    return parse_config({"site_id": "test-site", "mqtt": {"host": "127.0.0.1"},
                         "devices": devices}).devices[0]


@pytest.fixture
def listener():
    """A TCP port on 127.0.0.1 that accepts connections."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def read(source: WanSource, n: int = 1) -> list[dict]:
    async def run():
        return [{s.metric: s.value for s in await source.read()} for _ in range(n)]
    return asyncio.run(run())


def test_an_open_port_is_up_with_a_latency_and_a_closed_one_is_down(listener):
    closed = free_port()
    source = WanSource(wan_device(targets=[f"127.0.0.1:{listener}", f"127.0.0.1:{closed}"]))

    [samples] = read(source)

    up, down = f"target.127_0_0_1_{listener}.", f"target.127_0_0_1_{closed}."
    assert samples["wan.up"] is True
    assert samples[up + "up"] is True and 0 <= samples[up + "latency_ms"] < 500
    assert samples[down + "up"] is False and down + "latency_ms" not in samples
    assert samples[up + "loss_pct"] == 0.0 and samples[down + "loss_pct"] == 100.0
    assert samples["wan.loss_pct"] == 50.0
    assert samples["wan.latency_ms"] == samples[up + "latency_ms"]
    assert samples["wan.diagnosis"] == "ok"


def test_every_target_down_is_a_measurement_not_a_failed_poll():
    source = WanSource(wan_device(targets=[f"127.0.0.1:{free_port()}"]))
    [samples] = read(source)
    assert samples["wan.up"] is False
    assert "wan.latency_ms" not in samples
    assert samples["wan.diagnosis"] == "down"


def test_loss_is_over_a_sliding_window_of_polls(listener):
    port = free_port()
    target = f"127.0.0.1:{port}"
    source = WanSource(wan_device(targets=[target], window=4))
    key = f"target.127_0_0_1_{port}.loss_pct"

    losses = [s[key] for s in read(source, 2)]                     # down, down
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", port))
        server.listen(16)
        losses += [s[key] for s in read(source, 4)]                # up x4

    assert losses == [100.0, 100.0, 66.7, 50.0, 25.0, 0.0]


def test_icmp_not_permitted_falls_back_to_tcp(monkeypatch, listener, caplog):
    async def refused(host, timeout_s):
        raise IcmpNotPermitted("Permission denied")
    monkeypatch.setattr(wan_mod, "icmp_probe", refused)
    source = WanSource(wan_device(targets=["127.0.0.1"], icmp_fallback_port=listener))

    with caplog.at_level(logging.INFO, logger="agent.sources.wan"):
        first, second = read(source, 2)

    assert first["target.127_0_0_1.up"] is True and second["target.127_0_0_1.up"] is True
    assert sum("may not send ICMP echo" in r.getMessage() for r in caplog.records) == 1


_PING_IN_NETNS = """
import asyncio
from agent.sources.wan import icmp_probe
print(asyncio.run(icmp_probe("127.0.0.1", 1.0)))
"""


def test_icmp_echo_to_loopback_where_the_kernel_allows_it():
    # ping_group_range is per network namespace: allow ping sockets in a fresh one of our own
    # (only its loopback exists), rather than changing this machine's setting.
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare for a private network namespace")
    script = ('ip link set lo up && sysctl -q -w net.ipv4.ping_group_range="0 2147483647" && '
              f'exec {shlex.quote(sys.executable)} -c {shlex.quote(_PING_IN_NETNS)}')
    run = subprocess.run([unshare, "-n", "sh", "-c", script], capture_output=True, text=True,
                         timeout=30, cwd=Path(__file__).resolve().parents[1])
    if run.returncode != 0 and "Operation not permitted" in run.stderr:
        pytest.skip(f"no network namespaces here: {run.stderr.strip()}")
    assert run.returncode == 0, run.stderr
    latency = float(run.stdout.strip())
    assert 0 <= latency < 1000


def test_icmp_checksum_of_a_known_packet():
    # Echo request, id 0, seq 1, no payload: 0x0800 + 0x0001 -> ~0x0801 = 0xf7fe.
    assert icmp_checksum(bytes([8, 0, 0, 0, 0, 0, 0, 1])) == 0xF7FE


def _router(latest: LatestSamples, *, wan_up: bool) -> None:
    latest.publish("router", [Sample("if.wan.name", "pppoe-out1"), Sample("if.wan.oper_up", wan_up)],
                   fresh_for_s=90)


@pytest.mark.parametrize("router_wan_up, diagnosis", [(False, "router_wan_down"), (True, "upstream")])
def test_the_routers_view_explains_an_outage(router_wan_up, diagnosis):
    clock = FakeClock()
    latest = LatestSamples(clock=clock)
    _router(latest, wan_up=router_wan_up)
    source = WanSource(wan_device(targets=[f"127.0.0.1:{free_port()}"], router="router"),
                       latest=latest)

    [samples] = read(source)

    assert samples["router.wan_up"] is router_wan_up
    assert samples["router.wan_name"] == "pppoe-out1"
    assert samples["wan.diagnosis"] == diagnosis


def test_a_stale_router_view_is_not_reported(listener):
    clock = FakeClock()
    latest = LatestSamples(clock=clock)
    _router(latest, wan_up=True)
    clock.advance(91)
    source = WanSource(wan_device(targets=[f"127.0.0.1:{free_port()}"], router="router"),
                       latest=latest)

    [samples] = read(source)

    assert "router.wan_up" not in samples
    assert samples["wan.diagnosis"] == "router_unreachable"


def test_the_factory_shares_the_routers_latest_poll_with_the_wan_check(snmpd, listener):
    config = parse_config({"site_id": "test-site", "mqtt": {"host": "127.0.0.1"}, "devices": [
        snmpd.device_table(name="router", wan_interface="lo", timeout_s=2),
        {"name": "wan", "kind": "wan", "targets": [f"127.0.0.1:{listener}"], "router": "router",
         "timeout_s": 0.5}]})
    factory = SourceFactory(state_dir="/nonexistent")
    router, wan = (factory.build(d) for d in config.devices)

    async def scenario():
        try:
            await router.read()
            return {s.metric: s.value for s in await wan.read()}
        finally:
            await router.close()
            await wan.close()
            await factory.close()
    samples = asyncio.run(scenario())

    assert samples["router.wan_name"] == "lo" and samples["router.wan_up"] is True
    assert samples["wan.up"] is True and samples["wan.diagnosis"] == "ok"


def test_wan_config_problems_name_the_key():
    with pytest.raises(ConfigError) as caught:
        wan_device(targets=["no spaces allowed:53", "127.0.0.1:99999"], window=0)
    assert caught.value.problems == [
        'devices[0].targets[0]: expected "host:port" or "host", got "no spaces allowed:53"',
        'devices[0].targets[1]: expected "host:port" or "host", got "127.0.0.1:99999"',
        "devices[0].window: expected an integer 1-1000, got 0",
    ]


def test_the_router_named_must_be_an_snmp_device_of_the_same_config():
    base = {"site_id": "test-site", "mqtt": {"host": "127.0.0.1"}}
    with pytest.raises(ConfigError) as caught:
        parse_config({**base, "devices": [
            {"name": "wan", "kind": "wan", "router": "ruoter"},
            {"name": "wan2", "kind": "wan", "router": "ups"},
            {"name": "ups", "kind": "modbus", "host": "127.0.0.1",
             "registers": [{"name": "v", "address": 0}]},
            {"name": "router", "kind": "snmp", "host": "127.0.0.1", "community": "x"}]})
    assert caught.value.problems == [
        'devices[0].router: expected the name of an snmp device in this file, got "ruoter" '
        '(snmp devices: router)',
        'devices[1].router: expected the name of an snmp device in this file, got "ups", '
        'which is a modbus device (snmp devices: router)',
    ]


def test_default_targets_are_public_resolvers_over_tcp():
    settings = wan_device().settings
    assert [t.text for t in settings.targets] == ["1.1.1.1:53", "9.9.9.9:53"]
    assert all(t.port == 53 for t in settings.targets)
