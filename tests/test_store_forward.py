"""Store and forward under the failures clinics really have: silent links, crashes, bad clocks."""

from __future__ import annotations

import re
import time

from consumer import readings_from, unique_by_seq
from helpers import wait_until
from test_pipeline import committed_seqs, host_config, seqs


def test_a_silently_dead_link_is_detected_within_one_and_a_half_keepalives(
        broker, recorder, wan_proxy, agent_process, tmp_path):
    keepalive = 4
    state = tmp_path / "state"
    cfg = host_config(wan_proxy.port, state, interval=0.5).replace("keepalive_s = 5",
                                                                   f"keepalive_s = {keepalive}")
    agent = agent_process(cfg)
    wait_until(lambda: len(seqs(recorder)) > 5, timeout=20, what="readings through the proxy")
    wan_proxy.go_silent()
    silent_at = time.monotonic()
    wait_until(lambda: "the link went silent" in agent.log(), timeout=keepalive * 1.5 + 2,
               what="the agent to notice the silent link")
    detected_after = time.monotonic() - silent_at
    assert detected_after <= keepalive * 1.5 + 1.0
    before = committed_seqs(state)
    wait_until(lambda: committed_seqs(state) > before + 4, timeout=10, what="buffering meanwhile")
    wan_proxy.restore()
    upto = committed_seqs(state)
    wait_until(lambda: seqs(recorder) >= set(range(1, upto + 1)), timeout=30,
               what="everything buffered while the link was dead")


def test_batches_too_large_for_the_broker_are_split_not_lost(tmp_path, agent_process):
    """An MQTT 5 broker announces its maximum packet size; a backlog batch above it is split."""
    from fixtures.mosquitto import Broker, Recorder
    from helpers import require_binary
    broker = Broker(require_binary("mosquitto"), tmp_path, extra_conf="max_packet_size 4000\n")
    broker.start()
    recorder = Recorder(broker.port).start()
    try:
        state = tmp_path / "state"
        cfg = host_config(broker.port, state, interval=0.05).replace(
            "tls = false", 'tls = false\nprotocol = "5"').replace(
            "[[devices]]", '[buffer]\ncompression = "none"\n[[devices]]')
        agent = agent_process(cfg)
        wait_until(lambda: seqs(recorder), timeout=20, what="first readings")
        broker.stop()
        before = committed_seqs(state)
        wait_until(lambda: committed_seqs(state) > before + 1500, timeout=60, what="a backlog")
        broker.start()
        upto = committed_seqs(state)
        wait_until(lambda: seqs(recorder) >= set(range(1, upto + 1)), timeout=60,
                   what="the whole backlog, split to fit")
        sizes = [len(m.payload) for m in recorder.snapshot() if m.topic.endswith("/backlog")]
        assert sizes and max(sizes) <= 4000
        assert "set aside" not in agent.log()
    finally:
        recorder.stop()
        broker.stop()
