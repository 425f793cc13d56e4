"""On the agent's first connection, only what waited for the broker is backlog: the last few seconds of
polls go out live (the demo's first readings were labelled backlog)."""

from __future__ import annotations

from agent.publish.freshness import Freshness


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_readings_stored_before_the_process_started_are_backlog():
    clock = Clock()
    fresh = Freshness(500, window_s=10, clock=clock)
    assert fresh.live_floor(500) == 500


def test_the_first_poll_before_the_first_connection_is_live():
    clock = Clock()
    fresh = Freshness(500, window_s=10, clock=clock)
    fresh.committed(520)            # the first poll at start
    clock.now += 0.3                # connected a moment later
    assert fresh.live_floor(520) == 500


def test_after_a_long_outage_only_the_last_window_is_live():
    clock = Clock()
    fresh = Freshness(0, window_s=10, clock=clock)
    for seq in range(10, 610, 10):  # a poll every 5 s for 5 minutes
        fresh.committed(seq)
        clock.now += 5
    # The last commits were at -5 s (600) and -10 s (590): 590 is exactly a window old.
    assert fresh.live_floor(600) == 590
    clock.now += 60                 # a minute with no poll at all: everything waited
    assert fresh.live_floor(600) == 600


def test_memory_stays_bounded_by_the_window():
    clock = Clock()
    fresh = Freshness(0, window_s=10, clock=clock)
    for seq in range(1, 100_001):
        fresh.committed(seq)
        clock.now += 1
    assert len(fresh._commits) <= 11
    assert fresh.live_floor(100_000) == 99_991   # committed exactly a window ago


def test_the_floor_never_passes_the_newest_reading():
    clock = Clock()
    fresh = Freshness(50, window_s=10, clock=clock)
    assert fresh.live_floor(20) == 20   # a replaced (smaller) buffer
