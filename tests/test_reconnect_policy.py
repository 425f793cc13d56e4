"""The reconnect schedule (agent.publish.reconnect): full jitter within its bounds, the backoff
reset only by a connection that stayed up, never more attempts at the broker than its flapping
ban allows, and the probe ending the wait only when the path came back."""

from __future__ import annotations

import random
import statistics

from agent.publish.reconnect import (
    ATTEMPTS_PER_MINUTE,
    CONNECT_JITTER_S,
    PROBE_INTERVAL_S,
    PROBE_UP_INTERVAL_S,
    STABLE_S,
    ReconnectPolicy,
)


def policy(cap: float = 300.0, seed: int = 1) -> ReconnectPolicy:
    return ReconnectPolicy(cap_s=cap, rng=random.Random(seed))


def test_the_wait_doubles_with_each_failure_at_the_broker_up_to_the_cap():
    p = policy(cap=60)
    ceilings = []
    for _ in range(10):
        p.failed(0.0, "broker")
        ceilings.append(p.ceiling_s(p.broker_failures))
    assert ceilings == [2, 4, 8, 16, 32, 60, 60, 60, 60, 60]
    waits = [p.backoff_s() for _ in range(2000)]
    assert all(0 <= w <= 60 for w in waits)


def test_full_jitter_spreads_the_wait_over_the_whole_interval():
    p = policy()
    for _ in range(4):
        p.failed(0.0, "broker")          # ceiling 16 s
    waits = [p.backoff_s() for _ in range(5000)]
    assert min(waits) < 0.5 and max(waits) > 15.5, "uniform over [0, 16], not only its top"
    assert 7 < statistics.mean(waits) < 9
    # a fleet of clinics does not retry in lockstep: their waits are spread, not equal
    fleet = [policy(seed=s) for s in range(200)]
    for c in fleet:
        for _ in range(4):
            c.failed(0.0, "broker")
    per_second = [0] * 17
    for c in fleet:
        per_second[int(c.backoff_s())] += 1
    assert max(per_second) < 30, f"200 clinics bunched up: {per_second}"


def test_the_backoff_resets_only_after_a_connection_stayed_up():
    p = policy()
    for _ in range(5):
        p.failed(0.0, "broker")
    p.connected(100.0)
    assert p.broker_failures == 5, "a connection that came up is not yet proof"
    p.lost(100.0 + STABLE_S - 1, connected_at=100.0)
    assert p.broker_failures == 6, "dropped within STABLE_S: the broker is failing us"
    p.connected(200.0)
    p.lost(200.0 + STABLE_S, connected_at=200.0)
    assert p.broker_failures == 0
    assert p.ceiling_s(p.broker_failures) == 1.0


def test_never_more_attempts_at_the_broker_than_the_flapping_ban_allows():
    p = policy(cap=1)          # tiny backoff: the floor alone must hold the rate
    now, attempts = 0.0, []
    while now < 600:
        now += p.backoff_s()
        now += p.rate_wait_s(now)
        attempts.append(now)
        p.connected(now)        # accepted, then dropped at once: a flapping connection
        p.lost(now + 0.01, connected_at=now)
        now += 0.01
    for i, t in enumerate(attempts):
        in_minute = sum(1 for u in attempts[i:] if u - t < 60)
        assert in_minute <= ATTEMPTS_PER_MINUTE <= 15, (i, in_minute)
    assert len(attempts) >= ATTEMPTS_PER_MINUTE * 9, "the floor limits, it does not stop"


def test_attempts_that_never_reached_the_port_do_not_count_against_the_floor():
    p = policy(cap=1)
    for i in range(50):
        p.failed(float(i), "path")
    assert p.rate_wait_s(50.0) == 0
    assert p.reached_in_window(50.0) == 0


def test_the_probe_ends_the_wait_only_when_the_path_came_back():
    p = policy()
    p.failed(0.0, "path")                    # nothing listening
    assert p.path == "down"
    assert p.probed(False) is False
    assert p.probed(True) is True, "down, then up: connect now"
    p = policy()
    p.failed(0.0, "broker")                  # the port answers, the broker refuses us
    assert p.probed(True) is False, "a reachable port says nothing new: keep backing off"
    assert p.probed(False) is False           # the broker went away ...
    assert p.probed(True) is True             # ... and came back
    p = policy()
    p.failed(0.0, "unknown")                 # a timeout: the next probe tells
    assert p.probed(True) is False


def test_probes_are_frequent_while_the_port_is_down_and_rare_while_it_answers():
    p = policy()
    p.failed(0.0, "path")
    down = [p.probe_interval_s() for _ in range(1000)]
    assert all(0.5 * PROBE_INTERVAL_S <= x <= 1.5 * PROBE_INTERVAL_S for x in down)
    assert max(down) - min(down) > 0.8 * PROBE_INTERVAL_S, "jittered"
    p.failed(0.0, "broker")
    up = [p.probe_interval_s() for _ in range(1000)]
    assert all(0.5 * PROBE_UP_INTERVAL_S <= x <= 1.5 * PROBE_UP_INTERVAL_S for x in up)
    jitters = [p.connect_jitter_s() for _ in range(1000)]
    assert all(0 <= j <= CONNECT_JITTER_S for j in jitters)


def test_a_long_outage_grows_only_the_path_backoff_not_the_broker_one():
    p = policy()
    for i in range(40):                       # a 3-day outage: the port never answered
        p.failed(float(i), "path")
    assert p.ceiling_s(p.path_failures) == 300
    p.probed(True)                            # back: the broker was not failing us
    assert p.path == "up" and p.broker_failures == 0
    assert p.backoff_s() <= 1.0, "a refusal right after the return retries within a second"
