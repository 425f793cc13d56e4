"""``status`` puts the clinic's active problems (power, internet) first, in plain words, and exits 1.

The edge events that fill the agent's ``problems`` are being built elsewhere; until the daemon
reports them, a stand-in answers the control protocol (one JSON line per request) with a status
document that carries problems, the shape the CLI reads: ``{"code", "device", "since", "args"}``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from cli_support import SPANISH, run_cli

def status_doc() -> dict:
    """The status document, its times relative to now: built when the test runs, not when the
    suite was collected minutes earlier (``since`` must read "5 min ago")."""
    now = time.time()
    return {"site_id": "MCSSA001234", "pid": 4242, "started_at": now - 600,
            "broker": {"connected": True, "broker": "127.0.0.1:8883", "last_ack": now - 3},
            "buffer": {"depth": 0, "dropped_total": 0, "file_bytes": 4096},
            "devices": {"ups": {"kind": "modbus", "status": "ok", "last_ok": now - 5,
                                "last_poll": now - 5}},
            "problems": [{"code": "power.on_battery", "device": "ups", "since": now - 300,
                          "args": {"charge": 80}}]}


@pytest.fixture
def agent_socket(tmp_path):
    """A control socket answering ``status`` with ``status_doc()``, as the running agent would."""
    state = tmp_path / "state"
    state.mkdir()
    path = state / "control.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    stop = threading.Event()
    answer = status_doc()   # each test may change its own copy

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
    r = run_cli("status", "-c", config)
    assert r.code == 1, r
    lines = [line for line in r.out.splitlines() if line.strip()]
    assert "power.on_battery (ups, since 5 min ago)" in lines[1], r   # right under the title
    assert "1 problem(s):" in r.out
    es = run_cli("status", "-c", config, lang=SPANISH)
    assert es.code == 1 and "(ups, desde hace 5 min)" in es.out, es
    doc = run_cli("status", "-c", config, "--json").json
    assert doc["ok"] is False
    assert [(p["code"], p["device"], p["args"]) for p in doc["active_problems"]] == [
        ("power.on_battery", "ups", {"charge": 80})]


def test_without_active_problems_status_is_fine(agent_socket, tmp_path):
    state, answer = agent_socket
    answer["problems"] = []
    r = run_cli("status", "-c", config_for(tmp_path, state))
    assert r.code == 0 and "Everything is working." in r.out, r
