"""The one registry of device kinds: every kind's settings are typed, its source is built from the
registry, and its doctor hints exist in the catalogue; a new kind needs no other dispatch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import run

from agent import kinds
from agent.config import parse_config
from agent.config.host import HostSettings
from agent.config.modbus import ModbusSettings
from agent.config.snmp import SnmpSettings
from agent.config.wan import WanSettings
from agent.errors import ConfigError
from agent.i18n import MESSAGES
from agent.sources.factory import SourceFactory

ROOT = Path(__file__).resolve().parents[1]


def config(*devices: str) -> dict[str, Any]:
    import tomllib
    text = 'site_id = "MCSSA001234"\n[mqtt]\nhost = "127.0.0.1"\ntls = false\n' + "".join(devices)
    return tomllib.loads(text)


ROUTER = '[[devices]]\nname = "router"\nkind = "snmp"\nhost = "127.0.0.1"\ncommunity = "x"\n'
UPS = '[[devices]]\nname = "ups"\nkind = "modbus"\nhost = "127.0.0.1"\nprofile = "generic-ups"\n'
PC = '[[devices]]\nname = "pc"\nkind = "host"\n'
WAN = '[[devices]]\nname = "internet"\nkind = "wan"\ntargets = ["127.0.0.1:9"]\nrouter = "router"\n'


def test_each_kind_parses_into_its_own_settings_type():
    cfg = parse_config(config(ROUTER, UPS, PC, WAN))
    types = {d.name: type(d.settings) for d in cfg.devices}
    assert types == {"router": SnmpSettings, "ups": ModbusSettings, "pc": HostSettings,
                     "internet": WanSettings}
    router, ups, _pc, _wan = cfg.devices
    assert kinds.SNMP.settings_of(router) is router.settings
    assert kinds.SNMP.settings_of(ups) is None, "narrowing refuses a device of another kind"
    assert kinds.MODBUS.settings_of(ups) is ups.settings


def test_the_kinds_a_config_accepts_are_the_registered_ones():
    with pytest.raises(ConfigError) as err:
        parse_config(config('[[devices]]\nname = "x"\nkind = "snmpp"\n'))
    (problem,) = err.value.problems
    for name in kinds.KINDS:
        assert name in problem, problem


def test_the_factory_builds_every_kind_from_the_registry():
    cfg = parse_config(config(ROUTER, UPS, PC, WAN))
    factory = SourceFactory(state_dir="/nonexistent")

    async def build_and_close() -> list[str]:
        sources = [factory.build(d) for d in cfg.devices]
        names = [type(s).__name__ for s in sources]
        for s in sources:
            await s.close()
        await factory.close()
        return names
    assert run(build_and_close()) == ["SnmpSource", "ModbusSource", "HostSource", "WanSource"]


def test_a_kind_registered_at_run_time_is_parsed_and_built_without_other_changes():
    from agent.config.fields import Table
    from agent.readings import Sample

    class EchoSource:
        def __init__(self, name: str, word: str) -> None:
            self.name, self.word = name, word

        async def read(self) -> list[Sample]:
            return [Sample("echo.word", self.word)]

        async def close(self) -> None:
            pass

    def parse(t: Table) -> str:
        return t.str("word", "hello") or "hello"

    echo = kinds.register(kinds.Kind("echo", str, parse,
                                     lambda d, ctx: EchoSource(d.name, d.settings)))
    try:
        cfg = parse_config(config('[[devices]]\nname = "e"\nkind = "echo"\nword = "hola"\n'))
        (device,) = cfg.devices
        assert echo.settings_of(device) == "hola"
        source = SourceFactory(state_dir="/nonexistent").build(device)
        assert run(source.read()) == [Sample("echo.word", "hola")]
        with pytest.raises(ValueError):
            kinds.register(echo)
    finally:
        del kinds.KINDS["echo"]


def test_every_hint_a_kind_names_is_in_the_catalogue():
    for kind in kinds.KINDS.values():
        for status in ("timeout", "refused", "bad_answer", "error"):
            assert kind.hint(status) in MESSAGES
    assert kinds.device_hint("snmp", "timeout") == "hint.device.snmp.timeout"
    assert kinds.device_hint("wan", "timeout") == "hint.device.timeout"
    assert kinds.device_hint("gone", "refused") == "hint.device.refused"


def test_no_module_dispatches_on_a_kind_name():
    """The kind names appear in the registry (and as data in scan's suggested entries) only."""
    import re
    allowed = {"kinds.py", "scan.py"}
    offenders = []
    for path in (ROOT / "agent").rglob("*.py"):
        if path.name in allowed:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"""kind\s*[!=]=\s*["'](snmp|modbus|host|wan)["']""", line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders


@pytest.mark.parametrize("first", ["agent.kinds", "agent.config", "agent.sources.factory"])
def test_the_registry_imports_in_any_order(first):
    code = f"import {first}; import agent.kinds as k; print(sorted(k.KINDS))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['host', 'modbus', 'snmp', 'wan']"
