"""tail and scan driven as a person would: in a terminal (tmux send-keys / capture-pane), with
colour, progress and Ctrl-C; their plain and --json output checked too. Peers on 127.0.0.1 only.
"""

from __future__ import annotations

import pytest

from cli_support import SPANISH, Tmux, agent_config, run_cli, wait_for_agent
from helpers import free_port, wait_until


@pytest.fixture
def tmux(tmp_path):
    t = Tmux(tmp_path)
    yield t
    t.close()


def start_agent(agent_process, tmp_path, broker_port: int, devices_toml: str = ""):
    agent = agent_process(agent_config(tmp_path / "state", broker_port, devices_toml))
    return agent, agent.config


# -- tail (in a terminal) ----------------------------------------------------------------------

def test_tail_streams_live_readings_until_ctrl_c(broker, agent_process, tmp_path, tmux):
    agent, config = start_agent(agent_process, tmp_path, broker.port)
    wait_for_agent(config)
    w = tmux.start(["tail", "-c", config, "pc"], lang=SPANISH)
    tmux.wait_for(w, "Lecturas en vivo")
    screen = tmux.wait_for(w, "cpu.percent")
    assert "pc" in screen and "mem.percent" in tmux.wait_for(w, "mem.percent")
    first = screen.count("cpu.percent")
    wait_until(lambda: tmux.screen(w).count("cpu.percent") > first, timeout=10,
               what="a second poll to scroll by")
    coloured = tmux.screen(w, colours=True)
    assert "\x1b[" in coloured, "colour on a terminal (poll.status in green)"
    tmux.keys(w, "C-c")
    screen = tmux.wait_for(w, "EXIT=0")
    assert "Traceback" not in screen
    assert agent.alive(), "the agent does not care that a watcher left"

    r = run_cli("tail", "-c", config, "nosuch")
    assert r.code == 2 and "nosuch" in r.err


def test_tail_with_no_colour_and_json(broker, agent_process, tmp_path, tmux):
    agent, config = start_agent(agent_process, tmp_path, broker.port)
    wait_for_agent(config)
    w = tmux.start(["tail", "-c", config, "--json"], NO_COLOR="1")
    screen = tmux.wait_for(w, '"metric": "cpu.percent"')
    assert '"device": "pc"' in screen
    assert "\x1b[3" not in tmux.screen(w, colours=True), "NO_COLOR is respected"
    tmux.keys(w, "C-c")
    tmux.wait_for(w, "EXIT=0")

    agent.stop()
    r = run_cli("tail", "-c", config)
    assert r.code == 1 and "not running" in r.err


# -- scan (in a terminal) ----------------------------------------------------------------------

def test_scan_modbus_on_a_serial_line_shows_progress_and_suggests_entries(modbus_rtu_server, tmux,
                                                                        tmp_path):
    config = tmp_path / "none.toml"   # no config: nothing running claims the port
    w = tmux.start(["scan", "modbus", "--port", modbus_rtu_server.client_end, "--baud", "9600",
                    "--parity", "N", "--units", "1-12", "--timeout", "0.25", "-c", config])
    progress = tmux.wait_for(w, "/12")
    assert "[#" in progress or "[." in progress, "a progress bar while it scans"
    screen = tmux.wait_for(w, "EXIT=0", timeout=30)
    assert "2 unit(s) answered" in screen
    assert "9600 8N1" in screen
    assert 'serial_port = "' in screen and "unit_id = 2" in screen
    assert "/12" not in screen.split("2 unit(s) answered")[1], "the progress line is cleared"


def test_scan_modbus_behind_a_gateway_in_spanish_and_json(modbus_server, tmp_path):
    r = run_cli("scan", "modbus", "--host", "127.0.0.1", "--tcp-port", modbus_server.port,
                "-c", tmp_path / "none.toml", lang=SPANISH)
    assert r.code == 0, r
    assert "2 unidad(es) respondieron" in r.out and "Entrada sugerida" in r.out
    doc = run_cli("scan", "modbus", "--host", "127.0.0.1", "--tcp-port", modbus_server.port,
                  "--units", "1-5", "-c", tmp_path / "none.toml", "--json").json
    assert [f["unit"] for f in doc["found"]] == [1, 2]
    # The suggested entry is a valid config as it stands.
    from fixtures.modbus import config_from_toml
    cfg = config_from_toml(doc["found"][0]["suggested_entry"])
    assert cfg.devices[0].settings.unit_id == 1 and cfg.devices[0].settings.port == modbus_server.port

    nobody = run_cli("scan", "modbus", "--host", "127.0.0.1", "--tcp-port", free_port(),
                     "-c", tmp_path / "none.toml")
    assert nobody.code == 1 and "Cannot open" in nobody.out


def test_scan_modbus_refuses_a_serial_port_the_running_agent_polls(broker, modbus_rtu_server,
                                                                  agent_process, tmp_path):
    devices = f"""
[[devices]]
name = "ups"
kind = "modbus"
transport = "rtu"
serial_port = "{modbus_rtu_server.client_end}"
unit_id = 1
interval_s = 5
  [[devices.registers]]
  name = "input.voltage"
  table = "input"
  address = 0
  type = "uint16"
"""
    agent, config = start_agent(agent_process, tmp_path, broker.port, devices)
    wait_for_agent(config)
    r = run_cli("scan", "modbus", "--port", modbus_rtu_server.client_end, "-c", config)
    assert r.code == 1, r
    assert "polls devices on" in r.err and "one master" in r.err


def test_scan_snmp_finds_the_router_and_suggests_an_entry(snmpd, tmux, tmp_path):
    w = tmux.start(["scan", "snmp", "--target", "127.0.0.1", "--port", str(snmpd.port),
                    "--community", snmpd.community, "--timeout", "0.3", "-c", tmp_path / "none.toml"],
                   lang=SPANISH)
    screen = tmux.wait_for(w, "EXIT=0", timeout=30)
    assert snmpd.sys_name in screen and "v2c" in screen
    assert 'kind = "snmp"' in screen and 'host = "127.0.0.1"' in screen
    assert "archivo de secretos" in screen and f'community = "{snmpd.community}"' in screen

    doc = run_cli("scan", "snmp", "--target", "127.0.0.1", "--port", snmpd.port, "--community",
                  snmpd.community, "--timeout", "0.3", "-c", tmp_path / "none.toml", "--json").json
    assert [(f["version"], f["community"], f["sys_name"]) for f in doc["found"]] == \
        [("2c", snmpd.community, snmpd.sys_name)]
    assert "Linux" in doc["found"][0]["sys_descr"] or doc["found"][0]["sys_descr"]
    assert doc["v3"] is True

    silent = run_cli("scan", "snmp", "--target", "127.0.0.1", "--port", snmpd.port,
                     "--timeout", "0.2", "-c", tmp_path / "none.toml")
    assert silent.code == 1 and "No answer with any of the 2 communities" in silent.out
    assert "--community" in silent.out, "the hint says how to try the right one"
