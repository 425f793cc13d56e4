"""Power and internet events end to end, scripted in time (issue 12, docs/events.md).

Real peers only: the agent as a process, Mosquitto, the Modbus UPS simulator (scripts/sim_ups.py)
and net-snmp snmpd as the router (its WAN link switched by SNMP SET). Each test notes the wall time
of every change it makes to the clinic and checks the events the central side receives against
it: raise/clear pairs, times within a second (one poll every 0.5 s), in order, each once after
de-duplication by (site, id), and the retained active set after every step.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from events_clinic import (
    ON_BATTERY_TOTAL,
    POLL_S,
    SITE,
    Centre,
    Mark,
    Router,
    agent_config,
    until,
    ups_toml,
    wait_polled,
)
from fixtures.modbus import ModbusTestServer
from fixtures.mosquitto import Broker, Recorder
from helpers import wait_until

from agent.events.engine import TEST_HOST_BOOT_ENV
from agent.events.model import Event

# An event carries the time of the first poll that saw the change: within a second of that poll,
# which itself comes within one poll interval of the change (a little later on a loaded CI
# machine, where a 0.5 s poll can be skipped once).
TIME_SLACK_S = 1.0 + POLL_S


@pytest.fixture
def router(tmp_path: Path) -> Iterator[Router]:
    r = Router(tmp_path / "router")
    r.start()
    yield r
    r.stop()


@pytest.fixture
def centre(broker: Broker, recorder: Recorder) -> Centre:
    return Centre(broker, recorder)


def near(t: float | None, scripted: float) -> bool:
    return t is not None and abs(t - scripted) <= TIME_SLACK_S


def pairs(events: list[Event]) -> list[tuple[str, str, str]]:
    return [(e.kind, e.dev, e.cond) for e in events]


def power_cut(ups: ModbusTestServer) -> Mark:
    at = Mark()
    ups.set_outage(True)
    return at


def mains_back(ups: ModbusTestServer, cut: Mark, *, counted_until: float | None = None) -> Mark:
    """Mains back. The UPS's own on-battery counter went up for the time on battery (until
    ``counted_until``, e.g. when its battery ran out), as a real one counts: the simulator's
    values are frozen otherwise."""
    at = Mark()
    on_battery_s = (counted_until or at.wall) - cut.wall
    ups.set_value("ups", "on_battery.total", ON_BATTERY_TOTAL + int(on_battery_s))   # whole s
    ups.set_outage(False)
    return at


def set_voltage(ups: ModbusTestServer, volts: float) -> Mark:
    at = Mark()
    ups.set_value("ups", "input.voltage", volts)
    return at


def test_a_clinic_day_reaches_the_centre_as_timed_raise_clear_pairs_across_a_broker_outage(
        broker: Broker, centre: Centre, agent_process: Any, modbus_server: ModbusTestServer,
        router: Router, tmp_path: Path) -> None:
    ups = modbus_server
    agent = agent_process(agent_config(tmp_path / "state", broker.port,
                                       ups_toml(ups) + "\n" + router.device_toml()))
    centre.wait_active(set())                      # all well, and said so (retained)

    # 1. Power cut: the UPS goes on battery.
    cut = power_cut(ups)
    raised = centre.wait_for("raise", "mains_lost")
    assert near(raised.start, cut.wall) and raised.values["on_battery"] is True, (raised, cut)
    centre.wait_active({("ups", "mains_lost")})

    # 2. The broker goes down. Meanwhile the mains comes back, then sags under 114.3 V (90 % of
    #    127 V), recovers to 116 V (between the raise and clear levels: still low, for longer
    #    than clear_after_s), then to 120 V (over 118.1 V: cleared).
    broker.stop()
    back = mains_back(ups, cut)
    wait_polled(ups, back, 1.5)
    sag = set_voltage(ups, 110.0)
    wait_polled(ups, sag, 1.5)
    between = set_voltage(ups, 116.0)
    wait_polled(ups, between, 2.5)
    recovered = set_voltage(ups, 120.0)
    wait_polled(ups, recovered, 1.5)
    before_restart = len(centre.recorder.snapshot())
    broker.start()

    cleared = centre.wait_for("clear", "mains_lost")
    assert near(cleared.end, back.wall) and cleared.start == raised.start, (cleared, back)
    assert cleared.dur_s is not None and abs(cleared.dur_s - (back.wall - cut.wall)) <= TIME_SLACK_S
    assert cleared.est is False
    low = centre.wait_for("raise", "voltage_low")
    assert near(low.start, sag.wall) and low.values["input.voltage"] == 110.0, (low, sag)
    low_over = centre.wait_for("clear", "voltage_low")
    assert near(low_over.end, recovered.wall), (low_over, recovered, between)
    assert low_over.values["input.voltage"] == 120.0
    centre.wait_active(set())
    # What waited during the outage went out ahead of the backlog of readings.
    topics = [m.topic.removeprefix(f"clinics/{SITE}/")
              for m in centre.recorder.snapshot()[before_restart:]]
    assert "backlog" in topics and topics.index("events") < topics.index("backlog"), topics

    # 3. The router's WAN link goes down, and up.
    wan_down = Mark()
    router.set_wan(False)
    down = centre.wait_for("raise", "wan_down")
    assert near(down.start, wan_down.wall) and down.dev == "router", (down, wan_down)
    centre.wait_active({("router", "wan_down")})
    wan_up = Mark()
    router.set_wan(True)
    up = centre.wait_for("clear", "wan_down")
    assert near(up.end, wan_up.wall) and up.start == down.start, (up, wan_up)
    centre.wait_active(set())

    # The whole day, each event once, in the order it happened, nothing else.
    assert pairs(centre.events()) == [
        ("raise", "ups", "mains_lost"), ("clear", "ups", "mains_lost"),
        ("raise", "ups", "voltage_low"), ("clear", "ups", "voltage_low"),
        ("raise", "router", "wan_down"), ("clear", "router", "wan_down")]
    assert "Traceback" not in agent.log()


def agent_gone(centre: Centre) -> bool:
    """The broker told the centre the agent is gone (its will: offline, lost)."""
    status = [m for m in centre.recorder.snapshot() if m.topic == f"clinics/{SITE}/status"]
    return bool(status) and json.loads(status[-1].payload)["state"] == "offline"


def test_an_outage_that_ends_while_the_agent_is_killed_is_one_outage_with_its_true_duration(
        broker: Broker, centre: Centre, agent_process: Any, modbus_server: ModbusTestServer,
        tmp_path: Path) -> None:
    ups = modbus_server
    agent = agent_process(agent_config(tmp_path / "state", broker.port, ups_toml(ups)))
    centre.wait_active(set())
    cut = power_cut(ups)
    raised = centre.wait_for("raise", "mains_lost")
    centre.wait_active({("ups", "mains_lost")})

    agent.kill9()
    wait_until(lambda: agent_gone(centre), timeout=20, what="the broker to notice the agent gone")
    back = mains_back(ups, cut)
    # Restarted 3 s after the mains came back: the first poll after the start is far from the
    # end, so only the UPS's on-battery counter can tell when.
    until(back.wall + 3)
    restarted = Mark()
    agent.start()

    cleared = centre.wait_for("clear", "mains_lost")
    assert cleared.start == raised.start
    assert near(cleared.end, back.wall), (cleared, back, restarted)
    assert cleared.dur_s is not None and abs(cleared.dur_s - (back.wall - cut.wall)) <= TIME_SLACK_S
    assert cleared.est is False
    assert cleared.values["evidence.on_battery_s"] == int(back.wall - cut.wall)
    centre.wait_active(set())
    assert pairs(centre.events()) == [("raise", "ups", "mains_lost"), ("clear", "ups", "mains_lost")]
    assert "1 condition(s) still on from before the restart: ups mains_lost" in agent.log()


def test_a_pc_power_cut_during_an_outage_closes_it_once_at_the_boot_flagged_estimated(
        broker: Broker, centre: Centre, agent_process: Any, modbus_server: ModbusTestServer,
        tmp_path: Path) -> None:
    ups = modbus_server
    agent = agent_process(agent_config(tmp_path / "state", broker.port, ups_toml(ups)))
    centre.wait_active(set())
    cut = power_cut(ups)
    raised = centre.wait_for("raise", "mains_lost")

    # The UPS's battery runs out: the PC goes off with it (no clean stop). The UPS counted its
    # time on battery until then; the mains comes back later and the PC boots with it.
    agent.kill9()
    battery_dead = Mark()
    wait_until(lambda: agent_gone(centre), timeout=20, what="the broker to notice the agent gone")
    until(battery_dead.wall + 3)
    back = mains_back(ups, cut, counted_until=battery_dead.wall)     # 3 s after it ran out
    boot = back.wall                # the PC boots with the mains (the test's clock says when)
    agent.start((TEST_HOST_BOOT_ENV, repr(boot)))

    cleared = centre.wait_for("clear", "mains_lost")
    assert cleared.start == raised.start
    # Ended at the boot: not when the counter stopped, nor at the first poll after the start.
    assert cleared.end is not None and abs(cleared.end - boot) < 0.01, (cleared, boot)
    assert cleared.est is True
    assert cleared.values["evidence.host_boot"] == pytest.approx(boot)
    assert cleared.dur_s == pytest.approx(boot - raised.start, abs=0.01)
    centre.wait_active(set())
    assert pairs(centre.events()) == [("raise", "ups", "mains_lost"), ("clear", "ups", "mains_lost")]


def test_flapping_voltage_is_one_event_and_a_low_battery_blip_on_mains_is_none(
        broker: Broker, centre: Centre, agent_process: Any, modbus_server: ModbusTestServer,
        tmp_path: Path) -> None:
    ups = modbus_server
    # Four transitions within the window are news; the fifth makes it "flapping" (the default
    # flap_transitions); the window and the quiet time are shortened for the test.
    flapping_rules = "[events]\nflap_window_s = 120\nflap_quiet_s = 3\n"
    agent = agent_process(agent_config(tmp_path / "state", broker.port, ups_toml(ups),
                                       events_toml=flapping_rules))
    centre.wait_active(set())

    # The UPS flashes its low-battery flag for 2 s while on mains (battery_low raises after
    # 1 s here): a charging battery, not a problem.
    blip = Mark()
    ups.set_value("ups", "status", 1 << 1)
    wait_polled(ups, blip, 2.0)
    ups.set_value("ups", "status", 0)

    # The voltage goes under 114.3 V and back over 118.1 V, six times, each level held longer
    # than the rule's minimum durations (1 s).
    changes = []
    for volts in (112.0, 120.0) * 3:
        changes.append(set_voltage(ups, volts))
        wait_polled(ups, changes[-1], 1.5)
    set_voltage(ups, 127.0)
    flap = centre.wait_for("flapping", "voltage_low")
    assert near(flap.start, changes[4].wall), (flap, changes[4])
    [active] = centre.wait_active({("ups", "voltage_low")})
    assert active.kind == "flapping" and active.id == flap.id
    settled = centre.wait_for("clear", "voltage_low", n=3)     # quiet for 3 s: it settled off
    assert settled.start == flap.start and near(settled.end, changes[5].wall), settled
    centre.wait_active(set())

    # A last, real event: everything decided before it has reached the centre before it.
    power_cut(ups)
    marker = centre.wait_for("raise", "mains_lost")
    told = [e for e in centre.events() if e.id < marker.id]
    assert pairs(told) == [("raise", "ups", "voltage_low"), ("clear", "ups", "voltage_low"),
                           ("raise", "ups", "voltage_low"), ("clear", "ups", "voltage_low"),
                           ("flapping", "ups", "voltage_low"), ("clear", "ups", "voltage_low")]
    for raised, cleared, went, came in ((told[0], told[1], changes[0], changes[1]),
                                        (told[2], told[3], changes[2], changes[3])):
        assert near(raised.start, went.wall) and near(cleared.end, came.wall), (raised, cleared)
    assert "battery_low" not in agent.log()
