"""Device failure reasons as codes with arguments (issue 17): the wire carries the English text
(``poll.reason``, as before) and the language-neutral code (``poll.reason_code``); the CLI shows
the reason in the reader's language. Real peers: net-snmp's snmpd, a closed TCP port."""

from __future__ import annotations

import ast
import asyncio
import json
from pathlib import Path

import pytest
from cli_support import ENGLISH, SPANISH, run_cli
from helpers import free_port, run

from agent.clock import ClockGuard
from agent.config import parse_config
from agent.control.server import poll_result
from agent.errors import DeviceTimeout, SourceError
from agent.i18n import MESSAGES, Messages, Text, text
from agent.readings import REASON_CODE_METRIC, decode_reason_code, encode_reason_code
from agent.runtime.poller import DevicePoller, poll_once
from agent.sources.snmp import SnmpSource
from agent.status import AgentStatus, BufferStatus, DeviceStatus

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "agent" / "sources"
ERRORS = {"SourceError", "DeviceTimeout", "DeviceRefused", "DeviceProtocolError", "ConnectionLost",
          "TooBig", "NoSuchName", "Garbage"}


def snmp_device(table: dict):
    config = parse_config({"site_id": "test-site", "mqtt": {"host": "127.0.0.1", "tls": False},
                           "devices": [table]})
    return config.devices[0]


def test_a_real_snmp_timeout_is_a_code_shown_in_spanish_and_english(snmpd):
    # A wrong community: snmpd says nothing at all, as a router does.
    dev = snmp_device({**snmpd.device_table(community="not-the-community"), "timeout_s": 0.3,
                       "retries": 0})
    source = SnmpSource(dev)

    async def scenario():
        try:
            return await poll_once(dev, source, ClockGuard())
        finally:
            await source.close()
    outcome = run(scenario())

    assert outcome.status == "timeout"
    where = f"127.0.0.1:{snmpd.port}"
    assert outcome.reason_code == Text("src.snmp.timeout", {"where": where})
    by_metric = {r.metric: r.value for r in outcome.readings}
    assert by_metric["poll.reason"] == outcome.reason, "the English text stays on the wire"
    assert json.loads(by_metric[REASON_CODE_METRIC]) == {"code": "src.snmp.timeout",
                                                         "args": {"where": where}}
    assert "not-the-community" not in by_metric[REASON_CODE_METRIC], "no secret on the wire"
    metrics = [r.metric for r in outcome.readings]
    assert metrics.index("poll.reason") == metrics.index("poll.status") + 1, \
        "the reason still follows its status (readers pair them by sequence number)"

    shown = Text.from_doc(poll_result(dev, outcome.readings)["reason_code"])
    assert shown is not None
    assert shown.render(Messages("en")) == outcome.reason == (
        f"timeout: no SNMP answer from {where}; is SNMP enabled on the LAN side and the address "
        "right? (or the community is wrong: the router ignores unknown communities)")
    assert shown.render(Messages("es")) == (
        f"tiempo agotado: ninguna respuesta SNMP de {where}; ¿está SNMP activado del lado LAN y "
        "es correcta la dirección? (o la comunidad es incorrecta: el router ignora comunidades "
        "desconocidas)")


def test_poll_once_in_a_terminal_speaks_the_readers_language(snmpd, tmp_path):
    closed = free_port()
    config = tmp_path / "agent.toml"
    config.write_text(f'''site_id = "MCSSA001234"
state_dir = "{tmp_path}"
[mqtt]
host = "127.0.0.1"
port = 9
tls = false
[[devices]]
name = "router"
kind = "snmp"
host = "127.0.0.1"
port = {snmpd.port}
community = "not-the-community"
timeout_s = 0.3
retries = 0
[[devices]]
name = "ups"
kind = "modbus"
host = "127.0.0.1"
port = {closed}
profile = "generic-ups"
timeout_s = 0.5
''')
    es = run_cli("poll-once", "-c", config, lang=SPANISH)
    assert es.code == 1, es
    assert f"tiempo agotado: ninguna respuesta SNMP de 127.0.0.1:{snmpd.port}" in es.out, es
    assert f"nada escucha en 127.0.0.1:{closed}; ¿está encendido el gateway Modbus TCP?" in es.out
    assert "timeout: no SNMP answer" not in es.out and "nothing listening" not in es.out

    en = run_cli("poll-once", "-c", config, lang=ENGLISH)
    assert f"nothing listening at 127.0.0.1:{closed}; is the Modbus TCP gateway on?" in en.out, en

    doc = run_cli("poll-once", "-c", config, "--json", lang=SPANISH).json
    by_device = {d["device"]: d for d in doc}
    assert by_device["ups"]["reason"] == (f"nothing listening at 127.0.0.1:{closed}; is the "
                                          "Modbus TCP gateway on?"), "--json keeps the English"
    assert by_device["ups"]["reason_code"] == {"code": "src.modbus.refused",
                                               "args": {"where": f"127.0.0.1:{closed}"}}


def test_the_poller_keeps_the_code_for_the_status_document():
    class Failing:
        name = "ups"

        async def read(self):
            raise DeviceTimeout(text("src.modbus.no_answer", unit=1, where="127.0.0.1:502"))

        async def close(self) -> None:
            pass
    dev = snmp_device({"name": "ups", "kind": "host"})
    poller = DevicePoller(dev, Failing(), lambda readings: None, ClockGuard())
    run(poller.poll())
    code = poller.health.reason_code
    assert code is not None and code.id == "src.modbus.no_answer"
    status = AgentStatus(pid=1, site_id="s", boot_id="b", written_at=0.0, broker=None,
                         buffer=BufferStatus(), remote={}, devices={"ups": DeviceStatus(
                             status="timeout", reason=poller.health.reason,
                             reason_code=code.to_doc())})
    back = AgentStatus.from_doc(json.loads(json.dumps(status.to_doc())))
    assert Text.from_doc(back.devices["ups"].reason_code) == code
    assert Messages("es").render(code) == ("tiempo agotado: la unidad 1 en 127.0.0.1:502 no "
                                           "respondió; revise cableado, dirección y unit id")


def test_an_abandoned_poll_and_a_bug_have_codes_too():
    class Hanging:
        name = "x"

        async def read(self):
            await asyncio.sleep(60)

        async def close(self) -> None:
            pass

    class Buggy(Hanging):
        async def read(self):
            raise KeyError("oops")
    dev = snmp_device({"name": "x", "kind": "host", "interval_s": 0.05, "timeout_s": 0.05})
    hung = run(poll_once(dev, Hanging(), ClockGuard()))
    assert (hung.status, hung.reason_code) == ("timeout", Text("src.poll.abandoned", {"s": "0.2"}))
    assert hung.reason == "poll took longer than 0.2s and was abandoned"
    bug = run(poll_once(dev, Buggy(), ClockGuard()))
    assert bug.reason_code is not None and bug.reason_code.id == "src.poll.internal"
    assert Messages("es").render(bug.reason_code) == "error interno: KeyError: 'oops'"


def test_a_list_of_reasons_travels_and_renders_in_both_languages():
    code = text("src.modbus.all_garbage", values=[
        text("src.modbus.garbage_value", name="input.voltage",
             label=text("src.modbus.label.input", n=3), why=text("src.modbus.garbage.nan")),
        text("src.modbus.garbage_value", name="model", label="40001",
             why=text("src.modbus.garbage.not_text", data="ff fe"))])
    back = Text.from_doc(decode_reason_code(encode_reason_code(code)))
    assert back == Text(code.id, {"values": list(code.args["values"])})
    assert str(back) == ("every value the device sent was garbage: input.voltage (input "
                         "register 3) is NaN (the device marks the value as not available); model "
                         "(40001) is not text (bytes ff fe)")
    assert Messages("es").render(back) == (
        "todos los valores que envió el equipo eran basura: input.voltage (registro de entrada 3) "
        "es NaN (el equipo marca el valor como no disponible); model (40001) es no es texto "
        "(bytes ff fe)")


def test_a_reason_code_on_the_wire_is_compact_json_and_garbage_is_ignored():
    value = encode_reason_code(text("src.modbus.refused", where="10.0.0.5:502"))
    assert value == '{"code":"src.modbus.refused","args":{"where":"10.0.0.5:502"}}'
    assert decode_reason_code("not json") is None
    assert decode_reason_code('{"args": {}}') is None
    assert decode_reason_code(3) is None


def _error_calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text())
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name) and node.func.id in ERRORS and node.args]


@pytest.mark.parametrize("path", sorted(SOURCES.glob("*.py")), ids=lambda p: p.name)
def test_every_device_failure_is_raised_with_a_catalogue_code(path):
    """No reason built from English strings: each error gets ``text(id, ...)`` (or a helper or
    variable holding one, which the tests above render)."""
    for call in _error_calls(path):
        first = call.args[0]
        assert not isinstance(first, (ast.JoinedStr, ast.Constant, ast.BinOp)), \
            f"{path.name}:{call.lineno}: {ast.unparse(call)[:120]}"


def test_every_code_the_sources_use_is_in_the_catalogue():
    import re
    used: set[str] = set()
    for path in SOURCES.glob("*.py"):
        used |= set(re.findall(r'text\(\s*"(src\.[a-z0-9_.]+)"', path.read_text()))
    assert len(used) > 40
    assert not sorted(u for u in used if u not in MESSAGES)
    from agent.sources.snmp_usm import _REFUSALS
    built = {f"src.snmp.auth.{w}" for w in _REFUSALS.values()} | \
        {f"src.modbus.{p}.{t}" for p in ("what", "label")
         for t in ("holding", "input", "coil", "discrete")} | \
        {"src.modbus.short_registers", "src.modbus.short_bits"}
    assert not sorted(b for b in built if b not in MESSAGES)


def test_a_plain_string_still_works_and_has_no_code():
    exc = SourceError("something odd")
    assert (exc.reason, exc.code) == ("something odd", None)
