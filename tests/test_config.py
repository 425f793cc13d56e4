"""Configuration: a technician's mistakes are all reported at once, by key path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import load_config, parse_config
from agent.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent", "validate", str(path)],
                          capture_output=True, text=True, cwd=ROOT)


def example_config(tmp_path: Path) -> Path:
    text = (ROOT / "conf/agent.example.toml").read_text().replace(
        "/etc/clinic-agent/secrets.toml", "secrets.toml")
    (tmp_path / "secrets.toml").write_text((ROOT / "conf/secrets.example.toml").read_text())
    (tmp_path / "agent.toml").write_text(text)
    return tmp_path / "agent.toml"


def test_the_shipped_example_is_valid(tmp_path):
    result = validate(example_config(tmp_path))
    assert result.returncode == 0, result.stderr
    cfg = load_config(tmp_path / "agent.toml")
    assert {d.kind for d in cfg.devices} == {"snmp", "modbus", "host", "wan"}
    assert cfg.remote.enabled and cfg.remote.confirm_timeout_s == 180
    assert cfg.mqtt.tls and cfg.mqtt.password.reveal() == "change-me"


def test_a_malformed_file_lists_every_problem_by_key_path_and_exits_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("""
site_id = "clinic 7"
[mqtt]
host = "broker.example"
port = "1883a"
keepalive = 30
[[devices]]
name = "router"
kind = "snmp"
host = "192.0.2.1"
version = "2c"
community = "x"
[[devices]]
name = "ups"
kind = "modbus"
host = "192.0.2.2"
port = "502a"
[[devices.registers]]
name = "input.voltage"
address = 0
type = "int17"
""")
    result = validate(bad)
    assert result.returncode == 2
    err = result.stderr
    assert 'site_id: expected a site id' in err and '"clinic 7"' in err
    assert 'mqtt.port: expected an integer 1-65535, got "1883a"' in err
    assert "mqtt.keepalive: is not a known setting" in err
    # Device entries are named by their name as well as their index.
    assert 'devices[1] (ups).port: expected an integer 1-65535, got "502a"' in err
    assert 'devices[1] (ups).registers[0] (input.voltage).type: expected one of' in err
    assert '"int17"; did you mean "int16"?' in err
    assert "Traceback" not in err


def test_toml_syntax_error_names_the_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('site_id = "A1"\n[mqtt\nhost = "x"\n')
    result = validate(bad)
    assert result.returncode == 2
    assert "line 2" in result.stderr


def test_secrets_come_from_their_own_file_and_never_show(tmp_path):
    path = example_config(tmp_path)
    cfg = load_config(path)
    router = cfg.device("router")
    assert "change-me" not in repr(cfg)
    assert router is not None and "change-me-auth" not in repr(router)


def test_a_secrets_file_for_an_unknown_device_is_an_error(tmp_path):
    path = example_config(tmp_path)
    (tmp_path / "secrets.toml").write_text('[devices.routr]\ncommunity = "abc"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert any("devices.routr" in p for p in exc.value.problems)
    assert "abc" not in str(exc.value)


def test_duplicate_device_names_are_refused():
    data = {"site_id": "A1", "mqtt": {"host": "h"},
            "devices": [{"name": "pc", "kind": "host"}, {"name": "pc", "kind": "host"}]}
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    assert any(p.startswith("devices[1].name:") and "already used" in p for p in exc.value.problems)
