"""The writer with the event engine attached: its timers run when they are due, and waking for
them neither splits a tick's polls nor writes acknowledgements before their linger (the writes
to the clinic PC's flash, docs/benchmarks.md). Real SQLite buffer; the engine decides for real.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from helpers import eventually, run

from agent.config import parse_config
from agent.config.events import EventsConfig
from agent.readings import Reading
from agent.runtime.supervisor import Heartbeat
from agent.runtime.writer import StoreWriter
from agent.store.outbox import AsyncStore, ReadingStore


def events_cfg(**events: object) -> EventsConfig:
    return parse_config({"site_id": "TEST01", "mqtt": {"host": "localhost", "tls": False},
                         "devices": [{"name": "ups", "kind": "host"}],
                         "events": events}).events


def ups_poll(*, on_battery: bool) -> list[Reading]:
    now = time.time()
    return [Reading("ups", "poll.status", "ok", "", now),
            Reading("ups", "on_battery", on_battery, "", now)]


def test_the_events_timer_writes_its_event_and_leaves_acks_and_young_polls_to_their_time(
        tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int, int, bool]:
        raw = ReadingStore.open(tmp_path / "buffer.sqlite")
        store = AsyncStore(raw)
        await store.attach_events(events_cfg(mains_lost={"raise_after_s": 0.5}), site="TEST01")
        told: list[float] = []
        writer = StoreWriter(store, linger_s=0.1, ack_linger_s=60,
                             on_events=lambda: told.append(time.monotonic()))
        task = asyncio.create_task(writer.run(Heartbeat()))
        first, last = await store.commit([Reading("pc", "m", i, "", 1.0) for i in range(10)])
        writer.submit(ups_poll(on_battery=True))               # the mains goes: timer 0.5 s
        await eventually(lambda: writer.stats().transactions == 1, what="the poll's transaction")
        writer.ack([(first, last)])                            # the broker has the readings
        writer.linger_s = 5.0
        writer.submit([Reading("pc", "m", 99, "", 2.0)])       # a poll that may wait 5 s
        await eventually(lambda: told, timeout=5, what="the raise, told by the engine's timer")
        transactions, pending = writer.stats().transactions, writer.stats().pending_acks
        stored = len(raw.fetch(0, 100))
        raised = any(e.kind == "raise" and e.cond == "mains_lost"
                     for e in await store.unsent_events(10))
        task.cancel()
        await store.close()
        return transactions, pending, stored, raised

    transactions, pending, stored, raised = run(scenario())
    assert raised, "the raise is stored (by the timer's own transaction)"
    assert transactions == 1, "the timer wrote neither the acknowledgements nor the young poll"
    assert pending == 10 and stored == 12, "acknowledged rows wait for their linger"


def test_an_idle_engine_sets_no_timer(tmp_path: Path) -> None:
    async def scenario() -> tuple[float, float]:
        store = AsyncStore(ReadingStore.open(tmp_path / "buffer.sqlite"))
        await store.attach_events(events_cfg(), site="TEST01")
        idle = store.events_due()
        await store.write(ups_poll(on_battery=True), ())
        pending = store.events_due()
        await store.close()
        return idle, pending

    idle, pending = run(scenario())
    assert idle == float("inf")
    assert pending - time.monotonic() <= 5.0    # mains_lost raises after 5 s: the timer is set
