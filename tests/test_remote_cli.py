"""The operator's ``clinic-agent fleet ...`` and the technician's ``clinic-agent config ...``,
against a real agent and Mosquitto with passwords and the ACL template."""

from __future__ import annotations

import json
import os
import stat
import time

from agent.cli import main
from agent.remote.envelope import open_envelope
from consumer import validate
from fixtures.agent_proc import AgentProcess
from fixtures.secure_broker import OPERATOR
from helpers import free_port, wait_until
from remote_support import Operator, pushed_config, site_config

SITE = "SITE001"


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def broker_args(broker, tmp_path) -> list:
    pw = tmp_path / "operator.password"
    pw.write_text(broker.passwords[OPERATOR] + "\n")
    return ["--broker", f"127.0.0.1:{broker.port}", "--username", OPERATOR, "--password-file", pw]


def failing_ups(port: int) -> str:
    return f"""
[[devices]]
name = "ups"
kind = "modbus"
host = "127.0.0.1"
port = {port}
unit_id = 1
interval_s = 0.5
timeout_s = 0.3
  [[devices.registers]]
  name = "battery.charge"
  table = "input"
  address = 4
  type = "uint16"
"""


def test_fleet_keygen_sign_push_command_and_status(secure_broker, tmp_path, capsys):
    keys = tmp_path / "ops-keys"
    code, out, _ = cli(capsys, "fleet", "keygen", "--dir", keys, "--name", "ops")
    assert code == 0
    key, pub = keys / "ops.key", keys / "ops.pub"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert "PRIVATE" not in out and key.read_text().split("\n")[1] not in out
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    (trusted / "ops.pub").write_bytes(pub.read_bytes())
    assert cli(capsys, "fleet", "keygen", "--dir", keys, "--name", "ops")[0] == 2, "never overwrite"

    dead = free_port()
    local = site_config(state_dir=tmp_path / "state", port=secure_broker.port,
                        password=secure_broker.passwords[SITE], keys_dir=trusted,
                        status_interval_s=0.5, extra_devices=failing_ups(dead))
    agent = AgentProcess(tmp_path, local).start()
    barg = broker_args(secure_broker, tmp_path)
    try:
        config = tmp_path / "fleet.toml"
        config.write_text(pushed_config(port=secure_broker.port, interval=0.5, status_interval_s=0.5)
                          + failing_ups(dead))
        envelope = tmp_path / "v3.json"
        code, _, err = cli(capsys, "fleet", "sign", config, "--key", key, "--site", SITE,
                           "--version", 3, "-o", envelope)
        assert code == 0 and "config v3" in err
        assert open_envelope(envelope.read_bytes().strip()).payload.sites == (SITE,)

        code, out, _ = cli(capsys, "fleet", "push", "--signed", envelope, *barg, "--wait", 20)
        assert code == 0, out
        assert f"{SITE}: applied" in out

        # Signed and pushed in one go, to a site that answers and one that does not.
        code, out, _ = cli(capsys, "fleet", "push", config, "--key", key, "--site", SITE,
                           "--site", "SITE002", "--version", 20, *barg, "--wait", 3)
        assert code == 1
        assert f"{SITE}: applied" in out and "SITE002: no answer" in out

        code, out, _ = cli(capsys, "fleet", "command", "diagnostics", "--key", key, "--site", SITE,
                           *barg)
        assert code == 0, out
        assert json.loads(out)[SITE]["ok"] is True

        code, out, err = cli(capsys, "fleet", "status", *barg, "--json", "--listen", 15)
        assert code == 0
        rows = {r["site"]: r for r in json.loads(out)}
        row = rows[SITE]
        assert row["state"] == "online" and row["config_source"] == "push"
        assert row["config_version"] == 20 and row["config_state"] == "applied"
        assert isinstance(row["backlog"], int)
        assert any(p.startswith("ups: refused") for p in row["problems"]), row["problems"]
        assert time.time() - row["last_seen"] < 30
        assert "SITE002" not in rows, "a site that never published is not listed"

        code, out, _ = cli(capsys, "fleet", "status", *barg, "--listen", 0)
        assert code == 0
        header, line = out.splitlines()[:2]
        assert header.split()[:2] == ["SITE", "STATE"]
        assert line.split()[:2] == [SITE, "online"] and "v20" in line
    finally:
        agent.stop()
    code, out, _ = cli(capsys, "fleet", "status", *barg, "--json", "--listen", 0)
    assert {r["site"]: r for r in json.loads(out)}[SITE]["state"] == "offline"


def test_fleet_push_refused_by_the_acl_for_a_clinics_credentials(secure_broker, tmp_path, capsys):
    op = Operator(tmp_path)
    config = tmp_path / "fleet.toml"
    config.write_text(pushed_config(port=secure_broker.port))
    pw = tmp_path / "site.password"
    pw.write_text(secure_broker.passwords[SITE])
    code, _, err = cli(capsys, "fleet", "push", config, "--key", op.key_path, "--site", "SITE002",
                       "--broker", f"127.0.0.1:{secure_broker.port}", "--username", SITE,
                       "--password-file", pw)
    assert code == 1 and "refused" in err
    assert secure_broker.passwords[SITE] not in err


def _state(recorder) -> list[dict]:
    docs = [json.loads(m.payload) for m in recorder.snapshot()
            if m.topic == f"clinics/{SITE}/config/state" and m.payload]
    for doc in docs:
        validate("config_state", doc)
    return docs


def test_technician_sees_the_push_compares_it_and_goes_back_to_the_local_file(
        secure_broker, operator_recorder, tmp_path, capsys):
    op = Operator(tmp_path)
    local_path = tmp_path / "agent.toml"
    agent = AgentProcess(tmp_path, site_config(state_dir=tmp_path / "state", port=secure_broker.port,
                                               password=secure_broker.passwords[SITE],
                                               keys_dir=op.keys_dir)).start()
    try:
        code, out, _ = cli(capsys, "config", "show-pushed", "-c", local_path)
        assert code == 0 and "No config has been pushed" in out

        text = pushed_config(port=secure_broker.port, interval=0.5,
                             extra='[[devices]]\nname = "pc2"\nkind = "host"\n')
        ops = secure_broker.client(OPERATOR)
        ops.publish(f"clinics/{SITE}/config/set", op.push(text, version=3), retain=True)
        wait_until(lambda: any((d.get("event") or {}).get("type") == "applied" for d in _state(operator_recorder)),
                   what="the push applied")

        code, out, _ = cli(capsys, "config", "show-pushed", "-c", local_path)
        assert code == 0
        assert "In effect: pushed config v3" in out and op.key_id in out and "in effect" in out
        assert text.strip() in out
        code, out, _ = cli(capsys, "config", "show-pushed", "-c", local_path, "--json")
        assert json.loads(out)["pushed_config"] == text

        code, out, _ = cli(capsys, "config", "diff", "-c", local_path)
        assert code == 1
        assert "+interval_s = 0.5" in out and "-interval_s = 0.2" in out and '+name = "pc2"' in out
        assert '-site_id = "SITE001"' in out   # shown, and explained: it always comes from the site

        since = time.time()
        code, out, _ = cli(capsys, "config", "use-local", "-c", local_path)
        assert code == 0 and "set aside" in out and f"pid {agent.proc.pid}" in out
        doc = wait_until(lambda: next((d for d in _state(operator_recorder) if d["ts"] >= since
                                       and d["state"] == "local"), None), what="the local file reported")
        assert doc["set_aside"]["version"] == 3 and doc["event"]["type"] == "set_aside"
        assert doc["config"]["source"] == "local"
        wait_until(lambda: "configuration applied: 1 device(s)" in agent.log(), what="local file applied")

        code, out, _ = cli(capsys, "config", "show-pushed", "-c", local_path)
        assert "In effect: the local file" in out and "set aside on site" in out
        assert cli(capsys, "config", "use-local", "-c", local_path)[1].startswith("Already using")

        # Set aside survives a restart: the retained push is not taken up again.
        agent.stop()
        agent.start()
        since = time.time()
        wait_until(lambda: any(d["ts"] >= since and d["state"] == "local" for d in _state(operator_recorder)),
                   what="the restarted agent on the local file")
        assert agent.log().count("applying pushed config v3") == 1
        ops.close()
    finally:
        agent.stop()
    assert "Traceback" not in agent.log()


def test_config_commands_with_a_broken_local_file(tmp_path, capsys):
    state = tmp_path / "state"
    local = tmp_path / "agent.toml"
    local.write_text(f'site_id = "SITE001"\nstate_dir = "{state}"\n[mqtt]\nport = "x"\n')
    code, out, _ = cli(capsys, "config", "show-pushed", "-c", local)
    assert code == 0 and "No config has been pushed" in out
    code, _, err = cli(capsys, "config", "use-local", "-c", local)
    assert code == 2 and "mqtt.port" in err   # never switch to a file that cannot run
