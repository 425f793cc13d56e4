"""The durable buffer: what a clinic relies on when the link is down."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest


from agent.clock import CLOCK_SUSPECT
from agent.readings import Reading
from agent.store.outbox import ReadingStore


def poll(n: int, *, ts: float | None = None, flags: int = 0, device: str = "ups") -> list[Reading]:
    ts = time.time() if ts is None else ts
    return [Reading(device, f"m{i}", float(i), "V", ts, flags) for i in range(n)]


def test_readings_come_back_in_order_with_their_types(tmp_path):
    store = ReadingStore.open(tmp_path / "b.sqlite")
    store.commit([Reading("ups", "on_battery", True, "", 1.0e9),
                  Reading("ups", "input_v", 127.5, "V", 1.0e9),
                  Reading("ups", "model", "SMT1500", "", 1.0e9),
                  Reading("ups", "runtime_s", 3600, "s", 1.0e9),
                  Reading("ups", "temp", None, "C", 1.0e9)])
    rows = store.fetch(0, 10)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert [r.value for r in rows] == [True, 127.5, "SMT1500", 3600, None]
    assert rows[0].value is True and rows[3].value is not True


def test_sequence_numbers_never_repeat_after_everything_was_acked_and_reopened(tmp_path):
    path = tmp_path / "b.sqlite"
    store = ReadingStore.open(path)
    first, last = store.commit(poll(10))
    store.ack([(first, last)])
    assert store.depth() == 0
    store.close()
    store = ReadingStore.open(path)
    assert store.commit(poll(1)) == (11, 11)


DIES_AFTER = {
    # how the newest readings leave the buffer before the process dies without closing it
    "acked in a transaction of its own": "s.write([], [(1, 30)])",
    "acked": "s.ack([(1, 30)])",
    "set aside": "s.set_aside([(21, 30)], 'refused')",
    "dropped by the size cap": "s._drop_upto(30, reason='size cap')",
}


@pytest.mark.parametrize("how", list(DIES_AFTER))
def test_sequence_numbers_never_repeat_when_the_newest_readings_left_before_a_crash(tmp_path, how):
    """A poll's transaction does not note the last number used (its newest row is it): every
    transaction that deletes without adding must, or a crash would hand the numbers out again."""
    path = tmp_path / "b.sqlite"
    code = (
        "import sys, os, time; sys.path.insert(0, %r)\n"
        "from agent.store.outbox import ReadingStore\nfrom agent.readings import Reading\n"
        "s = ReadingStore.open(%r)\n"
        "for _ in range(3): s.commit([Reading('ups', 'v', 1.0, 'V', time.time())] * 10)\n"
        "%s\n"
        "os._exit(0)\n") % (os.getcwd(), str(path), DIES_AFTER[how])
    subprocess.run([sys.executable, "-c", code], check=True)
    store = ReadingStore.open(path)
    assert store.last_seq == 30
    assert store.commit(poll(1)) == (31, 31)


def test_a_corrupt_buffer_is_moved_aside_and_numbering_continues_above(tmp_path):
    path = tmp_path / "b.sqlite"
    store = ReadingStore.open(path)
    store.commit(poll(5))
    store.close()
    path.write_bytes(b"this is not a database" * 100)
    for extra in ("-wal", "-shm"):
        if os.path.exists(str(path) + extra):
            os.remove(str(path) + extra)
    store = ReadingStore.open(path)
    assert store.recovered_from is not None and store.recovered_from.exists()
    first, _ = store.commit(poll(1))
    assert first > 5
    assert store.depth() == 1


def test_size_cap_drops_oldest_first_and_counts_them(tmp_path):
    store = ReadingStore.open(tmp_path / "b.sqlite", max_bytes=1 << 20)
    for _ in range(100):
        store.commit(poll(500))   # about 2 MB
    dropped = store.enforce_bounds()
    assert dropped > 0
    assert store.dropped_total == dropped
    assert store.bytes_used() <= 1 << 20
    rows = store.fetch(0, 1)
    assert rows[0].seq == dropped + 1, "the oldest readings are the ones dropped"
    # The count survives a restart, so it can still be published.
    store.close()
    assert ReadingStore.open(tmp_path / "b.sqlite").dropped_total == dropped


def test_age_cap_follows_the_agents_running_time_not_the_wall_clock(tmp_path):
    store = ReadingStore.open(tmp_path / "b.sqlite", max_age_s=3600)
    now = time.time()
    store.commit(poll(3, ts=now))
    store.mark(run_s=0)
    # Stamped years in the future or the past (a clock without RTC): age does not look at it.
    store.commit(poll(3, ts=now + 5 * 365 * 86400))
    store.commit(poll(3, ts=now - 5 * 365 * 86400, flags=CLOCK_SUSPECT))
    store.mark(run_s=1800)
    assert store.enforce_bounds(run_now=3000) == 0
    assert store.enforce_bounds(run_now=3700) == 3, "only the first poll has run past the cap"
    assert store.depth() == 6
    assert store.enforce_bounds(run_now=5500) == 6


def test_the_run_clock_continues_across_restarts(tmp_path):
    store = ReadingStore.open(tmp_path / "b.sqlite")
    store.mark(run_s=1000)
    store.close()
    assert ReadingStore.open(tmp_path / "b.sqlite").run_clock() >= 1000


def test_committed_readings_survive_a_process_that_dies_without_closing(tmp_path):
    path = tmp_path / "b.sqlite"
    code = (
        "import sys, os, time; sys.path.insert(0, %r)\n"
        "from agent.store.outbox import ReadingStore\nfrom agent.readings import Reading\n"
        "s = ReadingStore.open(%r)\n"
        "s.commit([Reading('ups', 'v', 1.0, 'V', time.time())] * 50)\n"
        "os._exit(0)\n") % (os.getcwd(), str(path))
    import subprocess, sys
    subprocess.run([sys.executable, "-c", code], check=True)
    store = ReadingStore.open(path)
    assert store.depth() == 50


def test_wal_and_full_sync_are_in_force(tmp_path):
    store = ReadingStore.open(tmp_path / "b.sqlite")
    db = store._db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2   # FULL


def test_the_depth_it_reports_matches_the_rows_through_every_kind_of_write(tmp_path):
    store = ReadingStore.open(tmp_path / "b.sqlite", max_bytes=1 << 20)

    def rows() -> int:
        return store._db.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
    for _ in range(100):
        store.commit(poll(500))
    assert store.depth() == rows()
    store.ack([(1, 10), (20, 20)])
    store.set_aside([(30, 31)], "refused")
    assert store.depth() == rows()
    store.enforce_bounds()
    assert store.depth() == rows() < 50_000
    left = rows()
    store.close()
    assert ReadingStore.open(tmp_path / "b.sqlite").depth() == left
