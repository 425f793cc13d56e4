"""The event engine, driven by scripted clinic days with injected time (no peers: pure logic)."""

from __future__ import annotations

import pytest
from events_script import Clinic, hms, wall

from agent.config import parse_config
from agent.config.events import EventsConfig
from agent.events.engine import describe

UPS_ON_MAINS = {"on_battery": False, "battery__charge_pct": 100, "battery__runtime_s": 1800,
                "input__voltage": 127.0, "input__frequency": 60.0}
UPS_ON_BATTERY = {"on_battery": True, "battery__charge_pct": 90, "battery__runtime_s": 1500,
                  "input__voltage": 0.0, "input__frequency": 0.0}


def events_cfg(**events) -> EventsConfig:
    """An [events] section through the real config parser."""
    cfg = parse_config({"site_id": "TEST01", "mqtt": {"host": "localhost", "tls": False},
                        "devices": [{"name": n, "kind": "host"} for n in ("ups", "meter", "wan")],
                        "events": events})
    return cfg.events


def summary(c: Clinic) -> list[tuple[str, str, str, str | None]]:
    return [(e.kind, e.cond, hms(e.start), hms(e.end) if e.end is not None else None)
            for e in c.events]


# -- a clinic day ------------------------------------------------------------------------------

def test_a_clinic_day_gives_one_raise_and_one_clear_per_problem_with_the_polls_times():
    c = Clinic(start="08:00:00")
    c.polls("ups", "14:03:00", every=10, **UPS_ON_MAINS)
    c.polls("ups", "14:50:00", every=10, **UPS_ON_BATTERY)
    assert [a.cond for a in c.engine.active()] == ["mains_lost"]
    c.polls("ups", "15:00:00", every=10, **UPS_ON_MAINS)
    # Voltage sags under 90 % of 127 V (114.3 V), sits between the levels, recovers over 93 %.
    c.polls("meter", "16:00:00", every=10, voltage__l1=126.0)
    c.polls("meter", "16:05:00", every=10, voltage__l1=110.0)
    c.polls("meter", "16:10:00", every=10, voltage__l1=116.0)   # between 114.3 and 118.1: still low
    assert [a.cond for a in c.engine.active()] == ["voltage_low.l1"]
    c.polls("meter", "16:20:00", every=10, voltage__l1=121.0)
    # The WAN goes down and comes back.
    c.polls("wan", "17:00:00", every=30, wan__up=True, wan__latency_ms=80.0)
    c.polls("wan", "17:12:00", every=30, wan__up=False, wan__diagnosis="upstream")
    c.polls("wan", "17:30:00", every=30, wan__up=True, wan__latency_ms=80.0)

    assert summary(c) == [
        ("raise", "mains_lost", "14:03:00", None),
        ("clear", "mains_lost", "14:03:00", "14:50:00"),
        ("raise", "voltage_low.l1", "16:00:00", None),
        ("clear", "voltage_low.l1", "16:00:00", "16:10:00"),
        ("raise", "wan_down", "17:00:00", None),
        ("clear", "wan_down", "17:00:00", "17:12:00"),
    ]
    assert [e.id for e in c.events] == [1, 2, 3, 4, 5, 6]
    outage = c.events[1]
    assert outage.dur_s == 47 * 60 and not outage.est
    assert c.events[0].values["battery.runtime_s"] == 1500
    assert c.events[0].dev == "ups"
    assert c.events[4].values["wan.diagnosis"] == "upstream"
    assert c.engine.active() == []
    # The UPS's 0 V input while on battery is the outage, not a voltage event.
    assert not c.told(cond="voltage_low") and not c.told(cond="frequency_low")


def test_a_raise_is_told_once_its_minimum_duration_passed_without_waiting_for_the_next_poll():
    c = Clinic()
    c.poll("ups", **UPS_ON_BATTERY)            # 08:00:00; the next poll would be at 08:01:00
    c.after(4)
    assert c.events == []
    c.after(1)                                 # mains_lost.raise_after_s = 5
    assert summary(c) == [("raise", "mains_lost", "08:00:00", None)]


def test_a_sag_shorter_than_the_minimum_duration_raises_nothing():
    c = Clinic()
    c.polls("meter", "08:00:30", every=2, voltage__l1=127.0)
    c.polls("meter", "08:00:38", every=2, voltage__l1=100.0)    # 8 s < voltage.raise_after_s 10
    c.polls("meter", "08:05:00", every=2, voltage__l1=127.0)
    assert c.events == []


def test_high_voltage_and_frequency_out_of_range_on_a_meter():
    c = Clinic()
    c.polls("meter", "08:01:00", every=5, voltage__l1=141.0, frequency_hz=60.0)   # > 139.7 V
    c.polls("meter", "08:02:00", every=5, voltage__l1=127.0, frequency_hz=58.9)   # < 59.2 Hz
    c.polls("meter", "08:03:00", every=5, voltage__l1=127.0, frequency_hz=60.0)
    assert summary(c) == [
        ("raise", "voltage_high.l1", "08:00:00", None),
        ("clear", "voltage_high.l1", "08:00:00", "08:01:00"),
        ("raise", "frequency_low", "08:01:00", None),
        ("clear", "frequency_low", "08:01:00", "08:02:00"),
    ]


def test_three_phase_meter_each_phase_and_each_line_pair_on_its_own():
    c = Clinic()
    phases = {"voltage__l1": 127.0, "voltage__l2": 127.0, "voltage__l3": 127.0,
              "voltage__l1_l2": 220.0, "voltage__l2_l3": 220.0, "voltage__l3_l1": 220.0}
    c.polls("meter", "08:01:00", every=5, **{**phases, "voltage__l2": 0.0,
                                             "voltage__l1_l2": 127.0, "voltage__l2_l3": 127.0})
    conds = sorted(a.cond for a in c.engine.active())
    # One phase lost is low voltage on that phase (and on the two pairs it is in), not an outage.
    assert conds == ["voltage_low.l1_l2", "voltage_low.l2", "voltage_low.l2_l3"]


def test_a_meter_with_every_phase_dead_is_an_outage_not_a_voltage_event():
    c = Clinic()
    c.polls("meter", "08:01:00", every=5, voltage__l1=0.0, frequency_hz=0.0)
    c.polls("meter", "08:02:00", every=5, voltage__l1=127.0, frequency_hz=60.0)
    assert summary(c) == [("raise", "mains_lost", "08:00:00", None),
                          ("clear", "mains_lost", "08:00:00", "08:01:00")]


# -- no false or flapping events -----------------------------------------------------------------

def test_a_two_second_low_battery_flag_on_mains_raises_nothing():
    c = Clinic()
    c.polls("ups", "08:01:00", every=1, **UPS_ON_MAINS)
    c.polls("ups", "08:01:02", every=1, **UPS_ON_MAINS, battery__low=True)
    c.polls("ups", "08:05:00", every=1, **UPS_ON_MAINS, battery__low=False)
    assert c.events == []


def test_low_battery_flag_on_battery_is_told_at_once_and_clears_with_the_mains():
    c = Clinic()
    c.polls("ups", "08:01:00", every=1, **UPS_ON_BATTERY)
    c.polls("ups", "08:02:00", every=1, **UPS_ON_BATTERY, battery__low=True)
    c.polls("ups", "08:03:00", every=1, **UPS_ON_MAINS)
    low = c.told(cond="battery_low")
    assert [(e.kind, hms(e.start)) for e in low] == [("raise", "08:01:00"), ("clear", "08:01:00")]
    assert hms(low[1].end) == "08:02:00"


def test_battery_low_by_charge_uses_hysteresis():
    c = Clinic()
    on_battery = dict(UPS_ON_BATTERY, battery__runtime_s=900)
    c.polls("ups", "08:01:00", every=10, **{**on_battery, "battery__charge_pct": 29})
    c.polls("ups", "08:02:00", every=10, **{**on_battery, "battery__charge_pct": 35})  # between
    assert [a.cond for a in c.engine.active()] == ["mains_lost", "battery_low"]
    c.polls("ups", "08:03:00", every=10, **{**on_battery, "battery__charge_pct": 41})
    assert [a.cond for a in c.engine.active()] == ["mains_lost"]


def test_voltage_flapping_around_a_threshold_becomes_one_flapping_event():
    c = Clinic()
    t = 0
    while t < 30 * 60:        # 30 minutes of 110 V / 125 V, 40 s each
        c.polls("meter", hms(c.now + 40), every=5, voltage__l1=110.0 if (t // 40) % 2 == 0
                else 125.0)
        t += 40
    storm = list(c.events)
    # The first 4 transitions are told; the 5th is one flapping event; then silence.
    assert [e.kind for e in storm] == ["raise", "clear", "raise", "clear", "flapping"]
    assert [a.kind for a in c.engine.active()] == ["flapping"]
    # It settles (high enough) for flap_quiet_s: the flapping ends; nothing else is open.
    c.polls("meter", hms(c.now + 400), every=5, voltage__l1=125.0)
    tail = c.events[len(storm):]
    assert [(e.kind, e.cond) for e in tail] == [("clear", "voltage_low.l1")]
    assert tail[0].start == storm[4].start       # the flapping event's clear
    assert c.engine.active() == []


def test_flapping_that_settles_low_ends_with_the_condition_raised():
    c = Clinic()
    for i in range(12):
        c.polls("meter", hms(c.now + 40), every=5, voltage__l1=110.0 if i % 2 == 0 else 125.0)
    n = len(c.events)
    c.polls("meter", hms(c.now + 400), every=5, voltage__l1=110.0)
    tail = c.events[n:]
    assert [e.kind for e in tail] == ["clear", "raise"]
    assert [a.kind for a in c.engine.active()] == ["raise"]


# -- generator, devices, WAN, the agent ----------------------------------------------------------

def test_generator_that_does_not_take_the_load_within_15_s():
    c = Clinic(events_cfg(generator=True))
    c.poll("ups", **UPS_ON_BATTERY)
    c.after(14)
    assert [e.cond for e in c.events] == ["mains_lost"]
    c.after(1)
    assert [e.cond for e in c.events] == ["mains_lost", "generator_failed"]
    assert c.events[1].start == c.events[0].start
    c.polls("ups", hms(c.now + 60), every=10, **UPS_ON_MAINS)
    assert [e.kind for e in c.told(cond="generator_failed")] == ["raise", "clear"]


def test_generator_that_takes_the_load_and_sites_without_one_raise_no_generator_event():
    with_generator = Clinic(events_cfg(generator=True))
    with_generator.poll("ups", **UPS_ON_BATTERY)
    with_generator.after(8).poll("ups", **UPS_ON_MAINS)
    with_generator.after(60)
    assert not with_generator.told(cond="generator_failed")
    without = Clinic()
    without.polls("ups", "08:05:00", every=10, **UPS_ON_BATTERY)
    assert not without.told(cond="generator_failed")


def test_a_device_not_answering_three_polls_in_a_row_dates_from_the_first():
    c = Clinic()
    c.poll("meter", voltage__l1=127.0)
    c.after(10).poll("meter", status="timeout")
    c.after(10).poll("meter", status="timeout")
    assert c.events == []
    c.after(10).poll("meter", status="timeout")
    assert summary(c) == [("raise", "device_unreachable", "08:00:10", None)]
    assert c.events[0].values == {"poll.status": "timeout", "polls": 3}
    c.after(10).poll("meter", voltage__l1=127.0)
    assert summary(c)[-1] == ("clear", "device_unreachable", "08:00:10", "08:00:40")


def test_wan_down_from_the_router_interface():
    c = Clinic()
    c.polls("router", "08:02:00", every=30, if__wan__oper_up=False, if__wan__name="pppoe-out1")
    c.polls("router", "08:04:00", every=30, if__wan__oper_up=True, if__wan__name="pppoe-out1")
    assert summary(c) == [("raise", "wan_down", "08:00:00", None),
                          ("clear", "wan_down", "08:00:00", "08:02:00")]
    assert c.events[0].values["if.wan.name"] == "pppoe-out1"


def test_wan_degraded_needs_loss_for_the_minimum_time_and_not_after_an_outage():
    c = Clinic()
    good = {"wan__up": True, "wan__latency_ms": 90.0, "target__a__up": True, "target__b__up": True}
    lossy = dict(good, target__b__up=False)          # 50 % of the probes lost
    # Loss over the 5-minute window stays at 20 % or more until 08:03:30: less than 5 minutes.
    c.polls("wan", "08:01:30", every=30, **lossy)
    c.polls("wan", "08:10:00", every=30, **good)
    assert c.events == []
    # An outage: loss while down is "down", and the link is not degraded once back.
    c.polls("wan", "08:20:00", every=30, wan__up=False, target__a__up=False, target__b__up=False)
    c.polls("wan", "08:40:00", every=30, **good)
    assert [e.cond for e in c.events] == ["wan_down", "wan_down"]
    c.polls("wan", "08:50:00", every=30, **lossy)
    assert [e.cond for e in c.events][-1] == "wan_degraded"
    # From when the loss over the last 5 minutes reached 20 % (5 of 22 probes lost).
    assert c.events[-1].kind == "raise" and hms(c.events[-1].start) == "08:42:00"
    assert c.events[-1].values["loss_pct"] == 22.7


def test_wan_degraded_by_latency():
    c = Clinic()
    c.polls("wan", "08:10:00", every=30, wan__up=True, wan__latency_ms=2500.0,
            target__a__up=True)
    assert [(e.kind, e.cond) for e in c.events] == [("raise", "wan_degraded")]


def test_agent_disk_buffer_and_clock_conditions():
    c = Clinic()
    c.polls("pc", "08:03:00", every=60, disk__percent=93.0, disk__free_bytes=10**9)
    c.polls("pc", "08:06:00", every=60, disk__percent=80.0)
    c.poll("agent", buffer__dropped_total=0, clock__suspect=False, clock__steps_total=0)
    c.after(30).poll("agent", buffer__dropped_total=500, clock__suspect=True,
                     clock__steps_total=1)
    c.polls("agent", hms(c.now + 900), every=30, buffer__dropped_total=500, clock__suspect=False,
            clock__steps_total=1)
    assert [(e.kind, e.cond) for e in c.events] == [
        ("raise", "disk_full"), ("clear", "disk_full"),
        ("raise", "buffer_dropping"), ("raise", "clock_stepped"),
        ("clear", "clock_stepped"), ("clear", "buffer_dropping")]
    assert c.events[2].values["increase"] == 500
    # clock.suspect for one poll (30 s) is under clock_unsynced.raise_after_s (60 s).
    assert not c.told(cond="clock_unsynced")


def test_clock_flags_of_the_readings_travel_with_the_event():
    c = Clinic()
    c.poll("ups", flags=1, **UPS_ON_BATTERY)
    c.after(10).poll("ups", **UPS_ON_BATTERY)
    assert c.events[0].flags == 1


def test_per_device_rules_override_the_sites():
    cfg = events_cfg(voltage={"low_raise_pct": 85},
                     devices={"ups": {"voltage": {"nominal_ln_v": 220}}})
    c = Clinic(cfg)
    c.polls("ups", "08:01:00", every=5, **dict(UPS_ON_MAINS, input__voltage=127.0))
    c.polls("meter", "08:02:00", every=5, voltage__l1=110.0)     # 86.6 %: fine at this site
    assert [(e.dev, e.cond) for e in c.events] == [("ups", "voltage_low")]


def test_a_disabled_rule_tells_nothing():
    c = Clinic(events_cfg(mains_lost={"enabled": False}))
    c.polls("ups", "08:01:00", every=5, **UPS_ON_BATTERY)
    assert not c.told(cond="mains_lost")


# -- restarts and power cuts -------------------------------------------------------------------

def test_restart_mid_outage_raises_nothing_twice_and_closes_the_same_outage():
    c = Clinic()
    c.polls("ups", "14:03:00", every=10, **UPS_ON_MAINS)
    c.polls("ups", "14:10:00", every=10, **UPS_ON_BATTERY)
    c.restart(downtime_s=20)                      # a crash; systemd starts it again
    c.polls("ups", "14:30:00", every=10, **UPS_ON_BATTERY)
    c.polls("ups", "14:35:00", every=10, **UPS_ON_MAINS)
    assert summary(c) == [("raise", "mains_lost", "14:03:00", None),
                          ("clear", "mains_lost", "14:03:00", "14:30:00")]
    assert c.events[1].id == 2 and not c.events[1].est


def test_agent_killed_during_an_outage_that_ends_while_it_is_down_uses_the_ups_counter():
    c = Clinic()
    total = 90061
    c.polls("ups", "14:03:00", every=10, **UPS_ON_MAINS, on_battery__total_s=total)
    c.at("14:03:00").poll("ups", **UPS_ON_BATTERY, on_battery__total_s=total)
    c.polls("ups", "14:10:00", every=10, **UPS_ON_BATTERY, on_battery__total_s=total)
    c.restart(downtime_s=30 * 60)                 # down 30 min; the outage ended at 14:20
    c.poll("ups", **UPS_ON_MAINS, on_battery__total_s=total + 17 * 60)
    raises, clears = c.told("raise"), c.told("clear")
    assert len(raises) == 1 and len(clears) == 1
    assert hms(clears[0].end) == "14:20:00" and clears[0].dur_s == 17 * 60
    assert not clears[0].est


def test_power_cut_of_the_pc_mid_outage_closes_one_outage_at_the_boot_estimated():
    c = Clinic()
    c.polls("ups", "14:03:00", every=10, **UPS_ON_MAINS)
    c.polls("ups", "14:40:00", every=10, **UPS_ON_BATTERY)    # then the UPS ran out
    boot = wall("15:20:00")                                   # mains back, PC boots
    c.restart(host_boot=boot, downtime_s=41 * 60 + 30)        # first poll at 15:21:30
    c.polls("ups", "15:30:00", every=10, **UPS_ON_MAINS)
    assert summary(c) == [("raise", "mains_lost", "14:03:00", None),
                          ("clear", "mains_lost", "14:03:00", "15:20:00")]
    clear = c.events[1]
    assert clear.est and clear.dur_s == 77 * 60
    assert clear.values["evidence.host_boot"] == boot
    assert hms(clear.values["evidence.last_seen"]) == "14:39:50"
    assert c.engine.active() == []


def test_power_cut_of_the_pc_ends_the_outage_at_the_boot_not_when_the_ups_counter_stopped():
    # The UPS counted its time on battery until the battery ran out (14:40:30), and the PC went
    # off with it; the mains came back at 15:20 and the PC booted. Found by the end-to-end test.
    c = Clinic()
    total = 90061
    c.polls("ups", "14:03:00", every=10, **UPS_ON_MAINS, on_battery__total_s=total)
    c.polls("ups", "14:40:00", every=10, **UPS_ON_BATTERY, on_battery__total_s=total)
    boot = wall("15:20:00")
    c.restart(host_boot=boot, downtime_s=41 * 60 + 30)
    c.poll("ups", **UPS_ON_MAINS, on_battery__total_s=total + 37 * 60 + 30)
    [clear] = c.told("clear")
    assert clear.est and clear.end == boot and clear.dur_s == 77 * 60
    assert clear.values["evidence.on_battery_s"] == 37 * 60 + 30
    assert clear.values["evidence.host_boot"] == boot


def test_a_pc_rebooted_during_an_outage_leaves_the_ups_counter_exact():
    c = Clinic()
    total = 90061
    c.polls("ups", "14:03:00", every=10, **UPS_ON_MAINS, on_battery__total_s=total)
    c.polls("ups", "14:10:00", every=10, **UPS_ON_BATTERY, on_battery__total_s=total)
    c.restart(host_boot=wall("14:12:00"), downtime_s=10 * 60)     # an update; still on battery
    c.poll("ups", **UPS_ON_MAINS, on_battery__total_s=total + 15 * 60)
    [clear] = c.told("clear")
    assert not clear.est and hms(clear.end) == "14:18:00"


def test_power_cut_without_a_boot_time_is_bounded_by_the_ups_runtime():
    c = Clinic()
    c.polls("ups", "14:10:00", every=10, **dict(UPS_ON_BATTERY, battery__runtime_s=600))
    c.restart(downtime_s=3600)
    c.poll("ups", **UPS_ON_MAINS)
    clear = c.told("clear")[0]
    assert clear.est and hms(clear.end) == "14:19:50"        # last poll + 600 s of runtime


def test_an_outage_still_on_after_a_power_cut_goes_on_as_the_same_outage():
    c = Clinic()
    c.polls("ups", "14:10:00", every=10, **UPS_ON_BATTERY)
    c.restart(host_boot=wall("14:15:00"), downtime_s=6 * 60)
    c.polls("ups", "14:30:00", every=10, **UPS_ON_BATTERY)
    assert [e.kind for e in c.events] == ["raise"]


def test_event_ids_never_repeat_across_restarts():
    c = Clinic()
    c.polls("ups", "08:01:00", every=10, **UPS_ON_BATTERY)
    state = c.engine.snapshot()
    from agent.events.engine import EventEngine, RestartEvidence
    engine = EventEngine(c.cfg)
    engine.restore(state, RestartEvidence(), id_floor=40)     # ids up to 39 already stored
    c.engine = engine
    c.polls("ups", "08:02:00", every=10, **UPS_ON_MAINS)
    assert [e.id for e in c.events] == [1, 40]


def test_devices_removed_from_the_config_have_their_conditions_closed():
    c = Clinic()
    c.polls("ups", "08:01:00", every=10, **UPS_ON_BATTERY)
    closed = c.engine.drop_devices(["meter"], wall("08:01:00"))
    assert [(e.kind, e.est) for e in closed] == [("clear", True)]
    assert c.engine.active() == []


def test_log_line_names_the_event():
    c = Clinic()
    c.polls("ups", "08:01:00", every=10, **UPS_ON_BATTERY)
    line = describe(c.events[0])
    assert line.startswith("event 1 raise ups mains_lost: start ")
    assert "on_battery=True" in line


@pytest.mark.parametrize("cond", ["battery_replace", "ups_fault"])
def test_ups_flags(cond):
    metric = {"battery_replace": "replace_battery", "ups_fault": "fault"}[cond]
    c = Clinic()
    c.polls("ups", "08:02:00", every=10, **{**UPS_ON_MAINS, metric: True})
    c.polls("ups", "08:04:00", every=10, **{**UPS_ON_MAINS, metric: False})
    assert [(e.kind, e.cond) for e in c.events] == [("raise", cond), ("clear", cond)]


def test_overload_and_bypass():
    c = Clinic()
    c.polls("ups", "08:01:00", every=5, **UPS_ON_MAINS, output__load_pct=104, mode="bypass")
    c.polls("ups", "08:02:00", every=5, **UPS_ON_MAINS, output__load_pct=95, mode="online")
    assert [a.cond for a in c.engine.active()] == ["overload"]   # 95 % is between the levels
    c.polls("ups", "08:03:00", every=5, **UPS_ON_MAINS, output__load_pct=80, mode="online")
    assert [(e.kind, e.cond) for e in c.events] == [
        ("raise", "overload"), ("raise", "bypass"), ("clear", "bypass"), ("clear", "overload")]


def test_a_clock_step_during_an_outage_does_not_change_its_duration():
    c = Clinic(start="14:00:00")
    c.polls("ups", "14:10:00", every=10, **UPS_ON_BATTERY)
    # NTP comes back and sets the clock 2 hours ahead; the monotonic clock goes on as before.
    c.now += 2 * 3600
    c.origin += 2 * 3600
    c.polls("ups", "16:20:00", every=10, **UPS_ON_MAINS)
    clear = c.told("clear")[0]
    assert clear.dur_s == 10 * 60 and clear.flags & 2
    assert hms(clear.end) == "16:10:00"
