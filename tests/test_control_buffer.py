"""The buffer through the control socket: the running agent holds its file exclusively (no -shm
written back to flash), so ``clinic-agent buffer``, ``buffer export`` and ``events`` ask it.

Runs ``ControlServer`` in-process over a real ``AsyncStore``; the client is the CLI's own
``ControlClient`` (blocking, so it runs in a thread).
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import run

from agent.control import server as control_server
from agent.control.server import ControlClient, ControlError, ControlServer
from agent.errors import StoreBusy
from agent.events.model import Event
from agent.readings import Reading
from agent.store.outbox import AsyncStore, BufferSummary, ReadingStore, readings_between, summarize

T0 = 1_790_000_000.0


class StoreAgent:
    """The part of ``AgentControl`` the buffer requests use, over a real store."""

    def __init__(self, tmp_path: Path, store: AsyncStore) -> None:
        self.config = SimpleNamespace(state_dir=str(tmp_path), control_socket="", devices=(),
                                      buffer=SimpleNamespace(path=str(store.path)))
        self.store = store
        self.control = ControlServer(self)   # type: ignore[arg-type]

    def watch_readings(self, observer):
        return lambda: None

    async def buffer_summary(self) -> BufferSummary:
        return await self.store.summary()

    async def buffer_readings(self, start, end, *, rejected, after, limit):
        return await self.store.export_chunk(start, end, rejected=rejected, after=after,
                                             limit=limit)

    async def recent_events(self, since: float):
        return await self.store.recent_events(since)


def fill(path: Path, n: int) -> None:
    store = ReadingStore.open(path)
    for k in range(0, n, 500):
        store.commit([Reading("ups", f"m{i % 7}", float(i), "V", T0 + i)
                      for i in range(k, min(k + 500, n))])
    store.set_aside([(1, 3)], "refused by the broker: payload too large")
    store.close()


def exported(sock: str, **args) -> list[dict]:
    with ControlClient(sock, timeout=10) as client:
        return list(client.stream("export", **args))


def test_export_streams_every_reading_in_order_while_the_agent_holds_the_file(tmp_path,
                                                                               monkeypatch):
    monkeypatch.setattr(control_server, "EXPORT_SLICE", 700)   # several slices
    path = tmp_path / "buffer.sqlite"
    fill(path, 5000)

    async def scenario():
        store = await AsyncStore.open(path, max_bytes=1 << 30, max_age_s=0)
        agent = StoreAgent(tmp_path, store)
        await agent.control.start()
        sock = str(agent.control.path)
        try:
            with pytest.raises(StoreBusy):         # nobody else can open the file now
                summarize(path)
            all_lines = await asyncio.to_thread(exported, sock, **{"from": None, "to": None})
            part = await asyncio.to_thread(exported, sock, **{"from": T0 + 1000, "to": T0 + 2500})
            aside = await asyncio.to_thread(exported, sock, rejected=True)
            with ControlClient(sock, timeout=10) as client:
                live = await asyncio.to_thread(client.request, "summary")
            return all_lines, part, aside, live
        finally:
            await agent.control.close()
            await store.close()

    all_lines, part, aside, live = run(scenario())
    assert all_lines[-1] == {"end": 4997}
    rows = [line["r"] for line in all_lines[:-1]]
    assert [r[0] for r in rows] == list(range(4, 5001))       # seq order, no repeat, no gap
    assert rows[0] == [4, T0 + 3, "ups", "m3", 3.0, "V", 0, ""]
    assert [r[1] for r in (line["r"] for line in part[:-1])] == [T0 + i for i in range(1000, 2500)]
    assert part[-1] == {"end": 1500}
    assert [line["r"][0] for line in aside[:-1]] == [1, 2, 3]
    assert aside[0]["r"][7] == "refused by the broker: payload too large"
    # What the agent says is what the file says once the agent has stopped.
    assert BufferSummary(**live) == summarize(path)
    why = "refused by the broker: payload too large"
    assert [(r.seq, w) for r, w in readings_between(path, None, None, rejected=True)] == \
        [(1, why), (2, why), (3, why)]


def test_a_bad_export_request_is_refused_with_a_reason(tmp_path):
    path = tmp_path / "buffer.sqlite"
    fill(path, 10)

    async def scenario():
        store = await AsyncStore.open(path, max_bytes=1 << 30, max_age_s=0)
        agent = StoreAgent(tmp_path, store)
        await agent.control.start()
        try:
            sock = str(agent.control.path)
            with ControlClient(sock, timeout=10) as client, \
                    pytest.raises(ControlError) as bad_time:
                await asyncio.to_thread(lambda: list(client.stream("export", **{"from": "x"})))
            with ControlClient(sock, timeout=10) as client, \
                    pytest.raises(ControlError) as bad_flag:
                await asyncio.to_thread(lambda: list(client.stream("export", rejected=1)))
            return bad_time.value, bad_flag.value
        finally:
            await agent.control.close()
            await store.close()

    bad_time, bad_flag = run(scenario())
    assert bad_time.code == "bad_request" and "from must be a time" in str(bad_time)
    assert bad_flag.code == "bad_request" and "rejected must be true or false" in str(bad_flag)


def test_events_are_asked_of_the_agent(tmp_path):
    from agent.config.events import EventsConfig
    from agent.events import store as events_store
    path = tmp_path / "buffer.sqlite"
    rs = ReadingStore.open(path)
    rs.attach_events(EventsConfig(), site="TEST001")
    ev = Event(1, "raise", "mains_lost", "ups", T0, values={"on_battery": True})
    with rs._db:
        events_store.insert(rs._db, [ev])
    store = AsyncStore(rs)

    async def scenario():
        agent = StoreAgent(tmp_path, store)
        await agent.control.start()
        try:
            with ControlClient(str(agent.control.path), timeout=10) as client:
                return await asyncio.to_thread(client.request, "events", since=T0 - 60)
        finally:
            await agent.control.close()
            await store.close()

    doc = run(scenario())
    assert [Event.from_dict(e) for e in doc["events"]] == [ev]
    assert doc["active"] == []      # nothing decided by the engine is on


HOLDER = """
import sys, time
from agent.readings import Reading
from agent.store.outbox import ReadingStore
store = ReadingStore.open(sys.argv[1])
store.commit([Reading("ups", "battery.charge", 97.0, "%", 1790000000.0)])
print("held", flush=True)
time.sleep(600)
"""


def test_a_killed_agent_leaves_no_lock_and_no_shm_behind(tmp_path):
    path = tmp_path / "buffer.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(StoreBusy):
            summarize(path)
        # The wal-index lives in the holder's memory: no mapped file for the kernel to write back.
        assert not Path(str(path) + "-shm").exists()
    finally:
        proc.kill()
        proc.wait()
    started = time.monotonic()
    store = ReadingStore.open(path)     # the kernel dropped the dead process's lock
    try:
        assert time.monotonic() - started < 1.0
        assert [(r.metric, r.value) for r in store.fetch(0, 10)] == [("battery.charge", 97.0)]
    finally:
        store.close()
    assert dataclasses.asdict(summarize(path))["depth"] == 1


def test_a_second_agent_does_not_take_a_held_buffer_for_a_corrupt_one(tmp_path):
    """Held is not corrupt: moving the file aside would lose the running agent's readings."""
    from cli_support import agent_config
    from helpers import free_port
    state = tmp_path / "state"
    state.mkdir()
    path = state / "buffer.sqlite"
    config = tmp_path / "agent.toml"
    config.write_text(agent_config(state, free_port()))
    root = Path(__file__).resolve().parents[1]
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE,
                              text=True, cwd=root)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreBusy):
            ReadingStore.open(path)
        second = subprocess.run([sys.executable, "-m", "agent", "run", "-c", str(config)],
                                cwd=root, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert "not starting" in second.stderr and "held by another process" in second.stderr
        assert sorted(p.name for p in state.iterdir() if "corrupt" in p.name) == []
    finally:
        holder.kill()
        holder.wait()
    store = ReadingStore.open(path)
    try:
        assert store.recovered_from is None and store.depth() == 1
    finally:
        store.close()
