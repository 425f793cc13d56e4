"""Release on the central ack: the [buffer] settings, and what an ack may release (pure logic).

The end-to-end behaviour with a real agent, broker and central ingest is in
tests/central/test_agent_release.py and tests/central/test_chaos.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from agent.config import parse_config
from agent.config.fields import Problem
from agent.errors import ConfigError
from agent.i18n import Messages
from agent.publish.central_ack import BACKOFF_MAX, CentralRelease


def config(buffer: dict[str, Any]) -> dict[str, Any]:
    return {"site_id": "A1", "mqtt": {"host": "h"}, "buffer": buffer,
            "devices": [{"name": "pc", "kind": "host"}]}


# -- settings --------------------------------------------------------------------------------------

def test_release_defaults_to_the_brokers_puback() -> None:
    cfg = parse_config(config({}))
    assert cfg.buffer.release == "broker"
    assert cfg.buffer.central_ack_timeout_s == 60.0


def test_release_on_the_central_ack_with_its_timeout() -> None:
    cfg = parse_config(config({"release": "central", "central_ack_timeout_s": 120}))
    assert (cfg.buffer.release, cfg.buffer.central_ack_timeout_s) == ("central", 120.0)


def test_a_misspelt_release_names_the_key_and_the_choices() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(config({"release": "centre"}))
    assert exc.value.problems == [
        'buffer.release: expected one of "broker", "central", got "centre"; did you mean "central"?']


@pytest.mark.parametrize("timeout", [0, -5, "60", 100_000])
def test_an_ack_timeout_out_of_range_is_refused(timeout: Any) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(config({"release": "central", "central_ack_timeout_s": timeout}))
    assert [p.split(":")[0] for p in exc.value.problems] == ["buffer.central_ack_timeout_s"]


def test_an_ack_timeout_without_central_release_is_a_problem_in_both_languages() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(config({"central_ack_timeout_s": 30}))
    assert exc.value.problems == [
        ('buffer.central_ack_timeout_s: only applies with release = "central" (readings kept '
         'until the central ack); add that line to [buffer], or remove this one')]
    (problem,) = exc.value.details
    assert isinstance(problem, Problem)
    assert "solo aplica con release = \"central\"" in problem.render(Messages("es"))


# -- what an ack releases --------------------------------------------------------------------------

def test_an_ack_releases_what_the_broker_took_up_to_its_seq() -> None:
    r = CentralRelease(timeout_s=60)
    assert r.sent([(1, 100)], now=0) == 0          # no central ack yet: nothing released
    assert r.on_ack(60, last_seq=100) == 60
    assert r.held_ranges() == [(1, 60), (61, 100)]
    assert r.on_ack(60, last_seq=100) == 0          # the same retained ack again: nothing new
    assert r.on_ack(100, last_seq=100) == 100
    assert r.held_count() == 0


def test_an_ack_ahead_of_the_puback_waits_for_it() -> None:
    """The ingest may ack a batch before the agent has the broker's PUBACK for it."""
    r = CentralRelease(timeout_s=60)
    r.sent([(1, 10)], now=0)
    assert r.on_ack(20, last_seq=20) == 10
    assert r.sent([(11, 20)], now=1) == 20


def test_an_ack_above_any_seq_the_buffer_numbered_releases_nothing(caplog: Any) -> None:
    """A reinstalled agent (fresh state directory) meets the retained ack of its predecessor."""
    r = CentralRelease(timeout_s=60)
    r.sent([(1, 50)], now=0)
    assert r.on_ack(52_113, last_seq=50) == 0
    assert r.held_count() == 50 and r.released == 0
    assert "another numbering of this site" in caplog.text
    # Its genuine acks still work afterwards.
    assert r.on_ack(50, last_seq=50) == 50


def test_an_ack_never_releases_readings_above_what_the_broker_took() -> None:
    r = CentralRelease(timeout_s=60)
    r.sent([(1, 10)], now=0)
    assert r.on_ack(30, last_seq=40) == 10          # 11..40 not yet sent in this run
    assert r.released == 10


def test_an_ack_that_goes_back_is_ignored() -> None:
    """A broker killed with -9 may come back with an older retained ack."""
    r = CentralRelease(timeout_s=60)
    r.sent([(1, 100)], now=0)
    assert r.on_ack(80, last_seq=100) == 80
    assert r.on_ack(40, last_seq=100) == 0
    assert r.released == 80


# -- sending again what stays unacknowledged -------------------------------------------------------

def test_what_stays_unacknowledged_past_the_timeout_is_handed_back_once() -> None:
    r = CentralRelease(timeout_s=10)
    r.sent([(1, 10)], now=0)
    r.sent([(11, 20)], now=5)
    assert r.overdue(now=9) == []
    assert r.overdue(now=10) == [(1, 10)]
    assert r.held_ranges() == [(11, 20)]             # 1..10 is unsent again until resent
    assert r.overdue(now=10.5) == []


def test_the_timeout_backs_off_while_the_centre_makes_no_progress() -> None:
    r = CentralRelease(timeout_s=10)
    now = 0.0
    timeouts = []
    for _ in range(7):
        r.sent([(1, 10)], now=now)
        timeouts.append(r.current_timeout())
        now += r.current_timeout()
        assert r.overdue(now) == [(1, 10)]
    assert timeouts == [10, 20, 40, 80, 160, 160, 160]
    assert BACKOFF_MAX == 16
    # The ack moves: the next round is at the plain timeout again.
    r.sent([(1, 10)], now=now)
    r.sent([(11, 20)], now=now)
    r.on_ack(10, last_seq=20)
    now += r.current_timeout()
    assert r.overdue(now) == [(11, 20)]
    assert r.current_timeout() == 10


def test_lanes_skip_readings_sent_and_awaiting_the_ack() -> None:
    r = CentralRelease(timeout_s=60)
    r.sent([(11, 20)], now=0)
    r.sent([(31, 40)], now=100)       # far apart in time: two entries
    assert r.skip(0) == 0 and r.next_held_lo(0) == 11
    assert r.skip(10) == 20 and r.next_held_lo(20) == 31
    assert r.skip(30) == 40 and r.next_held_lo(40) is None
    r.on_ack(15, last_seq=40)
    assert r.skip(0) == 20            # released ones are skipped too


def test_a_range_sent_again_replaces_its_older_entry() -> None:
    r = CentralRelease(timeout_s=10)
    r.sent([(1, 100)], now=0)
    r.sent([(40, 60)], now=8)         # a remote resend of part of it
    assert r.held_ranges() == [(1, 39), (40, 60), (61, 100)]
    assert r.overdue(now=10) == [(1, 39), (61, 100)]
    assert r.overdue(now=27) == []                  # no progress: the timeout doubled
    assert r.overdue(now=28) == [(40, 60)]
