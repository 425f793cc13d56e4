"""The [events] section: defaults for a Mexican clinic, overrides, and bad thresholds refused
by `clinic-agent validate` with their key path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import load_config, parse_config
from agent.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
BASE = """
site_id = "DFSSA001234"
[mqtt]
host = "broker.example"
tls = false
[[devices]]
name = "ups"
kind = "host"
"""


def validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent", "validate", str(path)],
                          capture_output=True, text=True, cwd=ROOT, check=False)


def problems(events: dict) -> list[str]:
    data = {"site_id": "A1", "mqtt": {"host": "h", "tls": False},
            "devices": [{"name": "ups", "kind": "host"}], "events": events}
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    return exc.value.problems


def test_defaults_suit_a_mexican_clinic():
    cfg = parse_config({"site_id": "A1", "mqtt": {"host": "h", "tls": False}}).events
    assert cfg.enabled and not cfg.generator
    v = cfg.rules["voltage"]
    assert (v["nominal_ln_v"], v["nominal_ll_v"]) == (127, 220)
    assert cfg.rules["frequency"]["nominal_hz"] == 60
    assert cfg.rules["generator_failed"].raise_after_s == 15
    assert cfg.rules["device_unreachable"]["polls"] == 3


def test_a_clear_level_on_the_wrong_side_of_its_raise_level_is_refused_by_validate(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text(BASE + """
[events.battery_low]
charge_raise_pct = 30
charge_clear_pct = 25
[events.devices.ups.voltage]
high_raise_pct = 105
""")
    result = validate(path)
    assert result.returncode == 2
    assert "events.battery_low.charge_clear_pct: expected more than charge_raise_pct (30), " \
           "got 25" in result.stderr
    assert "events.devices.ups.voltage.high_raise_pct: expected more than high_clear_pct " \
           "(107), got 105" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_keys_devices_and_out_of_range_values_are_named():
    got = problems({"voltage": {"nominal_ln_v": "127"}, "wan_down": {"raise_after": 30},
                    "frequency": {"clear_dev_hz": 2.0},
                    "devices": {"upss": {"mains_lost": {"raise_after_s": -1}}},
                    "flap_transitions": 0})
    assert ('events.voltage.nominal_ln_v: expected a number 50-500, got "127": write numbers '
            'without quotes, nominal_ln_v = 127') in got
    assert "events.wan_down.raise_after: is not a known setting; did you mean raise_after_s?" in got
    assert "events.frequency.clear_dev_hz: expected less than raise_dev_hz (0.8), got 2" in got
    assert "events.devices.upss.mains_lost.raise_after_s: expected a number 0-86400, got -1" in got
    assert "events.devices.upss: no device of that name in [[devices]]" in got
    assert "events.flap_transitions: expected an integer 1-1000, got 0" in got


def test_device_overrides_start_from_the_sites_rules(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text(BASE + """
[events]
generator = true
[events.voltage]
low_raise_pct = 85
[events.devices.ups.voltage]
nominal_ln_v = 220
""")
    cfg = load_config(path).events
    assert cfg.generator
    ups = cfg.rules_for("ups")["voltage"]
    assert (ups["nominal_ln_v"], ups["low_raise_pct"]) == (220, 85)
    assert cfg.rules_for("meter")["voltage"]["nominal_ln_v"] == 127


def test_the_dead_voltage_floor_must_be_under_the_low_level():
    assert any(p.startswith("events.voltage.dead_v: expected less than the low raise level")
               for p in problems({"voltage": {"nominal_ln_v": 100, "dead_v": 95}}))
