"""``status`` puts the clinic's active problems (power, internet) first, in plain words, and exits 1.

The agent's status document carries them (``problems``: the edge events' active set, each
``{"code", "device", "since", "args", "estimated", "flapping"}``, docs/events.md). A stand-in
answering the control protocol (one JSON line per request) with such a document checks the
screen; the last test runs the real agent with a UPS that goes on battery.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
from cli_support import ENGLISH, SPANISH, Result, run_cli
from events_clinic import agent_config, ups_toml
from helpers import wait_until

def status_now() -> dict:
    """The document, with its times taken now (the test may run minutes after collection)."""
    now = time.time()
    return {"site_id": "MCSSA001234", "pid": 4242, "started_at": now - 600,
            "broker": {"connected": True, "broker": "127.0.0.1:8883", "last_ack": now - 3},
            "buffer": {"depth": 0, "dropped_total": 0, "file_bytes": 4096},
            "devices": {"ups": {"kind": "modbus", "status": "ok", "last_ok": now - 5,
                                "last_poll": now - 5}},
            "problems": [{"code": "mains_lost", "device": "ups", "since": now - 300,
                          "args": {"on_battery": True, "battery.runtime_s": 1380},
                          "estimated": False, "flapping": False}]}


@pytest.fixture
def agent_socket(tmp_path):
    """A control socket answering ``status`` with ``status_now()``, as the running agent would."""
    state = tmp_path / "state"
    state.mkdir()
    path = state / "control.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    stop = threading.Event()
    answer = status_now()   # each test may change its own copy

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn, conn.makefile("rwb") as f:
                for line in f:
                    op = json.loads(line)["op"]
                    result = answer if op == "status" else {"held_in_memory": 0}
                    f.write((json.dumps({"ok": True, "result": result}) + "\n").encode())
                    f.flush()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield state, answer
    stop.set()
    thread.join(5)
    server.close()


def config_for(tmp_path: Path, state: Path) -> Path:
    config = tmp_path / "agent.toml"
    config.write_text(f'site_id = "MCSSA001234"\nstate_dir = "{state}"\n[mqtt]\nhost = "127.0.0.1"\n'
                      'tls = false\n[[devices]]\nname = "ups"\nkind = "modbus"\nhost = "127.0.0.1"\n'
                      'profile = "generic-ups"\n')
    return config


def test_an_active_problem_comes_first_and_status_exits_1(agent_socket, tmp_path):
    config = config_for(tmp_path, agent_socket[0])
    since = time.strftime("%H:%M", time.localtime(agent_socket[1]["problems"][0]["since"]))
    r = run_cli("status", "-c", config)
    assert r.code == 1, r
    lines = [line for line in r.out.splitlines() if line.strip()]
    assert lines[1].strip() == (f"ups: no mains power, running on battery since {since} (5 min); "
                                "about 23 min of battery left"), r   # right under the title
    assert "1 problem(s):" in r.out
    es = run_cli("status", "-c", config, lang=SPANISH)
    assert es.code == 1, es
    assert (f"ups: sin luz de la red, funcionando con batería desde las {since} (5 min); "
            "quedan unos 23 min de batería") in es.out, es
    doc = run_cli("status", "-c", config, "--json").json
    assert doc["ok"] is False
    assert [(p["code"], p["device"], p["args"]) for p in doc["active_problems"]] == [
        ("mains_lost", "ups", {"on_battery": True, "battery.runtime_s": 1380})]


def test_a_problem_the_cli_does_not_know_is_shown_by_its_code(agent_socket, tmp_path):
    state, answer = agent_socket
    answer["problems"] = [{"code": "solar_fault.string2", "device": "inverter",
                           "since": time.time() - 60, "args": {}, "flapping": True}]
    r = run_cli("status", "-c", config_for(tmp_path, state))
    assert r.code == 1 and "inverter: solar_fault (string2), coming and going since" in r.out, r


def test_without_active_problems_status_is_fine(agent_socket, tmp_path):
    state, answer = agent_socket
    answer["problems"] = []
    r = run_cli("status", "-c", config_for(tmp_path, state))
    assert r.code == 0 and "Everything is working." in r.out, r


def test_a_real_agent_whose_ups_goes_on_battery(broker, agent_process, modbus_server, tmp_path):
    agent = agent_process(agent_config(tmp_path / "state", broker.port, ups_toml(modbus_server)))
    config = agent.config

    def status(code: int, lang: str = ENGLISH) -> Result | None:
        r = run_cli("status", "-c", config, lang=lang)
        return r if r.code == code else None
    wait_until(lambda: status(0), timeout=30, what="status to say everything works")

    modbus_server.set_outage(True)
    r = wait_until(lambda: status(1), timeout=30, what="status to report the power cut")
    [problem] = run_cli("status", "-c", config, "--json").json["active_problems"]
    assert (problem["code"], problem["device"]) == ("mains_lost", "ups")
    since = time.strftime("%H:%M", time.localtime(problem["since"]))
    lines = [line.strip() for line in r.out.splitlines() if line.strip()]
    assert lines[1].startswith(f"ups: no mains power, running on battery since {since} ("), r
    assert lines[1].endswith("); about 42 min of battery left"), r
    es = status(1, SPANISH)
    assert es is not None, "status in Spanish did not exit 1"
    assert f"ups: sin luz de la red, funcionando con batería desde las {since} (" in es.out, es
    assert "quedan unos 42 min de batería" in es.out, es

    modbus_server.set_outage(False)
    back = wait_until(lambda: status(0), timeout=30, what="status to say the mains is back")
    assert "no mains power" not in back.out
