"""Reconnection against a real Mosquitto, as a clinic sees it: back within seconds of a broker
that returns after a long outage; why it is not connected said as a code, in the reader's
language; a command queued while the clinic was away fires, an expired one never does."""

from __future__ import annotations

import json
import time

from cli_support import SPANISH, run_cli
from fixtures.proxy import SilentableProxy
from fixtures.secure_broker import OPERATOR
from helpers import free_port, wait_until
from pki import make_ca, make_client_cert
from remote_support import Operator, site_config
from test_pipeline import committed_seqs, seqs
from test_remote_agent import SITE, operator_recorder_for
from test_tls import tls_broker, tls_config  # noqa: F401 - fixture

# The outage is the scenario: 20 s falls between the old schedule's retries (about 1, 3, 7, 15,
# 31 s), so the clinic would have waited ~10 s more after the broker came back.
OUTAGE_S = 20


def default_config(port: int, state) -> str:
    """The shipped reconnect settings (no reconnect_max_s): what a clinic runs."""
    return f"""
site_id = "TEST001"
state_dir = "{state}"
status_interval_s = 0.5
[mqtt]
host = "127.0.0.1"
port = {port}
tls = false
[[devices]]
name = "pc"
kind = "host"
interval_s = 1
"""


def _status_file_broker(state, *, connects: int) -> dict | None:
    try:
        link = json.loads((state / "status.json").read_text()).get("broker") or {}
    except (OSError, ValueError):
        return None
    return link if link.get("connects", 0) >= connects else None


def agent_status(agent, *, lang: str = "C") -> dict:
    return run_cli("status", "-c", agent.config, "--json", lang=lang).json


def test_after_a_long_outage_the_first_reading_arrives_within_seconds_of_the_broker_return(
        broker, recorder, agent_process, tmp_path):
    state = tmp_path / "state"
    agent_process(default_config(broker.port, state))
    wait_until(lambda: seqs(recorder), timeout=20, what="readings before the outage")
    broker.stop()
    down_at = time.time()
    before = committed_seqs(state)
    wait_until(lambda: time.time() - down_at > OUTAGE_S and committed_seqs(state) > before,
               timeout=OUTAGE_S + 30, interval=0.2, what="the outage, readings buffered")
    broker.start()
    back_at = time.time()
    first = wait_until(lambda: next((m.at for m in recorder.snapshot() if m.at > back_at
                                     and m.topic.endswith(("/readings", "/backlog"))), None),
                       timeout=30, what="the first reading after the return")
    # The benchmark carries the real figure (docs/benchmarks.md); this bound leaves room for CI.
    assert first - back_at < 6, f"first reading {first - back_at:.1f} s after the broker returned"
    # The probe did the waiting: only the backoff's few full attempts while the port was shut.
    link = wait_until(lambda: _status_file_broker(state, connects=2), timeout=20,
                      what="status.json after the reconnection")
    assert link["attempts"] - link["connects"] <= 12, link


def test_while_the_broker_is_down_status_says_why_as_a_code_in_the_readers_language(
        agent_process, tmp_path):
    closed = free_port()
    agent = agent_process(default_config(closed, tmp_path / "state"))

    def coded():
        doc = agent_status(agent)
        return (doc.get("broker") or {}).get("last_error_code")
    code = wait_until(coded, timeout=20, interval=0.3, what="the connection error in the status")
    assert code == {"code": "broker.unreachable", "args": {"where": f"127.0.0.1:{closed}"}}
    es = run_cli("status", "-c", agent.config, lang=SPANISH)
    assert f"nada escucha en el bróker 127.0.0.1:{closed}" in es.out, es
    assert "ConnectionRefused" not in es.out and "Connection refused" not in es.out
    assert "nothing listening at broker" in agent.log(), "the journal stays in English"


def test_a_broker_certificate_from_another_ca_is_reported_as_tls_verify_failed(
        tls_broker, agent_process, tmp_path):  # noqa: F811 - tls_broker: the fixture
    cert, key = make_client_cert(tmp_path / "pki", tls_broker.pki.ca_key, tls_broker.pki.ca_cert,
                                 "DFSSA001234")
    _, _, other_ca = make_ca(tmp_path / "pki", "someone-else")
    config = tls_config(tmp_path / "state", tls_broker, ca_file=other_ca, cert=cert, key=key,
                        protocol="5").replace("[mqtt]", "status_interval_s = 0.5\n[mqtt]")
    agent = agent_process(config)

    def coded():
        return (agent_status(agent).get("broker") or {}).get("last_error_code")
    code = wait_until(coded, timeout=20, interval=0.3, what="the TLS error in the status")
    assert code["code"] == "tls.verify_failed.untrusted", code
    es = run_cli("status", "-c", agent.config, lang=SPANISH)
    assert "no se pudo verificar el certificado del bróker" in es.out, es
    assert "could not be verified" in agent.log()


def test_a_wrong_password_is_reported_as_a_refusal_naming_the_password(
        secure_broker, agent_process, tmp_path):
    op = Operator(tmp_path)
    config = site_config(state_dir=tmp_path / "state", port=secure_broker.port,
                         password="not-the-password", keys_dir=op.keys_dir)
    agent = agent_process(config.replace("[mqtt]", "status_interval_s = 0.5\n[mqtt]"))

    def coded():
        return (agent_status(agent).get("broker") or {}).get("last_error_code")
    code = wait_until(coded, timeout=20, interval=0.3, what="the refusal in the status")
    # Mosquitto 2.0 answers a wrong password with "not authorized" (0x87), not 0x86.
    assert code == {"code": "broker.refused.not_authorized",
                    "args": {"where": f"127.0.0.1:{secure_broker.port}"}}
    es = run_cli("status", "-c", agent.config, lang=SPANISH)
    assert "no autorizado (revise mqtt.username y mqtt.password" in es.out, es
    assert "not-the-password" not in agent.log() + es.out


def test_a_command_queued_while_the_clinic_was_away_fires_and_an_expired_one_never_does(
        secure_broker, tmp_path):
    """The clinic's path to the broker is cut (the broker keeps its session); the operator sends
    two commands: one that expires during the cut, one that does not. On return only the second
    runs; the first is dropped by the broker, so the clinic never even sees it."""
    from fixtures.agent_proc import AgentProcess
    recorder = operator_recorder_for(secure_broker)
    proxy = SilentableProxy(secure_broker.port)
    op = Operator(tmp_path)
    (tmp_path / "site").mkdir()
    agent = AgentProcess(tmp_path / "site", site_config(
        state_dir=tmp_path / "site" / "state", port=proxy.port,
        password=secure_broker.passwords[SITE], keys_dir=op.keys_dir)).start()
    ops = secure_broker.client(OPERATOR)
    try:
        wait_until(lambda: seqs(recorder), timeout=20, what="readings from the site")
        mark = len(secure_broker.log())
        proxy.go_silent()           # the path goes away, silently (keep-alive notices)
        wait_until(lambda: _gone(secure_broker.log()[mark:]), timeout=30,
                   what="the broker to see the clinic gone")
        from agent.remote.envelope import seal
        from agent.remote.fleet import BrokerOptions, OperatorLink, command_payload
        opts = BrokerOptions("127.0.0.1", secure_broker.port, OPERATOR,
                             secure_broker.passwords[OPERATOR])
        stale = command_payload("poll_now", {"device": "pc"}, sites=[SITE], valid_for_s=2)
        fresh = command_payload("poll_now", {"device": "pc"}, sites=[SITE], valid_for_s=300)
        with OperatorLink(opts) as link:
            for payload in (stale, fresh):
                link.publish(f"clinics/{SITE}/cmd", seal(payload, op.key),
                             expires_at=payload["not_after"])
        wait_until(lambda: time.time() > stale["not_after"] + 1, timeout=10, interval=0.2,
                   what="the first command to expire")
        proxy.restore()

        def result(cmd_id):
            return next((json.loads(m.payload) for m in recorder.snapshot()
                         if m.topic == f"clinics/{SITE}/cmd/result"
                         and json.loads(m.payload).get("id") == cmd_id), None)
        doc = wait_until(lambda: result(fresh["id"]), timeout=30,
                         what="the queued command to run on return")
        assert doc["ok"] is True
        # Results go out in order: by now the stale command would have had its refusal.
        assert result(stale["id"]) is None, "an expired command never reaches the clinic"
        assert stale["id"] not in agent.log()
    finally:
        agent.stop()
        ops.close()
        recorder.stop()
        proxy.close()


def _gone(log: str) -> bool:
    """Mosquitto saw the clinic's connection end (its session stays): the agent gave up on the
    silent link, or the broker's keep-alive did."""
    return any(f"Client clinic-agent-{SITE} {what}" in log
               for what in ("closed its connection", "has exceeded timeout"))


# -- the centre paces the backlog ------------------------------------------------------------------

def central_config(path, port: int) -> str:
    path.write_text(f"""
[mqtt]
host = "127.0.0.1"
port = {port}
[victoriametrics]
url = "http://127.0.0.1:9"
[postgres]
dsn = "postgresql://nobody@127.0.0.1:9/none"
""")
    return str(path)


def central_cli(*args: str):
    import subprocess
    import sys

    from cli_support import ROOT, cli_env
    return subprocess.run([sys.executable, "-m", "central", *args], capture_output=True, text=True,
                          env=cli_env(), cwd=ROOT, timeout=60)


def backlog_bytes(recorder, start: float, end: float) -> tuple[int, int]:
    """Bytes on the backlog topic that arrived in [start, end), and the largest message."""
    msgs = [m for m in recorder.snapshot() if m.topic.endswith("/backlog") and start <= m.at < end]
    sizes = [len(m.payload) + len(m.topic) for m in msgs]
    return sum(sizes), max(sizes, default=0)


def test_a_published_budget_paces_the_backlog_and_clearing_it_lets_it_go(
        broker, recorder, agent_process, tmp_path):
    state = tmp_path / "state"
    agent_process(default_config(broker.port, state).replace("interval_s = 1", "interval_s = 0.1")
                  .replace("tls = false", "tls = false\nbatch_max_readings = 25"))
    wait_until(lambda: seqs(recorder), timeout=20, what="readings before the outage")
    central = central_config(tmp_path / "central.toml", broker.port)
    done = central_cli("budget", "-c", central, "--kbps", "8")
    assert done.returncode == 0, done.stderr
    assert "clinics/_fleet/budget: 8 kbit/s" in done.stdout
    broker.stop()                         # the retained budget survives the restart
    before = committed_seqs(state)
    wait_until(lambda: committed_seqs(state) > before + 3000, timeout=60, interval=0.2,
               what="a backlog of 3000 readings")
    during = committed_seqs(state)
    broker.start()
    back_at = time.time()
    first = wait_until(lambda: min((m.at for m in recorder.snapshot()
                                    if m.topic.endswith("/backlog") and m.at > back_at),
                                   default=None), timeout=30, what="the backlog to start")
    window = 5.0
    wait_until(lambda: time.time() > first + window, timeout=window + 5, interval=0.2,
               what="the measuring window")
    sent, largest = backlog_bytes(recorder, first, first + window)
    rate = 8_000 / 8
    # the bucket's one-second burst, and one batch larger than it may leave the bucket in debt
    assert sent <= rate * window + rate + largest, f"{sent} bytes in {window} s at {rate} B/s"
    assert sent >= rate * window / 3, f"the backlog still drains: {sent} bytes in {window} s"
    # Cleared: the agent's own limit (none) applies again at once; the rest goes at full speed.
    t = time.time()    # before: the rest may be gone before the command's process has ended
    cleared = central_cli("budget", "-c", central, "--clear")
    assert cleared.returncode == 0, cleared.stderr
    wait_until(lambda: seqs(recorder) >= set(range(1, during + 1)), timeout=30,
               what="the whole backlog")
    rest, _ = backlog_bytes(recorder, t, time.time() + 1)
    last = max(m.at for m in recorder.snapshot() if m.topic.endswith("/backlog"))
    assert rest > 3 * rate, "enough left to tell the difference"
    assert last - t < rest / rate / 2, f"{rest} bytes in {last - t:.1f} s once cleared"


def test_a_nonsense_budget_is_ignored_with_a_code_and_a_good_one_then_applies(
        broker, recorder, agent_process, tmp_path):
    agent = agent_process(default_config(broker.port, tmp_path / "state"))
    wait_until(lambda: seqs(recorder), timeout=20, what="readings")
    recorder.client.publish("clinics/TEST001/budget", b'{"v":1,"kbps":0}', qos=1, retain=True)
    wait_until(lambda: "[budget.bad_kbps]" in agent.log(), timeout=10,
               what="the nonsense budget to be refused with its code")
    assert "backlog drain limit now" not in agent.log(), "the limit in force is kept (none)"
    recorder.client.publish("clinics/TEST001/budget", b'{"v":1,"kbps":64}', qos=1, retain=True)
    wait_until(lambda: "backlog drain limit now 64 kbit/s" in agent.log(), timeout=10,
               what="the good budget to apply")
    assert agent.alive()
