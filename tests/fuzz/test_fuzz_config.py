"""Fuzz: config files (the local file, its secrets file, validate). Any text is a config or a
ConfigError listing problems, within time and memory; a secret's value never shows in them."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from hypothesis import given, strategies as st

from agent.config import load_config, merge_secrets, parse_config
from agent.errors import ConfigError
from fuzz_budget import bounded, fuzz_settings
from toml_cases import config_texts, values

ROOT = Path(__file__).resolve().parents[2]
MARK = "S3CR3T"     # in every secret value below: must never appear in a problem


@fuzz_settings(150)
@given(config_texts(), st.lists(values, min_size=1, max_size=3))
def test_any_config_text_is_a_config_or_a_config_error(tmp_path_factory, text, secret_values):
    workdir = tmp_path_factory.mktemp("cfg", numbered=True)
    secrets = "[mqtt]\n" + "".join(
        f'password = "{MARK}{i}"\n' if i == 0 else f"x{i} = {v}\n"
        for i, v in enumerate(secret_values))
    (workdir / "secrets.toml").write_text(secrets)
    path = workdir / "agent.toml"
    path.write_text(text.replace("/etc/clinic-agent/secrets.toml", "secrets.toml"),
                    encoding="utf-8", errors="surrogatepass")
    with bounded("config file"):
        try:
            load_config(path)
        except ConfigError as exc:
            assert exc.problems and all(isinstance(p, str) for p in exc.problems)
            assert MARK not in str(exc)


@fuzz_settings(100)
@given(values)
def test_a_secret_of_any_type_is_never_shown(value):
    base = {"site_id": "A1", "mqtt": {"host": "h", "tls": False},
            "devices": [{"name": "r", "kind": "snmp", "host": "192.0.2.1", "version": "2c"}]}
    try:
        secret = tomllib.loads(f"v = {value}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError, ValueError):
        return
    for secrets in ({"mqtt": {"password": secret}}, {"devices": {"r": {"community": secret}}}):
        try:
            parse_config(merge_secrets(base, secrets, source="s"))
        except ConfigError as exc:
            shown = str(secret)[:12] if not isinstance(secret, (dict, list, bool)) else None
            if shown and len(shown) >= 4:
                assert shown not in "\n".join(exc.problems), exc.problems


@fuzz_settings(3)
@given(config_texts())
def test_validate_answers_any_text_with_exit_0_or_2_and_no_traceback(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("val", numbered=True) / "agent.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    result = subprocess.run([sys.executable, "-m", "agent", "validate", str(path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode in (0, 2), result.stderr
    assert "Traceback" not in result.stderr
