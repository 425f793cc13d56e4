"""Store and forward under the failures clinics really have: silent links, crashes, bad clocks."""

from __future__ import annotations

import time

from consumer import readings_from, unique_by_seq
from helpers import buffer_summary, wait_until, run
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


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def prefill(state, n: int, *, per_poll: int = 50, device: str = "old") -> int:
    """Readings from an earlier outage, committed through the agent's own store code."""
    from agent.readings import Reading
    from agent.store.outbox import ReadingStore
    state.mkdir(parents=True, exist_ok=True)
    store = ReadingStore.open(state / "buffer.sqlite")
    t0 = time.time() - 3 * 86400
    for i in range(n // per_poll):
        store.commit([Reading(device, f"m{k}", float(i), "V", t0 + i * 10) for k in range(per_poll)])
    last = store.last_seq
    store.close()
    return last


def test_crash_loop_of_kill_9_with_a_flapping_broker_loses_nothing(broker, recorder, agent_process,
                                                                   tmp_path):
    import random
    rng = random.Random(1234)
    state = tmp_path / "state"
    agent = agent_process(host_config(broker.port, state, interval=0.05))
    broker_up = True
    for i in range(50):
        # A random moment in the agent's life: during start-up, polling, sending or reconnecting.
        time.sleep(rng.uniform(0.05, 0.6))
        agent.kill9()
        if i % 7 == 3:
            (broker.stop if broker_up else broker.start)()
            broker_up = not broker_up
        agent.start()
    if not broker_up:
        broker.start()
    wait_until(lambda: (state / "buffer.sqlite").exists() and committed_seqs(state) > 0, timeout=20,
               what="the last agent to commit")
    agent.stop()
    committed = committed_seqs(state)
    agent.start()
    wait_until(lambda: seqs(recorder) >= set(range(1, committed + 1)), timeout=60,
               what="every reading committed across 50 crashes")
    got = seqs(recorder)
    assert got == set(range(1, max(got) + 1)), "no sequence gap"
    assert "Traceback" not in agent.log()


def test_a_long_backlog_drains_oldest_first_while_live_readings_keep_flowing(
        broker, recorder, agent_process, tmp_path):
    state = tmp_path / "state"
    backlog_end = prefill(state, 100_000)
    broker.stop()
    # A thin link's budget for the backlog, so the drain takes long enough to watch.
    budget_kbps = 400
    agent = agent_process(host_config(broker.port, state, interval=0.2).replace(
        "[[devices]]", f"[buffer]\nbacklog_kbps = {budget_kbps}\n[[devices]]"))
    wait_until(lambda: committed_seqs(state) > backlog_end + 50, timeout=20,
               what="more readings buffered while the broker is down")
    broker.start()
    wait_until(lambda: seqs(recorder) >= set(range(1, backlog_end + 1)), timeout=120,
               what="the 100,000-reading backlog")
    msgs = recorder.snapshot()
    backlog_seqs = [r.seq for lane, r in readings_from(msgs, validate_schema=False) if lane == "backlog"]
    assert backlog_seqs == sorted(backlog_seqs), "oldest first"
    backlog_times = [m.at for m in msgs if m.topic.endswith("/backlog")]
    drain_start, drain_end = min(backlog_times), max(backlog_times)
    live_during = [m for m in msgs if m.topic.endswith("/readings") and drain_start < m.at < drain_end]
    assert live_during, "live readings went out during the drain"
    backlog_bytes = sum(len(m.payload) + len(m.topic) for m in msgs if m.topic.endswith("/backlog"))
    # Within the budget: one second of burst, and half a second for the subscriber's view of when
    # the first and last messages were sent. Unlimited, this backlog goes out in about a second.
    assert backlog_bytes * 8 / 1000 <= budget_kbps * (drain_end - drain_start + 1.5)
    # Fresh readings are published within a few seconds of being polled, backlog or not.
    lags = [m.at - r.ts for m in live_during for _, r in readings_from([m]) if r.device == "pc"]
    assert lags and max(lags) < 3.0
    assert agent.alive()


def test_at_the_size_cap_the_oldest_are_dropped_counted_and_published(
        broker, recorder, agent_process, tmp_path):
    state = tmp_path / "state"
    prefill(state, 60_000)
    broker.stop()
    cfg = host_config(broker.port, state).replace(
        "[[devices]]", "[buffer]\nmax_mb = 1\n[[devices]]").replace(
        'site_id = "TEST001"', 'site_id = "TEST001"\nstatus_interval_s = 0.2')
    agent_process(cfg)

    def used_bytes():
        live = buffer_summary(state, "buffer")     # the agent holds the file: ask it
        return live["bytes_used"] if live else float("inf")

    wait_until(lambda: used_bytes() <= 1 << 20, timeout=20, what="the buffer to shrink to its cap")
    size_at_cap = (state / "buffer.sqlite").stat().st_size
    broker.start()

    def dropped_published():
        from consumer import latest
        r = latest(readings_from(recorder.snapshot()), "agent", "buffer.dropped_total")
        return r and r.value > 0 and r
    dropped = wait_until(dropped_published, timeout=30, what="the drop count to be published")
    assert dropped.value >= 20_000
    received = seqs(recorder)
    assert 1 not in received, "the oldest readings were the ones dropped"
    assert (state / "buffer.sqlite").stat().st_size <= size_at_cap + (1 << 20)


def test_a_corrupt_buffer_at_start_is_set_aside_and_the_agent_keeps_working(
        broker, recorder, agent_process, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "buffer.sqlite").write_bytes(b"\x00garbage after a power cut\xff" * 4096)
    agent = agent_process(host_config(broker.port, state))

    def alarm():
        return [r for _, r in readings_from(recorder.snapshot()) if r.metric == "alarm.buffer_replaced"]
    wait_until(alarm, timeout=20, what="the buffer-replaced alarm")
    wait_until(lambda: any(r.device == "pc" and r.metric == "poll.status"
                           for _, r in readings_from(recorder.snapshot())), timeout=20,
               what="polling to go on")
    assert "moved it to" in agent.log() and "Traceback" not in agent.log()
    assert list(state.glob("buffer.sqlite.corrupt-*"))


def test_clock_steps_during_buffering_keep_order_and_completeness(
        broker, recorder, agent_process, tmp_path):
    import os
    if not os.path.exists(FAKETIME_LIB):
        from helpers import require_binary
        require_binary("faketime")   # fails in CI, skips locally
    state = tmp_path / "state"
    clock_file = tmp_path / "faketime"
    clock_file.write_text("+0\n")
    cfg = host_config(broker.port, state, interval=0.1).replace(
        "[[devices]]", "[buffer]\nmax_age_days = 1\n[[devices]]")
    agent = agent_process(cfg, start=False)
    agent.start(("LD_PRELOAD", FAKETIME_LIB), ("FAKETIME_TIMESTAMP_FILE", str(clock_file)),
                ("FAKETIME_NO_CACHE", "1"), ("FAKETIME_DONT_FAKE_MONOTONIC", "1"))
    wait_until(lambda: seqs(recorder), timeout=20, what="first readings")
    broker.stop()
    for offset in ("-800d", "+0", "+30d"):   # boot without RTC, NTP returns, a step forward
        clock_file.write_text(offset + "\n")
        mark = committed_seqs(state)
        wait_until(lambda: committed_seqs(state) > mark + 30, timeout=20, what=f"buffering at {offset}")
    broker.start()
    upto = committed_seqs(state)
    wait_until(lambda: seqs(recorder) >= set(range(1, upto + 1)), timeout=30,
               what="every reading buffered across the clock steps")
    got = unique_by_seq(readings_from(recorder.snapshot()))
    assert set(got) == set(range(1, max(got) + 1)), "nothing dropped or expired by the steps"
    flags = [got[s].flags for s in sorted(got)]
    assert any(f & 1 for f in flags), "readings stamped at 1970-ish/800 days back are flagged suspect"
    assert any(f & 2 for f in flags), "the steps themselves are flagged"
    suspect_ts = [got[s].ts for s in sorted(got) if got[s].flags & 1]
    assert min(suspect_ts) < time.time() - 700 * 86400


def test_a_refused_batch_is_halved_and_a_refused_single_reading_set_aside(tmp_path):
    """Unit test of the forwarder's refusal handling (a broker that answers PUBACK 0x99, say)."""
    import asyncio
    from agent.config import parse_config
    from agent.publish.forwarder import Forwarder, _Flight, _Resend
    from agent.publish.mqtt_link import PublishRefused
    from agent.readings import Reading
    from agent.store.outbox import AsyncStore, ReadingStore
    from agent.publish.wire import encode_batch
    from agent.runtime.supervisor import Heartbeat
    from agent.runtime.writer import StoreWriter

    cfg = parse_config({"site_id": "TEST001", "state_dir": str(tmp_path),
                        "mqtt": {"host": "127.0.0.1", "tls": False}})
    raw = ReadingStore.open(tmp_path / "buffer.sqlite")
    raw.commit([Reading("ups", f"m{i}", float(i), "", time.time()) for i in range(4)])

    async def scenario():
        store = AsyncStore(raw)
        writer = StoreWriter(store)
        writing = asyncio.create_task(writer.run(Heartbeat()))
        fwd = Forwarder(cfg, store, writer, boot_id="0" * 16)
        loop = asyncio.get_running_loop()

        def flight(lo, hi):
            rows = raw.fetch(lo - 1, 100, hi)
            return _Flight(encode_batch(rows, site="TEST001", boot="0" * 16, compress=True),
                           "backlog", loop.create_future(), 0.0)
        resends: list = []
        await fwd._handle_refused(flight(1, 4), PublishRefused("payload format invalid", 0x99), resends)
        assert resends == [_Resend(1, 4, 2)], "a refused batch is sent again in halves"
        await fwd._handle_refused(flight(2, 2), PublishRefused("payload format invalid", 0x99), resends)
        assert fwd.state.rejected_total == 1
        writing.cancel()
        return [r.seq for r in raw.fetch(0, 100)]

    remaining = run(scenario())
    assert remaining == [1, 3, 4], "only the refused reading left the queue"
    why = raw._db.execute("SELECT seq, why FROM rejected").fetchall()
    assert why == [(2, "refused by the broker: payload format invalid")]


def test_a_disk_filled_by_something_else_is_survived_and_nothing_is_lost(broker, recorder,
                                                                         agent_process, tmp_path):
    """The buffer's disk (a 4 MB tmpfs here) is filled by another program: the agent says so,
    keeps polling into memory, and stores and sends everything once there is room again."""
    import os
    import subprocess
    from agent.control.server import ControlClient
    disk = tmp_path / "small-disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
                             capture_output=True)
    if mounted.returncode != 0:
        import pytest
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs for the full-disk test: {mounted.stderr!r}")
        pytest.skip("mounting a tmpfs needs root")
    try:
        state = disk / "state"
        broker.stop()
        agent = agent_process(host_config(broker.port, state, interval=0.1))
        wait_until(lambda: committed_seqs(state) > 30, timeout=20, what="readings buffered")
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)   # another program fills the disk
        try:
            while True:
                os.write(fd, b"\0" * 65536)
        except OSError:
            pass
        finally:
            os.close(fd)
        wait_until(lambda: "cannot write the buffer" in agent.log(), timeout=20,
                   what="the agent to notice the full disk")
        control = ControlClient(str(state / "control.sock"))

        def held():
            return control.request("buffer")["held_in_memory"]
        wait_until(lambda: held() > 30, timeout=20, what="polls held in memory meanwhile")
        assert agent.alive()
        (disk / "filler").unlink()
        wait_until(lambda: "buffer writable again" in agent.log(), timeout=20,
                   what="the held readings to be stored")
        assert held() == 0
        control.close()
        broker.start()
        upto = committed_seqs(state)
        wait_until(lambda: seqs(recorder) >= set(range(1, upto + 1)), timeout=30,
                   what="every reading, including those polled while the disk was full")
        assert "Traceback" not in agent.log()
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
