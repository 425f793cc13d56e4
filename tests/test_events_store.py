"""Events in the buffer's SQLite file: durable before publishing, acked, read-only for the CLI,
and the daily summary computed from them (a real file; a real process killed with SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from consumer import validate
from events_script import TZ, Clinic, wall

from agent.config.events import EventsConfig
from agent.errors import StoreBusy, StoreError
from agent.events import store, wire
from agent.events.engine import EventEngine, RestartEvidence
from agent.events.model import Event
from agent.events.summary import DayCounters, build
from agent.readings import Reading
from agent.store.outbox import ReadingStore

ROOT = Path(__file__).resolve().parent.parent


def open_buffer(path: Path) -> ReadingStore:
    rs = ReadingStore.open(path)
    store.ensure_schema(rs._db)   # the writer's connection: events share the readings' file
    return rs


def raise_clear(i: int, start: float) -> list[Event]:
    return [Event(i, "raise", "mains_lost", "ups", start, values={"on_battery": True}),
            Event(i + 1, "clear", "mains_lost", "ups", start, start + 600, 600.0,
                  values={"on_battery": False})]


def test_events_and_state_commit_with_the_readings_and_wait_until_acked(tmp_path):
    rs = open_buffer(tmp_path / "buffer.sqlite")
    conn = rs._db
    with conn:   # one transaction: the poll's readings, its events, the engine's state
        conn.execute("INSERT INTO readings (seq, ts, device, metric, value) "
                     "VALUES (1, 1.0, 'ups', 'on_battery', 1)")
        store.insert(conn, raise_clear(1, wall("14:03:00")))
        store.save_state(conn, {"v": 1, "next_id": 3})
    rs.close()
    rs = open_buffer(tmp_path / "buffer.sqlite")
    conn = rs._db
    assert [e.id for e in store.unsent(conn)] == [1, 2]
    assert store.load_state(conn) == {"v": 1, "next_id": 3}
    assert store.next_id_floor(conn) == 3
    with conn:
        assert store.ack(conn, [1]) == 1
        assert store.ack(conn, [1]) == 0          # a duplicate PUBACK changes nothing
    assert [e.id for e in store.unsent(conn)] == [2]
    # Acknowledged events stay for `clinic-agent events` and the summary.
    assert [e.id for e in store.recent(conn, 0)] == [1, 2]
    with pytest.raises(sqlite3.IntegrityError), conn:    # an id is never stored twice
        store.insert(conn, raise_clear(2, 0.0)[:1])
    rs.close()


WRITER = textwrap.dedent("""
    import sys, time
    from agent.config.events import EventsConfig
    from agent.events import store
    from agent.events.engine import EventEngine, RestartEvidence
    from agent.readings import Reading
    from agent.store.outbox import ReadingStore

    rs = ReadingStore.open(sys.argv[1])
    conn = rs._db
    store.ensure_schema(conn)
    engine = EventEngine(EventsConfig())
    state = store.load_state(conn)
    if state:
        engine.restore(state, RestartEvidence(), id_floor=store.next_id_floor(conn))
    t = time.time()
    mono = 0.0
    while True:   # the mains goes and comes back: an event every other poll
        mono += 10
        on_battery = engine.active() == []
        events = engine.observe([Reading("ups", "on_battery", on_battery, "", t + mono)], mono)
        with conn:
            store.insert(conn, events)
            store.save_state(conn, engine.snapshot())
        print(",".join(str(e.id) for e in events), flush=True)
""")


KILLS = 50   # issue 12: the readings' guarantee, none lost across 50 kill -9


def test_no_event_is_lost_or_duplicated_across_kill_9(tmp_path):
    path = tmp_path / "buffer.sqlite"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    cfg = EventsConfig()
    assert cfg.rules["mains_lost"].raise_after_s > 0   # the writer relies on observe+tick
    told: list[int] = []
    for round_ in range(KILLS):
        proc = subprocess.Popen([sys.executable, str(script), str(path)], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for n, line in enumerate(proc.stdout, 1):   # reported only after the commit returned
            told += [int(x) for x in line.strip().split(",") if x]
            if n >= 20 + (round_ % 8) * 7:   # killed at varied points of its work
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    rs = open_buffer(path)
    stored = [e.id for e in store.unsent(rs._db, limit=100_000)]
    rs.close()
    # Every event reported committed is there; ids run without a gap or a repeat.
    assert set(told) <= set(stored)
    assert stored == list(range(1, len(stored) + 1))


def test_the_writer_tells_events_while_it_holds_the_file_and_the_file_tells_them_after(tmp_path):
    path = tmp_path / "buffer.sqlite"
    rs = open_buffer(path)
    c = Clinic()
    c.polls("ups", "14:05:00", every=10, on_battery=False)
    c.polls("ups", "14:10:00", every=10, on_battery=True)
    store.record(rs._db, c.events, c.engine.snapshot())
    # The agent holds its buffer exclusively (no -shm written back to flash): readers ask it.
    with pytest.raises(StoreBusy):
        store.read_recent(path, since=wall("14:00:00"))
    events, active = rs.recent_events(since=wall("14:00:00"))
    assert [(e.kind, e.cond) for e in events] == [("raise", "mains_lost")]
    assert [(a.cond, a.start) for a in active] == [("mains_lost", wall("14:05:00"))]
    rs.close()
    events, active = store.read_recent(path, since=0)      # the agent is stopped
    assert len(events) == 1 and len(active) == 1
    assert not Path(str(path) + "-wal").exists()            # nothing created by a reader


def test_reading_events_from_an_older_buffer_or_a_missing_file(tmp_path):
    rs = ReadingStore.open(tmp_path / "old.sqlite")         # no events table yet
    rs.close()
    assert store.read_recent(tmp_path / "old.sqlite", 0) == ([], [])
    with pytest.raises(StoreError):
        store.read_recent(tmp_path / "none.sqlite", 0)


def test_prune_keeps_open_outages(tmp_path):
    rs = open_buffer(tmp_path / "b.sqlite")
    conn = rs._db
    with conn:
        store.insert(conn, raise_clear(1, 1000.0))
        store.insert(conn, [Event(3, "raise", "wan_down", "wan", 2000.0)])
        store.ack(conn, [1, 2, 3])
        assert store.prune(conn, before=10_000.0) == 2
    assert [e.id for e in store.recent(conn, 0)] == [3]
    rs.close()


def test_daily_summary_from_events_and_counters(tmp_path):
    rs = open_buffer(tmp_path / "b.sqlite")
    conn = rs._db
    c = Clinic(start="00:00:00")
    c.polls("ups", "09:00:00", every=60, on_battery=False, input__voltage=125.0)
    c.polls("ups", "09:47:00", every=60, on_battery=True, input__voltage=0.0)
    c.polls("meter", "09:10:00", every=60, voltage__l1=0.0)            # overlaps: counts once
    c.polls("ups", "13:00:00", every=60, on_battery=False, input__voltage=104.2)
    c.polls("ups", "13:06:00", every=60, on_battery=True, input__voltage=0.0)
    c.polls("ups", "18:00:00", every=60, on_battery=False, input__voltage=131.0)
    c.polls("wan", "20:00:00", every=30, wan__up=True)
    c.polls("wan", "20:12:30", every=30, wan__up=False)
    c.polls("wan", "20:14:00", every=30, wan__up=True)
    c.polls("ups", "23:55:00", every=60, on_battery=False, input__voltage=127.0)
    c.polls("ups", "23:59:59", every=60, on_battery=True)             # still on at midnight
    c.after(1).poll("agent", buffer__dropped_total=0)                   # 00:00:00 the next day
    store.record(conn, c.events, c.engine.snapshot())
    (day,) = c.engine.finished_days()
    assert day == DayCounters("2026-11-20", 104.2, 131.0, 0)
    doc = build(conn, site="DFSSA001234", counters=day, tz=TZ, now=wall("23:59:59") + 1)
    validate("summary", doc)
    assert doc == {
        "v": 1, "site": "DFSSA001234", "day": "2026-11-20",
        "mains_outages": 3, "mains_outage_min": 47.0 + 6.0 + 5.0, "mains_longest_min": 47.0,
        "internet_outages": 1, "internet_outage_min": 12.5, "internet_longest_min": 12.5,
        "on_battery_min": 58.0, "voltage_min": 104.2, "voltage_max": 131.0,
        "readings_dropped": 0, "estimated": False}
    with conn:
        store.save_summary(conn, doc)
    assert store.unsent_summaries(conn) == [doc]
    with conn:
        store.ack_summaries(conn, ["2026-11-20"])
    assert store.unsent_summaries(conn) == []
    rs.close()


def test_dropped_readings_counted_per_day():
    c = Clinic(start="23:00:00")
    c.poll("agent", buffer__dropped_total=10)
    c.after(600).poll("agent", buffer__dropped_total=250)
    c.at("23:59:00").poll("agent", buffer__dropped_total=0)      # a new buffer file
    c.after(120).poll("agent", buffer__dropped_total=5)
    (day,) = c.engine.finished_days()
    assert day.readings_dropped == 240
    assert c.engine.days.counters().readings_dropped == 5


def test_wire_payloads_match_their_schemas_and_decode_back():
    c = Clinic()
    c.polls("ups", "08:01:00", every=10, on_battery=True, battery__runtime_s=float("nan"))
    for i in range(12):
        c.polls("meter", c_hms(c, 40), every=5, voltage__l1=110.0 if i % 2 == 0 else 125.0)
    c.polls("ups", c_hms(c, 30), every=10, on_battery=False)
    assert {e.kind for e in c.events} == {"raise", "clear", "flapping"}
    payload = wire.encode_events(c.events, site="DFSSA001234", boot="0123456789abcdef")
    doc = json.loads(payload)
    validate("events", doc)
    msg = wire.decode_events(payload)
    assert [e.id for e in msg.events] == [e.id for e in c.events]
    assert msg.events[0].values["battery.runtime_s"] is None    # NaN travels as null
    active = wire.encode_active(c.engine.active(), site="DFSSA001234", ts=wall("09:00:00"))
    validate("events_active", json.loads(active))
    assert [a.kind for a in wire.decode_active(active)] == [a.kind for a in c.engine.active()]
    assert json.loads(wire.encode_active([], site="DFSSA001234", ts=1.0))["active"] == []


def c_hms(c: Clinic, seconds: float) -> str:
    from events_script import hms
    return hms(c.now + seconds)


def test_topics():
    from agent.publish.topics import Topics
    t = Topics("clinics", "DFSSA001234")
    assert (t.events, t.events_active, t.summary) == (
        "clinics/DFSSA001234/events", "clinics/DFSSA001234/events/active",
        "clinics/DFSSA001234/summary")


def test_restored_engine_from_the_store_raises_nothing_twice(tmp_path):
    path = tmp_path / "b.sqlite"
    rs = open_buffer(path)
    engine = EventEngine(EventsConfig())
    t0 = wall("14:00:00")
    events = engine.observe([Reading("ups", "on_battery", True, "", t0)], 0.0) + engine.tick(5.0)
    store.record(rs._db, events, engine.snapshot())
    rs.close()
    rs = open_buffer(path)
    again = EventEngine(EventsConfig())
    again.restore(store.load_state(rs._db) or {}, RestartEvidence(),
                  id_floor=store.next_id_floor(rs._db))
    assert again.observe([Reading("ups", "on_battery", True, "", t0 + 30)], 0.0) == []
    assert again.tick(60.0) == []
    assert [a.id for a in again.active()] == [1]
    rs.close()


def test_recorder_writes_in_the_callers_transaction_logs_and_survives_a_restart(tmp_path, caplog):
    from agent.events.recorder import EventRecorder
    caplog.set_level("INFO", logger="agent.events.recorder")
    path = tmp_path / "b.sqlite"
    rs = ReadingStore.open(path)
    conn = rs._db
    rec = EventRecorder(EventsConfig(), conn, site="TEST01", evidence=RestartEvidence(), tz=TZ)
    t0 = wall("14:03:00")
    with conn:
        assert rec.observe(conn, [Reading("ups", "on_battery", True, "", t0)], 0.0) == []
    with conn:
        (raised,) = rec.tick(conn, 5.0)
    assert any(r.getMessage().startswith("event 1 raise ups mains_lost") for r in caplog.records)
    rs.close()

    rs = ReadingStore.open(path)     # restarted; the outage goes on, then ends
    conn = rs._db
    rec = EventRecorder(EventsConfig(), conn, site="TEST01", evidence=RestartEvidence(), tz=TZ)
    assert [a.id for a in rec.active()] == [raised.id]
    with conn:
        rec.observe(conn, [Reading("ups", "on_battery", True, "", t0 + 20)], 0.0)
        rec.observe(conn, [Reading("ups", "on_battery", False, "", t0 + 30)], 10.0)
    with conn:
        rec.tick(conn, 15.0)
    got = [(e.id, e.kind) for e in store.unsent(conn)]
    assert got == [(1, "raise"), (2, "clear")]
    assert store.active(conn) == []
    # The first poll of the next local day closes the day: its summary waits for the broker.
    with conn:
        rec.observe(conn, [Reading("agent", "buffer.dropped_total", 0, "", wall("23:59:00"))], 20)
        rec.observe(conn, [Reading("agent", "buffer.dropped_total", 0, "",
                                   wall("23:59:00") + 120)], 140)
    (summary,) = store.unsent_summaries(conn)
    assert (summary["day"], summary["mains_outages"], summary["on_battery_min"]) == \
        ("2026-11-20", 1, 0.5)
    rs.close()


def test_events_of_a_transaction_that_failed_are_written_with_the_next_one(tmp_path):
    from agent.events.recorder import EventRecorder
    rs = ReadingStore.open(tmp_path / "b.sqlite")
    conn = rs._db
    rec = EventRecorder(EventsConfig(), conn, site="TEST01", evidence=RestartEvidence(), tz=TZ)
    t0 = wall("14:03:00")
    with conn:
        rec.observe(conn, [Reading("ups", "on_battery", True, "", t0)], 0.0)

    class DiskFull(Exception):
        pass
    with pytest.raises(DiskFull), conn:   # the raise is told, then the commit fails
        assert [e.kind for e in rec.tick(conn, 5.0)] == ["raise"]
        raise DiskFull
    assert store.unsent(conn) == []
    with conn:
        rec.observe(conn, [Reading("ups", "on_battery", False, "", t0 + 10)], 10.0)
    with conn:
        rec.tick(conn, 15.0)
    with conn:
        rec.tick(conn, 16.0)
    assert [(e.id, e.kind) for e in store.unsent(conn)] == [(1, "raise"), (2, "clear")]
    rs.close()
