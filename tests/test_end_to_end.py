"""The whole agent against a simulated clinic: snmpd as the router, a pymodbus UPS and meter, the PC."""

from __future__ import annotations

import socket

from consumer import latest, readings_from, unique_by_seq
from helpers import free_port, wait_until


def clinic_config(broker_port: int, state_dir, devices: str) -> str:
    return f"""
site_id = "DFSSA001234"
state_dir = "{state_dir}"
[mqtt]
host = "127.0.0.1"
port = {broker_port}
tls = false
reconnect_max_s = 1
{devices}
[[devices]]
name = "pc"
kind = "host"
interval_s = 0.5
"""


def fast(devices_toml: str) -> str:
    return devices_toml.replace("interval_s = 10", "interval_s = 0.5").replace(
        "timeout_s = 2", "timeout_s = 0.4")


def test_router_ups_meter_and_pc_readings_arrive_with_the_right_values(
        broker, recorder, agent_process, snmpd, modbus_server, tmp_path):
    devices = snmpd.device_toml(interval_s=0.5, timeout_s=0.4) + "\n" + fast(modbus_server.devices_toml())
    agent = agent_process(clinic_config(broker.port, tmp_path / "state", devices))

    def complete():
        got = readings_from(recorder.snapshot())
        need = [("router", "system.name"), ("router", "if.lo.oper_up"), ("router", "if.lo.in_bps"),
                ("ups", "input.voltage"), ("ups", "on_battery"), ("meter", "power"),
                ("pc", "mem.percent")]
        return all(latest(got, d, m) for d, m in need) and got
    got = wait_until(complete, timeout=30, what="readings from all four devices")
    unique_by_seq(got)   # every reading validated against the schema, one per seq
    assert latest(got, "router", "system.name").value == snmpd.sys_name
    assert latest(got, "router", "if.lo.oper_up").value is True
    assert latest(got, "router", "system.uptime_s").value > 0
    assert latest(got, "ups", "input.voltage").value == 127.0
    assert latest(got, "ups", "battery.charge").value == 100
    assert latest(got, "ups", "mode").value == "online"
    assert latest(got, "ups", "on_battery").value is False
    assert latest(got, "ups", "model").value == "SIM-UPS 1500VA"
    assert latest(got, "meter", "voltage").value == 127.0
    assert latest(got, "meter", "power").value == 513.25
    for device in ("router", "ups", "meter", "pc"):
        assert latest(got, device, "poll.status").value == "ok", device
    # Power cut at the clinic: the UPS says so, and it reaches the centre.
    modbus_server.set_outage(True)
    wait_until(lambda: (r := latest(readings_from(recorder.snapshot()), "ups", "on_battery"))
               and r.value is True, timeout=15, what="on_battery to be reported")
    assert "Traceback" not in agent.log()


def test_failing_devices_get_a_reason_and_do_not_hold_up_the_others(
        broker, recorder, agent_process, modbus_server, tmp_path):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # takes requests, never answers
    silent.bind(("127.0.0.1", 0))
    dead_udp = silent.getsockname()[1]
    refused_tcp = free_port()        # nothing listens there: connection refused
    devices = f"""
[[devices]]
name = "router"
kind = "snmp"
host = "127.0.0.1"
port = {dead_udp}
community = "public-clinic"
interval_s = 0.5
timeout_s = 0.3
retries = 0

[[devices]]
name = "gateway"
kind = "modbus"
host = "127.0.0.1"
port = {refused_tcp}
interval_s = 0.5
timeout_s = 0.3
  [[devices.registers]]
  name = "input.voltage"
  address = 0
  table = "input"

[[devices]]
name = "wrongmap"
kind = "modbus"
host = "127.0.0.1"
port = {modbus_server.port}
unit_id = 1
interval_s = 0.5
timeout_s = 0.3
  [[devices.registers]]
  name = "input.voltage"
  address = 500
  table = "input"
""" + fast(modbus_server.devices_toml())
    agent = agent_process(clinic_config(broker.port, tmp_path / "state", devices))

    def statuses():
        got = readings_from(recorder.snapshot())
        found = {d: latest(got, d, "poll.status") for d in ("router", "gateway", "wrongmap", "ups", "pc")}
        return all(found.values()) and (got, found)
    got, found = wait_until(statuses, timeout=30, what="a status from every device")
    assert found["router"].value == "timeout"
    assert "is SNMP enabled" in latest(got, "router", "poll.reason").value
    assert found["gateway"].value == "refused"
    assert "nothing listening" in latest(got, "gateway", "poll.reason").value
    assert found["wrongmap"].value == "bad_answer"
    assert "illegal data address" in latest(got, "wrongmap", "poll.reason").value
    assert found["ups"].value == "ok" and found["pc"].value == "ok"
    # The healthy devices keep their pace despite the dead ones (0.5 s interval, 0.3 s timeouts).
    wait_until(lambda: len([r for _, r in readings_from(recorder.snapshot())
                            if r.device == "ups" and r.metric == "poll.status"]) >= 6,
               timeout=10, what="the UPS to keep being polled")
    assert "Traceback" not in agent.log()
    silent.close()
