"""The technician's commands against a running agent, real peers on 127.0.0.1, in two languages:
status and its exit codes, poll-once through the agent's control socket (the Modbus gateway sees
one master), buffer and its CSV export. tail and scan, driven in tmux: test_cli_terminal.py.
"""

from __future__ import annotations

import csv
import io
import os
import stat
import time
from datetime import datetime, timezone

import pytest

from cli_support import ENGLISH, SPANISH, agent_config, run_cli, wait_for_agent
from helpers import free_port, wait_until
from agent.readings import Reading
from agent.store.outbox import ReadingStore


def start_agent(agent_process, tmp_path, broker_port: int, devices_toml: str = ""):
    agent = agent_process(agent_config(tmp_path / "state", broker_port, devices_toml))
    return agent, agent.config


# -- status --------------------------------------------------------------------------------------

def test_status_says_everything_works_in_english_and_spanish(broker, modbus_server, agent_process,
                                                             tmp_path):
    agent, config = start_agent(agent_process, tmp_path, broker.port, modbus_server.devices_toml())
    wait_for_agent(config)
    wait_until(lambda: run_cli("status", "-c", config).code == 0, timeout=20,
               what="status to report everything working")
    # The first polls reach the broker about a second after they are stored (the writer's
    # linger): wait for the first acknowledged publish too.
    wait_until(lambda: run_cli("status", "-c", config, "--json").json["broker"]
               .get("last_publish_age_s") is not None, timeout=20, what="the first publish")

    en = run_cli("status", "-c", config, lang=ENGLISH)
    assert en.code == 0, en
    assert "running (pid" in en.out and f"connected to 127.0.0.1:{broker.port}" in en.out
    assert "Everything is working." in en.out
    for name in ("pc", "ups", "meter"):
        assert name in en.out
    assert "local file" in en.out and "\x1b[" not in en.out, "no colour when not a terminal"

    es = run_cli("status", "-c", config, lang=SPANISH)
    assert es.code == 0, es
    assert "en marcha (pid" in es.out and "conectado a 127.0.0.1" in es.out
    assert "Todo funciona." in es.out and "ÚLTIMA LECTURA BUENA" in es.out

    doc = run_cli("status", "-c", config, "--json").json
    assert doc["ok"] is True and doc["agent"]["running"] is True
    assert doc["agent"]["pid"] == agent.proc.pid
    assert doc["broker"]["connected"] is True and doc["broker"]["last_publish_age_s"] < 10
    assert {d["name"]: d["status"] for d in doc["devices"]} == {"pc": "ok", "ups": "ok", "meter": "ok"}
    assert all(d["last_ok_age_s"] < 30 for d in doc["devices"])
    assert set(doc["buffer"]) >= {"depth", "oldest_age_s", "dropped_total", "file_bytes", "rejected"}
    assert doc["config"] == {"file": str(config), "valid": True, "problems": [], "source": "local",
                             "version": None, "state": "local"}


def test_status_exit_code_says_what_is_wrong(broker, modbus_server, agent_process, tmp_path):
    dead = free_port()   # nothing listens: the "ups" here is switched off
    devices = modbus_server.devices_toml().replace(f"port = {modbus_server.port}", f"port = {dead}", 1)
    agent, config = start_agent(agent_process, tmp_path, broker.port, devices)
    wait_for_agent(config)
    sock = tmp_path / "state" / "control.sock"
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660, "the control socket is group-only"

    r = run_cli("status", "-c", config)
    assert r.code == 1, r
    assert "device ups: refused" in r.out and "What to check:" in r.out
    assert "gateway" in r.out, "the hint for a Modbus device nobody listens for"
    es = run_cli("status", "-c", config, lang=SPANISH)
    assert es.code == 1 and "equipo ups: rechazado" in es.out and "Qué revisar:" in es.out

    broker.stop()
    wait_until(lambda: run_cli("status", "-c", config, "--json").json["broker"]["connected"] is False,
               timeout=20, what="the agent to notice the broker is gone")
    r = run_cli("status", "-c", config)
    assert r.code == 1 and "NOT connected" in r.out and "not connected to the broker" in r.out

    assert agent.stop() == 0
    assert not sock.exists(), "a clean stop removes the control socket"
    r = run_cli("status", "-c", config)
    assert r.code == 1 and "not running" in r.out and "systemctl start clinic-agent" in r.out
    assert "waiting" in r.out or "nothing waiting" in r.out, "the buffer is read from its file"
    es = run_cli("status", "-c", config, lang=SPANISH)
    assert es.code == 1 and "el agente no está en marcha" in es.out


def test_status_shows_a_pushed_config_version(broker, agent_process, tmp_path):
    agent, config = start_agent(agent_process, tmp_path, broker.port)
    wait_for_agent(config)
    # What agent/remote writes when a signed push is in effect (only the fields status reads).
    (tmp_path / "state" / "remote_state.json").write_text(
        '{"highest_version": 7, "active": {"version": 7, "applied_at": 1790000000}, '
        '"confirming": {"version": 7, "since": 1790000000, "timeout_s": 120}}')
    r = run_cli("status", "-c", config)
    assert "pushed version 7 (waiting for confirmation)" in r.out, r
    es = run_cli("status", "-c", config, lang=SPANISH)
    assert "versión 7 enviada de forma remota (esperando confirmación)" in es.out, es
    assert run_cli("status", "-c", config, "--json").json["config"]["version"] == 7


# -- poll-once -----------------------------------------------------------------------------------

def test_poll_once_asks_the_running_agent_instead_of_opening_a_second_connection(
        broker, modbus_server, agent_process, tmp_path):
    agent, config = start_agent(agent_process, tmp_path, broker.port, modbus_server.devices_toml())
    wait_for_agent(config)
    assert modbus_server.connections == 1, "the agent's one connection to the gateway"
    before = modbus_server.request_count(unit=1)

    r = run_cli("poll-once", "ups", "-c", config, "--json")
    assert r.code == 0, r
    [ups] = r.json
    assert ups["device"] == "ups" and ups["status"] == "ok"
    values = {x["metric"]: x["value"] for x in ups["readings"]}
    assert values["input.voltage"] == pytest.approx(127.0)
    assert modbus_server.request_count(unit=1) > before, "the agent polled the UPS for us"
    assert modbus_server.connections == 1, "and the CLI opened no connection of its own"

    es = run_cli("poll-once", "-c", config, lang=SPANISH)
    assert es.code == 0, es
    assert "consultado al agente en marcha" in es.out
    assert "ups (modbus): BIEN" in es.out and "meter (modbus): BIEN" in es.out and "pc (host): BIEN" in es.out
    assert modbus_server.connections == 1

    bad = run_cli("poll-once", "nosuch", "-c", config)
    assert bad.code == 2 and "nosuch" in bad.err and "ups" in bad.err

    agent.stop()
    direct = run_cli("poll-once", "ups", "-c", config)
    assert direct.code == 0, direct
    assert "the agent is not running: polled the devices directly" in direct.out
    assert modbus_server.connections == 2, "without the agent the CLI connects itself"


def test_poll_once_reports_a_failing_device_with_exit_1(broker, modbus_server, agent_process, tmp_path):
    agent, config = start_agent(agent_process, tmp_path, broker.port, modbus_server.devices_toml())
    wait_for_agent(config)
    modbus_server.set_exception(2, 4)   # the meter answers "server device failure"
    r = run_cli("poll-once", "meter", "-c", config)
    assert r.code == 1, r
    assert "meter (modbus): BAD ANSWER" in r.out or "meter (modbus): ERROR" in r.out \
        or "meter (modbus): REFUSED" in r.out, r


# -- buffer --------------------------------------------------------------------------------------

def test_buffer_stats_and_csv_export_while_the_agent_runs_and_after(agent_process, tmp_path):
    dead_broker = free_port()   # nothing listens: readings pile up in the buffer
    started = time.time()
    agent, config = start_agent(agent_process, tmp_path, dead_broker)
    state = tmp_path / "state"
    wait_until(lambda: run_cli("buffer", "-c", config, "--json").code == 0
               and run_cli("buffer", "-c", config, "--json").json["depth"] > 30,
               timeout=20, what="readings to pile up")

    doc = run_cli("buffer", "-c", config, "--json").json
    assert doc["agent_running"] is True and doc["oldest_age_s"] >= 0
    assert doc["dropped_total"] == 0 and doc["rejected"] == 0 and doc["file_bytes"] > 0
    en = run_cli("buffer", "-c", config)
    assert "Waiting" in en.out and "Dropped" in en.out and "Set aside" in en.out
    es = run_cli("buffer", "-c", config, lang=SPANISH)
    assert "En espera" in es.out and "Descartadas" in es.out and "Apartadas" in es.out

    frm = datetime.fromtimestamp(started - 1, timezone.utc).isoformat()
    to = datetime.fromtimestamp(time.time() + 60, timezone.utc).isoformat()
    out = tmp_path / "export.csv"
    r = run_cli("buffer", "export", "-c", config, "--from", frm, "--to", to, "--csv", out)
    assert r.code == 0, r
    rows = list(csv.DictReader(out.open()))
    assert len(rows) >= 30 and "exported to" in r.err
    assert set(rows[0]) == {"seq", "time_utc", "ts", "device", "metric", "value", "unit", "flags"}
    seqs = [int(x["seq"]) for x in rows]
    assert seqs == sorted(seqs)
    assert {x["metric"] for x in rows if x["device"] == "pc"} >= {"cpu.percent", "poll.status"}
    assert {x["value"] for x in rows if x["metric"] == "mqtt.connected"} == {"false"}

    agent.stop()
    leftovers = sorted(p.name for p in state.iterdir())
    mid = float(rows[len(rows) // 2]["ts"])
    r = run_cli("buffer", "export", "-c", config, "--from",
                datetime.fromtimestamp(mid, timezone.utc).isoformat(), "--csv", "-")
    later = list(csv.DictReader(io.StringIO(r.out)))
    assert r.code == 0 and later and all(float(x["ts"]) >= mid for x in later)
    assert sorted(p.name for p in state.iterdir()) == leftovers, \
        "reading a stopped agent's buffer leaves no -wal/-shm files behind"

    bad = run_cli("buffer", "export", "-c", config, "--from", "yesterday", "--csv", "-",
                  lang=SPANISH)
    assert bad.code == 2 and "no es una fecha" in bad.err


def test_buffer_counts_readings_the_broker_refused_and_exports_them(tmp_path):
    state = tmp_path / "state"
    config = tmp_path / "agent.toml"
    config.write_text(agent_config(state, free_port()))
    store = ReadingStore.open(state / "buffer.sqlite")
    first, last = store.commit([Reading("ups", f"m{i}", i == 1, "", 1_790_000_000 + i) for i in range(4)])
    store.set_aside([(first, first + 1)], "refused by the broker: payload format invalid")
    store.close()

    doc = run_cli("buffer", "-c", config, "--json").json
    assert (doc["depth"], doc["rejected"], doc["agent_running"]) == (2, 2, False)
    r = run_cli("buffer", "export", "-c", config, "--rejected", "--csv", "-")
    rows = list(csv.DictReader(io.StringIO(r.out)))
    assert [(x["metric"], x["value"], x["why"]) for x in rows] == [
        ("m0", "false", "refused by the broker: payload format invalid"),
        ("m1", "true", "refused by the broker: payload format invalid")]
    assert rows[0]["time_utc"] == "2026-09-21T14:13:20.000Z"


def test_a_buffer_held_by_an_agent_that_does_not_answer_is_explained_in_both_languages(tmp_path):
    """The agent holds its buffer exclusively; with no agent answering on the configured socket
    (e.g. one started with another config), the CLI says so instead of a bare "locked"."""
    state = tmp_path / "state"
    config = tmp_path / "agent.toml"
    config.write_text(agent_config(state, free_port()))
    holder = ReadingStore.open(state / "buffer.sqlite")      # as a running agent holds it
    try:
        en = run_cli("buffer", "-c", config)
        assert en.code == 1 and "a running agent holds it" in en.err and "control.sock" in en.err
        es = run_cli("events", "-c", config, lang=SPANISH)
        assert es.code == 1 and "un agente en marcha lo tiene abierto" in es.err
        out = tmp_path / "export.csv"
        ex = run_cli("buffer", "export", "-c", config, "--csv", out)
        assert ex.code == 1 and "a running agent holds it" in ex.err and not out.exists()
    finally:
        holder.close()
    doc = run_cli("buffer", "-c", config, "--json").json     # stopped: the file is read
    assert (doc["agent_running"], doc["depth"]) == (False, 0)
