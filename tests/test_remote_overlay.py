"""Overlay pushes and reverts, checked by the pure push checks (bytes in, decision out), and the
operator-side check that ``fleet sign`` now makes before it signs anything.

One overlay is signed once for several sites whose own configs differ; each site merges it onto
its own config and ends with its own result.
"""

from __future__ import annotations

import json
import time
import tomllib

import pytest
from remote_support import Operator, pushed_config, site_config

from agent.cli import main
from agent.errors import ConfigError
from agent.remote.checks import Reason, Rejection
from agent.remote.envelope import load_trusted_keys, open_envelope, seal
from agent.remote.fleet import config_payload, overlay_payload, revert_payload
from agent.remote.overlay import apply_overlay, parse_overlay
from agent.remote.presign import check_config, check_overlay
from agent.remote.push import Accepted, LocalBasis, PushContext, RevertAccepted, check_push

NOW = 1_800_000_000.0
SITES = ("SITE001", "SITE002", "SITE003")


def modbus_ups(host: str, *, serial: bool = False) -> str:
    where = 'transport = "rtu"\nserial_port = "/dev/ttyUSB0"\nbaudrate = 9600' if serial \
        else f'host = "{host}"\nport = 502'
    return f"""
[[devices]]
name = "ups"
kind = "modbus"
{where}
unit_id = 1
interval_s = 10
timeout_s = 1
  [[devices.registers]]
  name = "battery.charge"
  table = "input"
  address = 4
  type = "uint16"
"""


@pytest.fixture(scope="module")
def op(tmp_path_factory):
    return Operator(tmp_path_factory.mktemp("keys"))


def site(op: Operator, name: str, extra: str = "", *, highest: int = 0,
         base_doc=None, revertible=None, now: float = NOW) -> PushContext:
    text = site_config(site=name, state_dir=f"/var/lib/{name}", port=1883, password="pw",
                       keys_dir=op.keys_dir, confirm_timeout_s=30, extra_devices=extra)
    keys, _ = load_trusted_keys(op.keys_dir)
    return PushContext(site_id=name, now=now, trusted_keys=keys, max_bytes=256 * 1024,
                       highest_version=highest, handled=frozenset(),
                       local=LocalBasis(tomllib.loads(text), None, "agent.toml", text),
                       confirm_timeout_s=30, base_doc=base_doc, revertible=revertible)


def overlay(op: Operator, text: str, *, sites=SITES, version: int = 100) -> bytes:
    return seal(overlay_payload(text, sites=sites, version=version, valid_for_s=3600, now=NOW),
                op.key)


WAN = """
[[devices]]
name = "wan"
kind = "wan"
targets = ["127.0.0.1:1883"]
"""

BACKLOG = """
[buffer]
backlog_kbps = 200

[[devices]]
name = "ups"
timeout_s = 2.5
"""


def test_one_overlay_signature_serves_sites_whose_configs_differ(op):
    envelope = overlay(op, BACKLOG)
    results = {}
    for name, extra in (("SITE001", modbus_ups("192.168.1.20")),
                        ("SITE002", modbus_ups("", serial=True)),
                        ("SITE003", modbus_ups("10.1.1.9") + WAN)):
        decision = check_push(envelope, site(op, name, extra))
        assert isinstance(decision, Accepted), (name, decision)
        results[name] = decision
    for name, acc in results.items():
        assert acc.config.site_id == name, "each keeps its own identity"
        assert acc.config.buffer.backlog_kbps == 200
        assert acc.config.mqtt.password is not None, "credentials still come from the local file"
        assert acc.meta.overlay_sha256 == results["SITE001"].meta.overlay_sha256
    ups1 = {d.name: d for d in results["SITE001"].config.devices}["ups"]
    ups2 = {d.name: d for d in results["SITE002"].config.devices}["ups"]
    assert ups1.timeout_s == ups2.timeout_s == 2.5
    assert ups1.settings.host == "192.168.1.20", "the site's own router address is kept"
    assert ups2.settings.serial_port == "/dev/ttyUSB0", "the site's own serial adapter is kept"
    assert [d.name for d in results["SITE003"].config.devices] == ["pc", "ups", "wan"]
    assert len({acc.meta.sha256 for acc in results.values()}) == 3, "three different results"


def test_a_site_whose_own_config_makes_the_merged_result_invalid_rejects_it(op):
    # The overlay changes the UPS's timeout; a site without a UPS would gain a device with only a
    # name and a timeout: invalid there, by key path, and nothing else changes.
    decision = check_push(overlay(op, BACKLOG), site(op, "SITE003"))
    assert isinstance(decision, Rejection) and decision.reason is Reason.INVALID_CONFIG
    assert any(p.startswith("devices[1].kind") for p in decision.problems), decision.problems


def test_an_overlay_for_other_sites_or_an_older_version_is_refused(op):
    env = overlay(op, "[buffer]\nbacklog_kbps = 200\n", sites=("SITE001",), version=50)
    assert check_push(env, site(op, "SITE002")).reason is Reason.WRONG_SITE
    assert check_push(env, site(op, "SITE001", highest=50)).reason is Reason.REPLAY
    assert check_push(env, site(op, "SITE001", highest=60)).reason is Reason.REPLAY
    assert isinstance(check_push(env, site(op, "SITE001", highest=49)), Accepted)


def test_an_overlay_is_merged_onto_the_pushed_config_in_effect_not_the_local_file(op):
    pushed = tomllib.loads(pushed_config(port=1883, interval=7))
    decision = check_push(overlay(op, "[buffer]\nbacklog_kbps = 90\n"),
                          site(op, "SITE001", base_doc=pushed))
    assert isinstance(decision, Accepted)
    assert decision.config.devices[0].interval_s == 7 and decision.config.buffer.backlog_kbps == 90


def test_merge_rules_tables_devices_by_name_removal_and_replaced_lists():
    base = tomllib.loads(site_config(state_dir="/s", port=1883, password="secret", keys_dir="/k",
                                     extra_devices=modbus_ups("10.0.0.5")))
    ov = parse_overlay("""
[overlay]
remove = ["devices.pc", "mqtt.keepalive_s", "nothing.here", "devices.gone.timeout_s"]

[mqtt]
reconnect_max_s = 30

[events.mains_lost]
raise_after_s = 20

[[devices]]
name = "ups"
timeout_s = 3
  [[devices.registers]]
  name = "battery.runtime"
  table = "input"
  address = 5
  type = "uint16"

[[devices]]
name = "wan"
kind = "wan"
targets = ["127.0.0.1:1883"]
""")
    merged = tomllib.loads(apply_overlay(base, ov))
    assert "site_id" not in merged and "remote" not in merged and "password" not in merged["mqtt"]
    assert merged["mqtt"]["reconnect_max_s"] == 30 and "keepalive_s" not in merged["mqtt"]
    assert merged["mqtt"]["host"] == "127.0.0.1", "keys the overlay does not name stay"
    assert merged["events"] == {"mains_lost": {"raise_after_s": 20}}
    names = [d["name"] for d in merged["devices"]]
    assert names == ["ups", "wan"], "pc removed, ups kept in place, wan added at the end"
    ups = merged["devices"][0]
    assert ups["host"] == "10.0.0.5" and ups["timeout_s"] == 3
    assert [r["name"] for r in ups["registers"]] == ["battery.runtime"], "a list is replaced whole"


@pytest.mark.parametrize("text, problem", [
    ("site_id = \"X1\"\n", "site_id:"),
    ("[mqtt]\npassword = \"x\"\n", "mqtt.password:"),
    ("[buffer]\npath = \"/tmp/b.sqlite\"\n", "buffer.path:"),
    ("[overlay]\nremove = [\"remote\"]\n", "remote:"),
    ("[overlay]\nremove = [\"buffer.\"]\n", "overlay.remove[0]:"),
    ("[[devices]]\ntimeout_s = 1\n", "devices[0].name:"),
    ("[[devices]]\nname = \"a\"\n[[devices]]\nname = \"a\"\n", "devices[1].name:"),
])
def test_an_overlay_cannot_touch_what_only_the_site_sets_and_must_name_its_devices(text, problem):
    with pytest.raises(ConfigError) as exc:
        parse_overlay(text)
    assert any(p.startswith(problem) for p in exc.value.problems), exc.value.problems


# -- revert ----------------------------------------------------------------------------------------

def test_a_revert_undoes_only_the_push_in_effect(op):
    env = seal(revert_payload(100, sites=SITES, version=101, valid_for_s=3600, now=NOW), op.key)
    decision = check_push(env, site(op, "SITE001", highest=100, revertible=100))
    assert isinstance(decision, RevertAccepted) and decision.reverts == 100
    # A site that rejected v100 (or already went back) has nothing to undo.
    assert check_push(env, site(op, "SITE002", highest=100)).reason is Reason.NOT_IN_EFFECT
    assert check_push(env, site(op, "SITE003", highest=101, revertible=100)).reason is Reason.REPLAY


# -- checked before signing ------------------------------------------------------------------------

def test_the_operator_side_check_finds_what_every_site_would_refuse():
    found = check_overlay("[buffer]\nbacklog_kpbs = 200\n[mqtt]\nclient_id = \"x\"\n"
                          "[[devices]]\nname = \"ups\"\ntimeout_s = -1\n", SITES)
    assert any(p.startswith("buffer.backlog_kpbs") for p in found.problems)
    assert any(p.startswith("mqtt.client_id") for p in found.problems)
    assert any("devices.ups" in n for n in found.site_only), "a partial device: checked at sites"
    assert not check_overlay(BACKLOG, SITES).problems
    assert not check_config(pushed_config(port=1883), SITES).problems


def test_fleet_sign_refuses_a_config_every_site_would_reject(op, tmp_path, capsys):
    # Reproduces issue 15: `clinic-agent validate` demands a site_id, so an operator adds one to
    # the fleet file; `fleet sign` signed it, and every site rejected it as invalid_config.
    fleet = tmp_path / "fleet.toml"
    fleet.write_text('site_id = "SITE001"\n' + pushed_config(port=1883))
    assert main(["validate", str(fleet)]) == 0
    out = tmp_path / "push.json"
    code = main(["fleet", "sign", str(fleet), "--key", str(op.key_path), "--site", "SITE001",
                 "--site", "SITE002", "--version", "7", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists(), "nothing signed"
    assert "site_id: set in each site's local file only" in err
    # What it would have signed is refused by a site, for the same reason:
    signed = seal(config_payload(fleet.read_text(), sites=["SITE002"], version=7,
                                 valid_for_s=60, now=NOW), op.key)
    assert check_push(signed, site(op, "SITE002")).reason is Reason.INVALID_CONFIG

    fleet.write_text(pushed_config(port=1883))
    code = main(["fleet", "sign", str(fleet), "--key", str(op.key_path), "--site", "SITE001",
                 "--site", "SITE002", "--version", "7", "-o", str(out)])
    assert code == 0
    assert isinstance(check_push(out.read_bytes().strip(), site(op, "SITE002", now=time.time())),
                      Accepted)


def test_fleet_sign_an_overlay_for_a_sites_file_checked_against_a_site_config(op, tmp_path, capsys):
    sites_file = tmp_path / "sites.txt"
    sites_file.write_text("# canary\nSITE001\nSITE002  # the big one\n\n")
    ov = tmp_path / "ov.toml"
    ov.write_text(BACKLOG)
    no_ups = tmp_path / "site3.toml"
    no_ups.write_text(site_config(site="SITE003", state_dir=tmp_path, port=1883, password="pw",
                                  keys_dir=op.keys_dir))
    out = tmp_path / "ov.json"
    args = ["fleet", "sign", str(ov), "--overlay", "--key", str(op.key_path), "--sites-file",
            str(sites_file), "--version", "9", "-o", str(out)]
    assert main([*args, "--check-against", str(no_ups)]) == 2
    assert f"{no_ups}: devices[1].kind" in capsys.readouterr().err
    assert main(args) == 0
    payload = open_envelope(out.read_bytes().strip()).payload
    assert payload.sites == ("SITE001", "SITE002") and "overlay" in payload.body


# -- through a real agent --------------------------------------------------------------------------

def test_a_real_agent_applies_an_overlay_and_goes_back_on_a_revert(secure_broker, tmp_path, capsys):
    from fixtures.agent_proc import AgentProcess
    from fixtures.secure_broker import OPERATOR

    op = Operator(tmp_path)
    local = site_config(state_dir=tmp_path / "state", port=secure_broker.port,
                        password=secure_broker.passwords["SITE001"], keys_dir=op.keys_dir,
                        status_interval_s=0.5)
    agent = AgentProcess(tmp_path, local).start()
    pw = tmp_path / "operator.password"
    pw.write_text(secure_broker.passwords[OPERATOR] + "\n")
    barg = ["--broker", f"127.0.0.1:{secure_broker.port}", "--username", OPERATOR,
            "--password-file", str(pw)]
    ov = tmp_path / "ov.toml"
    ov.write_text('[buffer]\nbacklog_kbps = 123\n\n[[devices]]\nname = "pc"\ninterval_s = 0.7\n')
    try:
        code = main(["fleet", "push", str(ov), "--overlay", "--key", str(op.key_path), "--site",
                     "SITE001", "--version", "40", *barg, "--wait", "20"])
        out = capsys.readouterr().out
        assert code == 0 and "SITE001: applied" in out, out
        assert main(["config", "show-pushed", "-c", str(agent.config), "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        merged = tomllib.loads(shown["pushed_config"])
        assert merged["buffer"]["backlog_kbps"] == 123
        assert merged["devices"] == [{"name": "pc", "kind": "host", "interval_s": 0.7}]
        assert shown["state"]["active"]["overlay_sha256"]

        code = main(["fleet", "push", "--revert", "40", "--key", str(op.key_path), "--site",
                     "SITE001", "--version", "41", *barg, "--wait", "20"])
        out = capsys.readouterr().out
        assert code == 0 and "SITE001: reverted" in out, out
        assert main(["config", "show-pushed", "-c", str(agent.config), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["state"]["active"] is None
    finally:
        agent.stop()
