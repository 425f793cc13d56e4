"""End to end: the agent process, a real Mosquitto, readings through the durable buffer."""

from __future__ import annotations


from consumer import readings_from, unique_by_seq, validate
from helpers import buffer_summary, wait_until
from agent.publish.wire import decode_payload


def host_config(broker_port: int, state_dir, *, interval: float = 0.2, extra: str = "") -> str:
    return f"""
site_id = "TEST001"
state_dir = "{state_dir}"
[mqtt]
host = "127.0.0.1"
port = {broker_port}
tls = false
keepalive_s = 5
reconnect_max_s = 1
[[devices]]
name = "pc"
kind = "host"
interval_s = {interval}
{extra}
"""


def committed_seqs(state_dir) -> int:
    """The last sequence number the agent committed to its buffer (asked of the agent, which
    holds the file; read from the file when it is stopped)."""
    summary = buffer_summary(state_dir)
    return int(summary["last_seq"]) if summary else 0


def seqs(recorder) -> set[int]:
    return set(unique_by_seq(readings_from(recorder.snapshot())))


def test_readings_arrive_valid_and_the_status_is_retained(broker, recorder, agent_process, tmp_path):
    agent_process(host_config(broker.port, tmp_path / "state"))
    wait_until(lambda: len(seqs(recorder)) > 30, timeout=20, what="readings to arrive")
    got = readings_from(recorder.snapshot())
    metrics = {r.metric for _, r in got if r.device == "pc"}
    assert {"cpu.percent", "mem.percent", "disk.percent", "uptime_s", "poll.status"} <= metrics
    assert all(r.value == "ok" for _, r in got if r.metric == "poll.status")
    status = [m for m in recorder.snapshot() if m.topic == "clinics/TEST001/status"]
    doc = decode_payload(status[-1].payload)
    validate("status", doc)
    assert doc["state"] == "online"
    meta = [m for m in recorder.snapshot() if m.topic == "clinics/TEST001/meta"]
    validate("meta", decode_payload(meta[-1].payload))
    assert decode_payload(meta[-1].payload)["units"]["pc"]["mem.percent"] == "%"


def test_clean_stop_sets_status_offline(broker, recorder, agent_process, tmp_path):
    agent = agent_process(host_config(broker.port, tmp_path / "state"))
    wait_until(lambda: seqs(recorder), timeout=20, what="first readings")
    assert agent.stop() == 0
    def last_status():
        st = [m for m in recorder.snapshot() if m.topic.endswith("/status")]
        return st and decode_payload(st[-1].payload)["state"] == "offline"
    wait_until(last_status, timeout=10, what="status offline")


def test_broker_outage_loses_nothing_and_backlog_comes_in_order(broker, recorder, agent_process, tmp_path):
    state = tmp_path / "state"
    agent_process(host_config(broker.port, state))
    wait_until(lambda: len(seqs(recorder)) > 10, timeout=20, what="readings before the outage")
    broker.stop()
    before = committed_seqs(state)
    wait_until(lambda: committed_seqs(state) > before + 50, timeout=30,
               what="readings buffered during the outage")
    during = committed_seqs(state)
    broker.start()
    wait_until(lambda: seqs(recorder) >= set(range(1, during + 1)), timeout=30,
               what="every reading polled during the outage")
    got = readings_from(recorder.snapshot())
    backlog = [r.seq for lane, r in got if lane == "backlog"]
    assert backlog and backlog == sorted(backlog), "the backlog drains oldest first"
    received = seqs(recorder)
    assert received == set(range(1, max(received) + 1)), "no gap in sequence numbers"


def test_kill_9_while_the_broker_is_down_loses_nothing_committed(broker, recorder, agent_process, tmp_path):
    state = tmp_path / "state"
    agent = agent_process(host_config(broker.port, state))
    wait_until(lambda: seqs(recorder), timeout=20, what="first readings")
    broker.stop()
    start = committed_seqs(state)
    wait_until(lambda: committed_seqs(state) > start + 30, timeout=30, what="buffered readings")
    agent.kill9()
    committed = committed_seqs(state)
    broker.start()
    agent.start()
    wait_until(lambda: seqs(recorder) >= set(range(1, committed + 1)), timeout=30,
               what="every reading committed before the kill")
    assert "Traceback" not in agent.log()


def test_sighup_applies_an_edited_config_and_refuses_a_broken_one(broker, recorder, agent_process,
                                                                 tmp_path, modbus_server):
    import signal
    from consumer import latest
    state = tmp_path / "state"
    agent = agent_process(host_config(broker.port, state))
    wait_until(lambda: latest(readings_from(recorder.snapshot()), "pc", "poll.status"), timeout=20,
               what="the PC's readings")
    # A technician adds the UPS and reloads: it is polled, the PC goes on without a restart.
    ups = modbus_server.devices_toml().split("[[devices]]")[1]
    agent.config.write_text(agent.config.read_text() + "\n[[devices]]" + ups.replace(
        "interval_s = 10", "interval_s = 0.5").replace("timeout_s = 2", "timeout_s = 0.4"))
    agent.signal(signal.SIGHUP)
    wait_until(lambda: latest(readings_from(recorder.snapshot()), "ups", "input.voltage"),
               timeout=20, what="the added UPS to be polled")
    boots = {decode_payload(m.payload)["boot"] for m in recorder.snapshot()
             if m.topic.endswith("/readings")}
    assert len(boots) == 1, "applied without restarting the process"
    # A broken edit is refused with its problems listed; the running config keeps polling.
    good = agent.config.read_text()
    agent.config.write_text(good.replace("interval_s = 0.2", 'interval_s = "fast"'))
    agent.signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in agent.log(), timeout=10, what="the reload to be refused")
    assert 'devices[0].interval_s: expected a number' in agent.log()
    before = len(seqs(recorder))
    wait_until(lambda: len(seqs(recorder)) > before + 10, timeout=10, what="polling to go on")
    assert agent.alive()
