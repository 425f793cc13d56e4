"""Changes to many clinics: a staged overlay rollout through ``clinic-central rollout``, against
the real central broker (passwords, ACL), PostgreSQL and ``clinic-central ingest``, to 20 simulated
clinics running the agent's own remote management code with their own config files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from consumer import validate
from fixtures.central import mqtt_client, pg_query
from helpers import free_port, require_binary, wait_until
from remote_support import Operator, site_config
from sim_sites import SimFleet

from agent.cli import main as agent_cli_main
from agent.remote.bundle import Bundle, parse_bundle, sign_bundle
from agent.remote.envelope import open_envelope, seal, sha256_hex
from agent.remote.fleet import overlay_payload

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(1, str(ROOT / "scripts"))
from central_stack import CentralStack  # noqa: E402

from central import cli as central_cli  # noqa: E402
from central import rollout  # noqa: E402

SITES = [f"SIM{i:03d}" for i in range(1, 21)]
CHUNK = 6           # fewer than the sites: the push is signed as 4 envelopes (6, 6, 6, 2)
OVERLAY = """
# Lower the backlog bandwidth everywhere; give the UPS a little longer to answer.
[buffer]
backlog_kbps = 200

[[devices]]
name = "ups"
timeout_s = 2.5
"""


def ups(host: str) -> str:
    return f"""
[[devices]]
name = "ups"
kind = "modbus"
host = "{host}"
port = {free_port()}
unit_id = 1
interval_s = 10
timeout_s = 1
  [[devices.registers]]
  name = "battery.charge"
  table = "input"
  address = 4
  type = "uint16"
"""


@pytest.fixture
def stack(tmp_path: Path):
    require_binary("mosquitto")
    import glob
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        require_binary("initdb")
    s = CentralStack(tmp_path / "central", SITES).start()
    yield s
    s.close()


def clinic_central(capsys, *argv: Any) -> tuple[int, str, str]:
    code = central_cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def config_state(stack: CentralStack, site: str) -> dict[str, Any]:
    rows = pg_query(stack, "SELECT config_state FROM sites WHERE site = %s", site)
    return rows[0][0] if rows and rows[0][0] else {}


def test_staged_overlay_stops_after_the_canary_when_30_percent_reject_and_rolls_back(
        stack: CentralStack, tmp_path: Path, capsys) -> None:
    op = Operator(tmp_path)
    # Checked and signed once by the operator, away from the centre, as envelopes of at most
    # CHUNK sites each. Which sites form the canary follows from the signed bundle, so the sites
    # that will reject it (30 %: 2 of the 5 canaries, 4 of the rest) are chosen after.
    overlay_file, sites_file, signed = (tmp_path / "backlog.toml", tmp_path / "sites.txt",
                                        tmp_path / "overlay.jsonl")
    overlay_file.write_text(OVERLAY)
    sites_file.write_text("\n".join(SITES) + "\n")
    assert agent_cli_main(["fleet", "sign", str(overlay_file), "--overlay", "--key",
                           str(op.key_path), "--sites-file", str(sites_file), "--version", "1000",
                           "--valid-for", "1h", "--chunk-size", str(CHUNK), "-o",
                           str(signed)]) == 0
    capsys.readouterr()
    bundle = parse_bundle(signed.read_bytes())
    assert [len(e.envelope.payload.sites) for e in bundle.envelopes] == [6, 6, 6, 2]
    canary = rollout.canary_of(SITES, 0.25, bundle.sha256)
    rest = [s for s in SITES if s not in canary]
    no_ups = set(sorted(canary)[:2]) | set(rest[:4])
    assert len(canary) == 5 and len(no_ups) == 6

    paths = []
    for i, site in enumerate(SITES):
        # Every clinic differs: its own UPS address (or none: the merged overlay then names a
        # device without a kind, which that site must refuse).
        extra = "" if site in no_ups else ups(f"127.0.0.{10 + i}")
        path = tmp_path / "sites" / site / "agent.toml"
        path.parent.mkdir(parents=True)
        path.write_text(site_config(site=site, state_dir=path.parent / "state",
                                    port=stack.broker_port, password=stack.site_password(site),
                                    keys_dir=op.keys_dir, confirm_timeout_s=10,
                                    extra_devices=extra))
        paths.append(path)
    stack.start_ingest()
    fleet = SimFleet(paths)
    try:
        before = {s: (site.config, json.dumps(site.service.state.to_dict(), sort_keys=True))
                  for s, site in fleet.sites.items()}
        # The ingest has every site's retained config state: the inventory knows them.
        wait_until(lambda: all(config_state(stack, s).get("state") == "local" for s in SITES),
                   timeout=30, what="every site's config state stored by the ingest")

        cfg = stack.ingest_config()
        pw = tmp_path / "operator.pw"
        pw.write_text(stack.broker.passwords["operator"] + "\n")
        broker = ["--username", "operator", "--password-file", pw]
        code, out, err = clinic_central(
            capsys, "rollout", "create", "-c", cfg, "--signed", signed,
            "--where-site-like", "SIM%", "--canary-share", "0.25", "--max-failure-share", "0.2",
            "--stage-timeout", "60s", "--actor", "alice", "--note", "backlog 200", "--json")
        assert code == 0, err
        created = json.loads(out)
        rid = created["id"]
        assert {s["site"] for s in created["sites"] if s["stage"] == 1} == canary
        assert created["envelopes"] == 4
        assert all(s["envelope"] == bundle.index[s["site"]] for s in created["sites"])

        code, out, err = clinic_central(capsys, "rollout", "start", str(rid), "-c", cfg, *broker,
                                        "--actor", "alice")
        assert code == 1, (out, err)
        st = rollout_status(capsys, cfg, rid)
        assert st["state"] == "stopped" and "2 of 5" in st["stopped_reason"]
        by_site = {s["site"]: s for s in st["sites"]}
        for s in canary:
            expected = "rejected" if s in no_ups else "applied"
            assert by_site[s]["state"] == expected, by_site[s]
        rejected = by_site[sorted(no_ups & canary)[0]]
        assert rejected["reason"] == "invalid_config" and "devices[1].kind" in rejected["detail"]
        assert all(by_site[s]["state"] == "pending" for s in rest), "the rest never got it"

        # Each canary that applied it merged it onto its own config, from the envelope that
        # lists it (the site's own report), of at most CHUNK sites.
        applied = sorted(canary - no_ups)
        assert_envelope_of_its_chunk(stack, bundle, applied, CHUNK)
        for s in applied:
            validate("config_state", config_state(stack, s))   # overlay_sha256 in the schema
            site = fleet.sites[s]
            cfg_now = site.config
            ups_dev = {d.name: d for d in cfg_now.devices}["ups"]
            own = {d.name: d for d in site.local.devices}["ups"]
            assert cfg_now.buffer.backlog_kbps == 200 and ups_dev.timeout_s == 2.5
            assert ups_dev.settings.host == own.settings.host, "its own UPS address kept"
            assert site.service.state.active["version"] == 1000
        # Nothing else changed: the sites outside the canary, and those that refused it.
        for s in [*rest, *sorted(no_ups & canary)]:
            site = fleet.sites[s]
            assert site.config == before[s][0] and not site.applied
            assert site.service.state.active is None
        for s in rest:
            assert fleet.sites[s].service.state.highest_version == 0
            state_now = json.dumps(fleet.sites[s].service.state.to_dict(), sort_keys=True)
            assert state_now == before[s][1]
        assert not retained_push(stack, rest), "no push waits on the broker for the rest"

        # Roll the accepted canaries back: each returns to exactly its own config from before
        # (the revert signed here, also in envelopes of at most 2 sites).
        code, out, err = clinic_central(capsys, "rollout", "rollback", str(rid), "-c", cfg,
                                        *broker, "--key", op.key_path, "--version", 1001,
                                        "--chunk-size", 2, "--wait", "60s", "--actor", "bob",
                                        "--json")
        assert code == 0, (out, err)
        st = json.loads(out)
        assert sorted(s["site"] for s in st["sites"] if s["state"] == "reverted") == applied
        for s in applied:
            site = fleet.sites[s]
            assert site.config == before[s][0]
            assert site.service.state.active is None and site.service.state.highest_version == 1001
            doc = config_state(stack, s)
            assert doc["config"]["source"] == "local"
            assert doc["event"]["type"] == "reverted" and doc["event"]["reverted"] == 1000
            validate("config_state", doc)
        for s in rest:
            assert not fleet.sites[s].applied
        # The technician on site sees what happened to the push, in their language.
        site_file = fleet.sites[applied[0]].config_path
        assert agent_cli_main(["--lang", "es", "config", "show-pushed", "-c", site_file]) == 0
        shown = capsys.readouterr().out
        assert "deshecha por el equipo central" in shown and "backlog_kbps = 200" in shown

        who = pg_query(stack, "SELECT actor, action FROM operator_actions WHERE rollout_id = %s "
                       "ORDER BY id", rid)
        assert who == [("alice", "rollout_create"), ("alice", "rollout_stage"),
                       ("alice", "rollout_stop"), ("bob", "rollout_revert")]

        # A command's answer is kept by the ingest and can be read afterwards, with who asked.
        code, out, err = clinic_central(capsys, "command", "poll_now", "-c", cfg, *broker,
                                        "--key", op.key_path, "--site", SITES[0], "--actor",
                                        "carol", "--json")
        assert code == 0, (out, err)
        cid = json.loads(out)[0]["command_id"]
        code, out, _ = clinic_central(capsys, "commands", "-c", cfg, "--id", cid, "--json")
        rows = json.loads(out)
        assert rows[0]["ok"] is True and rows[0]["sent"]["actor"] == "carol"
        assert rows[0]["answer"]["result"]["devices"] == sorted(
            d.name for d in fleet.sites[SITES[0]].config.devices)
    finally:
        fleet.close()


def assert_envelope_of_its_chunk(stack: CentralStack, bundle: Bundle, sites: list[str],
                                 chunk: int) -> None:
    """Each site applied the one envelope of the bundle that lists it (as the site reports it in
    its retained config state), and that envelope lists at most ``chunk`` sites."""
    for s in sites:
        reported = config_state(stack, s)["config"]["envelope_sha256"]
        assert reported == sha256_hex(bundle.for_site(s)), s
        assert len(open_envelope(bundle.for_site(s)).payload.sites) <= chunk


def rollout_status(capsys, cfg: Path, rid: int) -> dict[str, Any]:
    code, out, _ = clinic_central(capsys, "rollout", "status", str(rid), "-c", cfg, "--json")
    return json.loads(out)


def retained_push(stack: CentralStack, sites: list[str]) -> list[str]:
    """Sites whose config/set holds a retained, non-empty message."""
    import threading
    got: list[str] = []
    done = threading.Event()
    c = mqtt_client(stack, "operator")
    marker = "clinics/_test/marker"
    c.on_message = lambda cl, u, m: done.set() if m.topic == marker else (
        got.append(m.topic.split("/")[1]) if m.payload else None)
    for s in sites:
        c.subscribe(f"clinics/{s}/config/set", qos=1)
    c.subscribe(marker, qos=1)
    c.publish(marker, b"x", qos=1)
    wait_until(done.is_set, timeout=10, what="the marker after the retained messages")
    c.loop_stop()
    c.disconnect()
    return got


def test_a_rollout_only_narrows_the_signed_sites(stack: CentralStack, tmp_path: Path) -> None:
    op = Operator(tmp_path)
    env = seal(overlay_payload(OVERLAY, sites=SITES[:3], version=5, valid_for_s=60), op.key)
    import psycopg

    from central import pg
    with psycopg.connect(stack.pg_dsn, autocommit=True) as conn:
        pg.migrate(conn)
        with pytest.raises(rollout.RolloutError, match="not among the envelope's signed sites"):
            rollout.create(conn, env, SITES[:4], actor="alice", plan=rollout.Plan())
        rid = rollout.create(conn, env, SITES[:2], actor="alice", plan=rollout.Plan())
        st = rollout.status(conn, rid)
    assert sorted(s["site"] for s in st["sites"]) == SITES[:2]
    assert st["counts"] == {"pending": 2} and open_envelope(env).payload.sites == tuple(SITES[:3])


def test_a_bundle_is_one_push_or_no_rollout(stack: CentralStack, tmp_path: Path) -> None:
    op = Operator(tmp_path)
    payload = overlay_payload(OVERLAY, sites=SITES[:6], version=5, valid_for_s=60)
    bundle = sign_bundle(payload, op.key, chunk_size=2)
    other_version = seal({**payload, "sites": SITES[6:8], "version": 6}, op.key)
    other_content = seal({**payload, "sites": SITES[6:8], "overlay": "[buffer]\n"}, op.key)
    expired = sign_bundle({**payload, "not_after": payload["issued_at"]}, op.key, chunk_size=2)
    import psycopg

    from central import pg
    with psycopg.connect(stack.pg_dsn, autocommit=True) as conn:
        pg.migrate(conn)
        plan = rollout.Plan()
        for extra, problem in ((other_version, "version 6, line 1 has 5"),
                               (other_content, "its content differs")):
            with pytest.raises(rollout.RolloutError, match=f"line 4: {problem}"):
                rollout.create(conn, bundle.to_bytes() + b"\n" + extra, SITES[:6], actor="a",
                               plan=plan)
        with pytest.raises(rollout.RolloutError, match="not among the envelope's signed sites"):
            rollout.create(conn, bundle.to_bytes(), SITES[:7], actor="a", plan=plan)
        with pytest.raises(rollout.RolloutError, match="expired"):
            rollout.create(conn, expired.to_bytes(), SITES[:6], actor="a", plan=plan)
        assert not pg_query(stack, "SELECT id FROM rollouts"), "nothing recorded"
        # Narrowed to sites of two of its three envelopes: each recorded with the one listing it.
        rid = rollout.create(conn, bundle.to_bytes() + b"\n", SITES[1:4], actor="a", plan=plan)
        st = rollout.status(conn, rid)
    assert {s["site"]: s["envelope"] for s in st["sites"]} == {SITES[1]: 0, SITES[2]: 1,
                                                               SITES[3]: 1}
    assert st["envelopes"] == 3 and st["envelope_sha256"] == bundle.sha256


class Recorder:
    """A broker link that keeps what it is asked to publish."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, bool]] = []

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.published.append((topic, payload, retain))


def test_a_rollout_recorded_before_bundles_still_sends_its_one_envelope(
        stack: CentralStack, tmp_path: Path) -> None:
    op = Operator(tmp_path)
    env = seal(overlay_payload(OVERLAY, sites=SITES[:3], version=5, valid_for_s=60), op.key)
    import psycopg

    from central import pg
    with psycopg.connect(stack.pg_dsn, autocommit=True) as conn:
        # A database made before bundles has no envelope_index: migrating adds it.
        pg.migrate(conn)
        conn.execute("ALTER TABLE rollout_sites DROP COLUMN envelope_index")
        pg.migrate(conn)
        rid = rollout.create(conn, env, SITES[:3], actor="a", canary=[SITES[1]],
                             plan=rollout.Plan(stage_timeout_s=0.3))
        assert bytes(conn.execute("SELECT envelope FROM rollouts WHERE id = %s",
                                  (rid,)).fetchone()[0]) == env, "stored as given"
        # Its sites as recorded then: no envelope index.
        conn.execute("UPDATE rollout_sites SET envelope_index = NULL WHERE rollout_id = %s",
                     (rid,))
        link = Recorder()
        st = rollout.start(conn, rid, link, actor="a", poll_s=0.05)
    assert st["state"] == "stopped" and st["envelopes"] == 1   # nobody listening: no canary
    topic = f"clinics/{SITES[1]}/config/set"
    assert link.published == [(topic, env, True), (topic, b"", True)], "sent, then withdrawn"


def test_a_good_overlay_goes_to_every_stage_and_a_silent_site_answers_later(
        tmp_path: Path, capsys) -> None:
    require_binary("mosquitto")
    sites = [f"OK{i:03d}" for i in range(1, 7)]
    stack = CentralStack(tmp_path / "central", sites).start()
    fleet = None
    try:
        op = Operator(tmp_path)
        paths = {}
        for i, site in enumerate(sites):
            path = tmp_path / "sites" / site / "agent.toml"
            path.parent.mkdir(parents=True)
            path.write_text(site_config(site=site, state_dir=path.parent / "state",
                                        port=stack.broker_port,
                                        password=stack.site_password(site),
                                        keys_dir=op.keys_dir, confirm_timeout_s=10,
                                        extra_devices=ups(f"127.0.1.{i}")))
            paths[site] = path
        silent = sites[-1]          # offline during the rollout
        stack.start_ingest()
        fleet = SimFleet([paths[s] for s in sites if s != silent])
        cfg = stack.ingest_config()
        pw = tmp_path / "operator.pw"
        pw.write_text(stack.broker.passwords["operator"] + "\n")
        broker = ["--username", "operator", "--password-file", pw]
        sites_file = tmp_path / "sites.txt"
        sites_file.write_text("# all of them\n" + "\n".join(sites) + "\n")
        overlay_file = tmp_path / "backlog.toml"
        overlay_file.write_text(OVERLAY)

        # Checked once and signed at the centre for the sites in the file, as envelopes of at
        # most 4 sites.
        code, out, err = clinic_central(
            capsys, "rollout", "create", overlay_file, "--overlay", "--key", op.key_path,
            "--sites-file", sites_file, "--version", 77, "-c", cfg, "--canary-share", "0.34",
            "--stage-timeout", "8s", "--max-failure-share", "0.2", "--chunk-size", 4, "--json")
        assert code == 0, err
        rid = json.loads(out)["id"]
        assert json.loads(out)["envelopes"] == 2
        bundle = parse_bundle(bytes(pg_query(stack, "SELECT envelope FROM rollouts WHERE id = %s",
                                             rid)[0][0]))
        code, out, err = clinic_central(capsys, "rollout", "start", str(rid), "-c", cfg, *broker)
        assert code == 0, (out, err)
        st = rollout_status(capsys, cfg, rid)
        assert st["state"] == "done" and st["stage"] == 2
        states = {s["site"]: s["state"] for s in st["sites"]}
        assert states.pop(silent) == "no_answer"
        assert set(states.values()) == {"applied"}
        for site in fleet.sites.values():
            assert site.config.buffer.backlog_kbps == 200
            assert {d.name: d for d in site.config.devices}["ups"].timeout_s == 2.5
        assert_envelope_of_its_chunk(stack, bundle, sites[:-1], 4)

        # The silent clinic comes online: the retained push reaches it, and the rollout shows it.
        late = SimFleet([paths[silent]])
        try:
            wait_until(lambda: rollout_status(capsys, cfg, rid)["counts"] == {"applied": 6},
                       timeout=30, what="the late site's answer")
            assert_envelope_of_its_chunk(stack, bundle, [silent], 4)
            # Another site's or an older push, published to it by hand, is refused.
            other = seal(overlay_payload(OVERLAY, sites=sites[:1], version=90, valid_for_s=60),
                         op.key)
            older = seal(overlay_payload(OVERLAY, sites=sites, version=70, valid_for_s=60),
                         op.key)
            c = mqtt_client(stack, "operator")
            for env, reason in ((other, "wrong_site"), (older, "replay")):
                c.publish(f"clinics/{silent}/config/set", env, qos=1, retain=True)
                wait_until(lambda r=reason: (config_state(stack, silent).get("event") or {})
                           .get("reason") == r, timeout=20, what=f"{silent} refusing ({reason})")
            c.loop_stop()
            c.disconnect()
            assert late.sites[silent].service.state.highest_version == 77
        finally:
            late.close()
    finally:
        if fleet is not None:
            fleet.close()
        stack.close()
