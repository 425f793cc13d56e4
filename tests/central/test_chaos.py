"""Chaos: kill -9 of the ingests, the broker AND the agents at random moments while three real
agents, releasing their buffers on the central ack (``buffer.release = "central"``), publish:
after the drain every reading each agent numbered is in the stores exactly once.

One of the kills is the whole centre (broker and both ingests, as in a power cut there): the
broker comes back first and takes the agents' readings while no ingest is subscribed (Mosquitto
2.0 does not restore shared subscriptions), and drops them. Only the agents' resends of what
stays unacknowledged bring those back; with release on the broker's PUBACK this test fails.

Size: ``CHAOS_READINGS`` readings in all (default 30,000: under a minute on a 2-core machine).
The full run of issue 13 is ``CHAOS_READINGS=100000 .venv/bin/python -m pytest -q
tests/central/test_chaos.py`` (about a minute and a half).
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from central_stack import CentralStack
from fixtures.agent_proc import AgentProcess
from fixtures.central import SITES, pg_query, vm_export
from helpers import wait_until
from support import agent_connects, buffer_seqs, central_agent_config

TOTAL = int(os.environ.get("CHAOS_READINGS", "30000"))
KILLS = 9


def agent_config(central: Any, state: Path, site: str, *, polling: bool = True,
                 status_interval_s: float = 1) -> str:
    # 2 host devices polled 10 times a second, ~26 readings a poll: ~500 readings/s per agent.
    return central_agent_config(central, state, site, devices=2, interval_s=0.1, disks=8,
                                timeout_s=3, polling=polling, status_interval_s=status_interval_s)


def produced(states: dict[str, Path]) -> int:
    return sum(buffer_seqs(d)[2] for d in states.values())


def numbered(states: dict[str, Path], n: float) -> Callable[[], bool]:
    """Condition: the agents have numbered ``n`` readings in all."""
    return lambda: produced(states) >= n


def reconnected(states: dict[str, Path], before: dict[str, int]) -> Callable[[], bool]:
    """Condition: every agent connected again since ``before`` (its connect counts)."""
    return lambda: all(agent_connects(states[site]) > n for site, n in before.items())


@pytest.mark.chaos
@pytest.mark.timeout(900)
def test_kill_9_of_ingests_broker_and_agents_loses_nothing_and_doubles_nothing(
        central: CentralStack, tmp_path: Path) -> None:
    rnd = random.Random(13)
    central.start_ingest("ingest-1")
    central.start_ingest("ingest-2")
    agents: dict[str, AgentProcess] = {}
    states: dict[str, Path] = {}
    for site in SITES:
        d = tmp_path / site
        d.mkdir()
        states[site] = d / "state"
        agents[site] = AgentProcess(d, agent_config(central, states[site], site)).start()
    victims = ["broker", "ingest-1", "ingest-2", *SITES] * 2
    rnd.shuffle(victims)
    victims = ["centre", *victims[:KILLS - 1]]
    rnd.shuffle(victims)
    moments = sorted(rnd.uniform(0.05, 0.95) * TOTAL for _ in victims)
    log = []
    try:
        for at, victim in zip(moments, victims):
            wait_until(numbered(states, at), timeout=120, interval=0.2,
                       what=f"{at:.0f} readings numbered")
            log.append((round(at), victim))
            if victim == "broker":
                central.broker.kill9()
                central.broker.start()
            elif victim == "centre":
                connects = {site: agent_connects(states[site]) for site in SITES}
                for p in [*central.ingests, central.broker.proc]:
                    p.kill9()
                central.broker.start()
                # The agents are back and publishing before any ingest is.
                wait_until(reconnected(states, connects), timeout=30, what="agents reconnected")
                wait_until(numbered(states, produced(states) + 1000), timeout=30,
                           what="readings published with no ingest subscribed")
                central.start_ingest("ingest-1", wait=False)
                central.start_ingest("ingest-2", wait=False)
            elif victim.startswith("ingest"):
                p = next(p for p in central.ingests if p.alive() and p.log_path.stem == victim)
                p.kill9()
                central.start_ingest(victim, wait=False)
            else:
                agents[victim].kill9()
                agents[victim].start()          # same state directory: its buffer, its numbering
        wait_until(lambda: produced(states) >= TOTAL, timeout=300, interval=0.5,
                   what=f"{TOTAL} readings numbered")
        # The drain: the agents stop polling (a restart with the devices disabled) and their
        # buffers must empty on central acks alone.
        for site, a in agents.items():
            a.stop()
            a.config.write_text(agent_config(central, states[site], site, polling=False,
                                                     status_interval_s=3600))
            a.start()

        def drained() -> bool:
            acked = dict(pg_query(central, "SELECT site, acked_seq FROM sites"))
            return all(buffer_seqs(states[s])[0] == 0 and acked.get(s) == buffer_seqs(states[s])[2]
                       for s in SITES)
        wait_until(drained, timeout=240, interval=1, what="every agent's buffer released on central acks")
    except AssertionError:
        print("kills:", log, {s: buffer_seqs(d) for s, d in states.items()},
              pg_query(central, "SELECT site, max_seq, acked_seq, stored_total, drained_seq FROM sites"),
              pg_query(central, "SELECT * FROM seq_ranges"), pg_query(central, "SELECT * FROM gaps"))
        raise
    finally:
        for a in agents.values():
            a.stop()
    last = {s: buffer_seqs(d)[2] for s, d in states.items()}
    print("kills:", log, "readings:", last, "duplicates received:",
          pg_query(central, "SELECT site, duplicates_total FROM sites ORDER BY site"))
    assert sum(last.values()) >= TOTAL
    assert log and len(log) == len(victims)
    # PostgreSQL: every seq 1..last stored once, no gap, nothing set aside.
    assert pg_query(central, "SELECT site, max_seq, stored_total FROM sites ORDER BY site") == \
        [(s, last[s], last[s]) for s in SITES]
    assert pg_query(central, "SELECT count(*) FROM gaps") == [(0,)]
    assert pg_query(central, "SELECT count(*) FROM set_aside") == [(0,)]
    # VictoriaMetrics: one sample per reading (each reading its own series and millisecond).
    per_site: Counter[str] = Counter()
    doubled = []
    for series in vm_export(central):
        per_site[series["metric"]["site"]] += len(series["timestamps"])
        doubled += [t for t, n in Counter(series["timestamps"]).items() if n > 1]
    assert doubled == []
    assert dict(per_site) == last
    for a in agents.values():
        assert "Traceback" not in a.log()

