"""The runtime: a supervisor that restarts what dies and tells systemd when something hangs, one
writer that owns the store, and resends that respect the bandwidth budget.

The store failures here are injected at the ``AsyncStore`` boundary (a disk that refuses writes
for a while, a read that fails once), while the SQLite file, the broker and the pollers are real.
"""

from __future__ import annotations

import asyncio
import time
import zlib

import pytest

from agent.clock import ClockGuard
from agent.config import DeviceConfig, parse_config
from agent.errors import StoreError
from agent.publish.forwarder import Forwarder
from agent.readings import Reading, Sample
from agent.runtime.poller import DevicePoller
from agent.runtime.sdnotify import Notifier, watchdog_loop
from agent.runtime.supervisor import Heartbeat, Supervisor
from agent.runtime.writer import StoreWriter
from agent.store.outbox import AsyncStore, ReadingStore
from consumer import readings_from
from helpers import eventually, run
from test_sdnotify import NotifySocket


def site_cfg(tmp_path, port: int, **buffer):
    return parse_config({"site_id": "TEST001", "state_dir": str(tmp_path),
                         "mqtt": {"host": "127.0.0.1", "port": port, "tls": False,
                                  "keepalive_s": 10},
                         "buffer": {"path": str(tmp_path / "buffer.sqlite"), **buffer}})


class FlakyStore(AsyncStore):
    """A real store whose disk refuses the next ``refuse_writes`` writes, or whose next
    ``fail_fetches`` reads fail (an I/O error, a locked file)."""

    def __init__(self, store: ReadingStore) -> None:
        super().__init__(store)
        self.refuse_writes = 0
        self.fail_fetches = 0
        self.writes_refused = 0

    async def write(self, readings, acked, acks=None):
        if self.refuse_writes:
            self.refuse_writes -= 1
            self.writes_refused += 1
            await asyncio.sleep(0.01)   # polls keep arriving while the disk answers
            raise StoreError("disk I/O error")
        return await super().write(readings, acked, acks)

    async def fetch(self, after, limit, upto=None):
        if self.fail_fetches:
            self.fail_fetches -= 1
            raise StoreError("buffer fetch failed: disk I/O error")
        return await super().fetch(after, limit, upto)


# -- supervisor ------------------------------------------------------------------------------------

def test_a_forwarder_whose_store_fails_is_restarted_and_publishing_resumes(tmp_path, broker,
                                                                          recorder):
    cfg = site_cfg(tmp_path, broker.port)

    async def scenario():
        store = FlakyStore(ReadingStore.open(tmp_path / "buffer.sqlite"))
        writer = StoreWriter(store, linger_s=0.05)
        supervisor = Supervisor()
        supervisor.start("writer", writer.run, stall_s=60)
        fwd = Forwarder(cfg, store, writer, boot_id="0" * 16)
        writer.on_committed = fwd.notify
        store.fail_fetches = 1      # the forwarder's first read of the buffer fails
        supervisor.start("forwarder", fwd.run, stall_s=60)
        writer.submit([Reading("ups", "battery.charge", 97.0, "%", time.time())])
        await eventually(lambda: readings_from(recorder.snapshot()), timeout=15,
                         what="the reading to reach the broker after the restart")
        statuses = {t.name: t for t in supervisor.statuses()}
        await supervisor.close()
        await store.close()
        return statuses
    statuses = run(scenario())
    assert statuses["forwarder"].restarts == 1, "the failure is counted"
    assert "disk I/O error" in statuses["forwarder"].last_error
    assert statuses["forwarder"].alive


def test_a_task_that_hangs_stops_the_watchdog_pings_and_a_dead_one_is_restarted(tmp_path):
    sock = NotifySocket(str(tmp_path / "notify"))
    notifier = Notifier(sock.address, watchdog_usec=100_000)   # ping every 0.05 s
    hang = asyncio.Event()

    async def stuck(heartbeat: Heartbeat) -> None:
        while not hang.is_set():
            heartbeat.beat()
            await asyncio.sleep(0.01)
        await asyncio.Event().wait()   # hangs: alive, but no progress

    async def scenario():
        supervisor = Supervisor()
        supervisor.start("stuck", stuck, stall_s=0.3)
        watchdog = asyncio.create_task(watchdog_loop(notifier, healthy=supervisor.healthy))
        await eventually(lambda: sock.texts().count("WATCHDOG=1") >= 3, what="pings")
        hang.set()
        await eventually(lambda: not supervisor.healthy()[0], what="the hang to be noticed")
        sock.drain()
        sock.received.clear()
        await asyncio.sleep(0.3)       # six ping intervals
        pings_while_hung = sock.texts().count("WATCHDOG=1")
        why = supervisor.healthy()[1]
        watchdog.cancel()
        await supervisor.close()
        return pings_while_hung, why
    pings, why = run(scenario())
    assert pings == 0, "systemd gets no ping while a task makes no progress"
    assert "stuck" in why


def test_a_crash_loop_makes_the_agent_unhealthy_instead_of_spinning():
    async def crashes(heartbeat: Heartbeat) -> None:
        raise RuntimeError("bug")

    async def scenario():
        supervisor = Supervisor()
        import agent.runtime.supervisor as sup
        saved = sup.RESTART_INITIAL_S
        sup.RESTART_INITIAL_S = 0.001
        try:
            supervisor.start("buggy", crashes, stall_s=60)
            await eventually(lambda: not supervisor.healthy()[0], what="the crash loop")
        finally:
            sup.RESTART_INITIAL_S = saved
        restarts = supervisor.statuses()[0].restarts
        await supervisor.close()
        return restarts, supervisor
    restarts, _ = run(scenario())
    assert restarts > 5


# -- the single writer -----------------------------------------------------------------------------

class TickSource:
    """A device that answers one numbered sample per poll."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.n = 0

    async def read(self) -> list[Sample]:
        self.n += 1
        return [Sample("poll.n", self.n)]

    async def close(self) -> None:
        pass


def test_with_the_disk_refusing_writes_no_reading_is_lost_uncounted_or_stored_twice(tmp_path):
    """Three devices polling on the same tick while the disk refuses writes for a while: every
    reading polled is stored exactly once, or counted as dropped (the memory cap is small)."""
    async def scenario():
        raw = ReadingStore.open(tmp_path / "buffer.sqlite")
        store = FlakyStore(raw)
        writer = StoreWriter(store, linger_s=0.02, hold_max=150, retry_initial_s=0.02)
        writer_task = asyncio.create_task(writer.run(Heartbeat()))
        submitted = []

        def sink(readings):
            submitted.extend(readings)
            writer.submit(readings)
        sources = [TickSource(n) for n in ("router", "ups", "meter")]
        pollers = [DevicePoller(DeviceConfig(s.name, "modbus", 0.02, 0.01, None), s, sink,
                                ClockGuard()) for s in sources]
        store.refuse_writes = 6
        tasks = [asyncio.create_task(p.run()) for p in pollers]
        await eventually(lambda: store.refuse_writes == 0 and not writer.stats().failing,
                         timeout=30, what="the disk to come back")
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await writer.flush()
        writer_task.cancel()
        rows = raw.fetch(0, 1_000_000)
        dropped = writer.stats().dropped_in_memory
        await store.close()
        return submitted, rows, dropped, store.writes_refused
    submitted, rows, dropped, refused = run(scenario())
    assert refused == 6
    stored = [(r.device, r.metric, r.ts, r.value) for r in rows]
    assert len(stored) == len(set(stored)), "no reading is stored twice"
    assert [r.seq for r in rows] == sorted({r.seq for r in rows}), "seq never repeats"
    assert dropped > 0, "the small memory cap was reached"
    assert len(rows) + dropped == len(submitted), "every reading is stored or counted as dropped"
    kept = [(r.device, r.metric, r.ts, r.value) for r in submitted][dropped:]
    assert stored == kept, "the oldest were dropped; the rest stored in order"


def test_polls_of_one_tick_and_the_acks_meanwhile_are_one_transaction(tmp_path):
    async def scenario():
        raw = ReadingStore.open(tmp_path / "buffer.sqlite")
        store = AsyncStore(raw)
        writer = StoreWriter(store, linger_s=0.2)
        task = asyncio.create_task(writer.run(Heartbeat()))
        first, last = await store.commit([Reading("pc", "m", i, "", 1.0) for i in range(10)])
        before = writer.stats().transactions
        for device in ("router", "ups", "meter"):
            writer.submit([Reading(device, "poll.status", "ok", "", 2.0)])
        writer.ack([(first, last)])
        await eventually(lambda: writer.stats().transactions > before, what="the transaction")
        await asyncio.sleep(0.3)
        transactions = writer.stats().transactions - before
        rows = raw.fetch(0, 100)
        task.cancel()
        await store.close()
        return transactions, rows
    transactions, rows = run(scenario())
    assert transactions == 1
    assert sorted(r.device for r in rows) == ["meter", "router", "ups"], \
        "the acknowledged readings left in the same transaction that stored the new polls"


# -- resends go through the budget -----------------------------------------------------------------

@pytest.mark.timeout(120)
def test_a_remote_resend_of_100000_readings_respects_backlog_kbps(tmp_path, broker, recorder):
    kbps = 400
    cfg = site_cfg(tmp_path, broker.port, backlog_kbps=kbps)
    raw = ReadingStore.open(tmp_path / "buffer.sqlite")
    now = time.time()
    for start in range(0, 100_000, 10_000):
        raw.commit([Reading("router", f"if.{i % 48}.in_bps", float(i * 37 % 100_003), "bit/s",
                            now + i // 48) for i in range(start, start + 10_000)])

    async def scenario():
        store = AsyncStore(raw)
        writer = StoreWriter(store)
        wtask = asyncio.create_task(writer.run(Heartbeat()))
        fwd = Forwarder(cfg, store, writer, boot_id="0" * 16)
        resend = fwd.request_resend(1, 100_000)
        ftask = asyncio.create_task(fwd.run())
        started = time.monotonic()
        result = await asyncio.wait_for(resend, 90)
        took = time.monotonic() - started
        ftask.cancel()
        await asyncio.gather(ftask, return_exceptions=True)
        wtask.cancel()
        await store.close()
        return result, took
    result, took = run(scenario(), timeout=110)
    assert result.resent == 100_000 and result.not_in_buffer == 0
    sent = [m for m in recorder.snapshot() if m.topic.endswith("/backlog")]
    wire_bytes = sum(len(m.payload) + len(m.topic) for m in sent)
    assert zlib.decompress(sent[0].payload)   # compressed, as configured
    budget_bytes_per_s = kbps * 1000 / 8
    # The bucket allows a one-second burst, then keeps to the rate.
    assert took >= (wire_bytes - budget_bytes_per_s * 2) / budget_bytes_per_s * 0.9, \
        f"{wire_bytes} bytes in {took:.1f}s is over {kbps} kbit/s"


def test_the_agents_own_readings_wait_for_the_next_device_poll_transaction(tmp_path):
    async def scenario():
        raw = ReadingStore.open(tmp_path / "buffer.sqlite")
        store = AsyncStore(raw)
        writer = StoreWriter(store, linger_s=0.05)
        writer.submit([Reading("agent", "buffer.depth", 0, "", 1.0)], linger_s=30)
        due_alone = writer._due_in()
        task = asyncio.create_task(writer.run(Heartbeat()))
        writer.submit([Reading("ups", "poll.status", "ok", "", 2.0)])
        await eventually(lambda: writer.stats().transactions == 1, what="the transaction")
        rows = raw.fetch(0, 10)
        task.cancel()
        await store.close()
        return due_alone, rows, writer.stats().transactions
    due_alone, rows, transactions = run(scenario())
    assert due_alone > 20, "alone, the agent's readings do not cost a transaction soon"
    assert [r.device for r in rows] == ["agent", "ups"] and transactions == 1
