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
    return subprocess.run([sys.executable, "-m", "agent", "validate", "--lang", "en", str(path)],
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


def test_a_password_written_as_a_number_is_never_printed(tmp_path):
    path = example_config(tmp_path)
    (tmp_path / "secrets.toml").write_text("[mqtt]\npassword = 918273645\n")
    result = validate(path)
    assert result.returncode == 2
    assert "mqtt.password: expected a string (in quotes)" in result.stderr
    assert "918273645" not in result.stderr + result.stdout
    with pytest.raises(ConfigError) as exc:        # what a refused reload logs
        load_config(path)
    assert "918273645" not in str(exc.value)


# Each once made tomllib (or code after it) raise RecursionError or ValueError: a traceback.
PATHOLOGICAL = {
    "a list nested 1000 deep": "x = " + "[" * 1000 + "]" * 1000 + "\n",
    "an inline table nested 1000 deep": "x = " + "{a = " * 1000 + "1" + "}" * 1000 + "\n",
    "a table header 1000 deep": "[" + ".".join(["a"] * 1000) + "]\nx = 1\n",
    "an integer of 5000 digits": "x = " + "9" * 5000 + "\n",
    "a hexadecimal integer of 20000 bits": "x = 0x" + "f" * 5000 + "\n",
    "an integer just past 64 bits": f"x = {2**63}\n",
}
PATHOLOGICAL_PROBLEM = {
    "a list nested 1000 deep": "nested more than 16 levels deep",
    "an inline table nested 1000 deep": "nested more than 16 levels deep",
    "a table header 1000 deep": "nested more than 16 levels deep",
    "an integer of 5000 digits": "an integer of thousands of digits (TOML integers are 64-bit",
    "a hexadecimal integer of 20000 bits": "x: an integer outside the 64-bit range TOML allows",
    "an integer just past 64 bits": "x: an integer outside the 64-bit range TOML allows",
}


@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_pathological_toml_is_a_config_error_naming_the_limit(tmp_path, name):
    path = tmp_path / "agent.toml"
    path.write_text('site_id = "A1"\n' + PATHOLOGICAL[name])
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert any(PATHOLOGICAL_PROBLEM[name] in p for p in exc.value.problems), exc.value.problems


@pytest.mark.parametrize("name", ["a list nested 1000 deep", "an integer of 5000 digits"])
def test_validate_lists_pathological_toml_without_a_traceback(tmp_path, name):
    path = tmp_path / "agent.toml"
    path.write_text('site_id = "A1"\n' + PATHOLOGICAL[name])
    result = validate(path)
    assert result.returncode == 2
    assert PATHOLOGICAL_PROBLEM[name] in result.stderr
    assert "Traceback" not in result.stderr


def test_a_pathological_secrets_file_is_a_config_error_that_shows_no_value(tmp_path):
    path = example_config(tmp_path)
    (tmp_path / "secrets.toml").write_text("[mqtt]\npassword = " + "7" * 5000 + "\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert "7777" not in str(exc.value)
    assert "integer of thousands of digits" in str(exc.value)


def test_a_file_larger_than_the_limit_is_refused_before_parsing(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text('site_id = "A1"\n' + "# padding\n" * 120_000)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert "more than the 1048576 a config may have" in exc.value.problems[0]


def test_a_problem_quotes_at_most_a_short_piece_of_a_hostile_line():
    """Found by tests/fuzz/test_fuzz_remote.py: a 10,000-character table name written twice
    used to be quoted whole in the published rejection."""
    from agent.config.syntax import parse_text
    name = ".".join(["site_id"] * 1500)
    doc, problems = parse_text(f'site_id = "A"\n[{name}]\nx = 1\n[{name}]\nx = 2\n')
    assert doc is None and problems
    assert all(len(str(p)) < 400 for p in problems), [len(str(p)) for p in problems]
