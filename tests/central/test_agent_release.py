"""A real agent with ``buffer.release = "central"`` against the shipped central broker and ingest:
what the broker took but the centre never stored stays on the clinic's disk and is sent again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from central_stack import CentralStack
from fixtures.agent_proc import AgentProcess
from fixtures.central import mqtt_client, pg_query
from helpers import wait_until
from support import buffer_seqs, central_agent_config

from agent.publish.topics import Topics
from agent.publish.wire import decode_payload, encode_ack, iter_readings

SITE = "SITE001"


def site_row(central: Any) -> tuple[int, int, int]:
    rows = pg_query(central, "SELECT max_seq, acked_seq, stored_total FROM sites WHERE site = %s", SITE)
    return rows[0] if rows else (0, 0, 0)


def test_readings_the_broker_took_but_no_ingest_stored_are_kept_and_sent_again(central: CentralStack,
                                                                            tmp_path: Path) -> None:
    # No ingest yet: the broker acknowledges the agent's readings and drops them (nobody subscribes).
    agent_depths: list[tuple[int, Any, Any]] = []

    def on_message(c: Any, u: Any, m: Any) -> None:
        batch = list(iter_readings(decode_payload(bytes(m.payload))))
        values = {r.metric: r.value for r in batch if r.device == "agent"}
        if "buffer.depth" in values:
            agent_depths.append((batch[0].seq, values["buffer.depth"], values.get("buffer.awaiting_ack")))
    witness = mqtt_client(central, "operator")
    witness.on_message = on_message
    witness.subscribe([(f"clinics/{SITE}/readings", 1), (f"clinics/{SITE}/backlog", 1)])
    state = tmp_path / "state"
    agent = AgentProcess(tmp_path, central_agent_config(central, state, SITE)).start()
    try:
        wait_until(lambda: state.joinpath("buffer.sqlite").exists() and buffer_seqs(state)[0] >= 200,
                   timeout=30, what="the agent to buffer readings the broker took")
        n, lo, _ = buffer_seqs(state)
        assert lo == 1, "a reading left the buffer without a central ack"
        # buffer.depth counts readings not yet sent: the ones awaiting the ack are reported apart.
        wait_until(lambda: any(a and a > 50 for _, _, a in agent_depths), timeout=20,
                   what="the agent to report readings awaiting the central ack")
        assert min(d for _, d, _ in agent_depths) < 50

        central.start_ingest()
        # Sent again after the timeout, stored once, acknowledged: the buffer empties from seq 1.
        def all_stored() -> bool:
            max_seq, acked, stored = site_row(central)
            n, lo, _ = buffer_seqs(state)
            return acked > 400 and stored == max_seq and lo > acked - 200 and n < 400
        wait_until(all_stored, timeout=60, interval=0.5, what="the buffer to drain on central acks")
    finally:
        agent.stop()
    max_seq, acked, stored = site_row(central)
    assert pg_query(central, "SELECT count(*) FROM gaps") == [(0,)]
    assert stored == max_seq                     # 1..max_seq, none missing, none counted twice
    n, lo, last = buffer_seqs(state)
    assert n == 0 or n == last - lo + 1          # released from the bottom only, no holes ...
    assert lo == 0 or lo - 1 <= acked            # ... and never beyond the centre's ack
    assert "Traceback" not in agent.log()


def test_an_ack_from_another_numbering_of_the_site_releases_nothing(central: CentralStack,
                                                                    tmp_path: Path) -> None:
    """A reinstalled agent (fresh state directory) meets the retained ack of its predecessor."""
    ingest = mqtt_client(central, "central-ingest")
    ingest.publish(Topics("clinics", SITE).ack, encode_ack(10**9), qos=1, retain=True).wait_for_publish(10)
    state = tmp_path / "state"
    agent = AgentProcess(tmp_path, central_agent_config(central, state, SITE)).start()
    try:
        wait_until(lambda: "another numbering of this site" in agent.log(), timeout=30,
                   what="the agent to report the foreign ack")
        wait_until(lambda: buffer_seqs(state)[0] >= 100, timeout=30, what="readings to be sent")
        n, lo, last = buffer_seqs(state)
        assert (lo, n) == (1, last)              # every reading still on disk
        # An ack within the agent's own numbering still releases.
        ingest.publish(Topics("clinics", SITE).ack, encode_ack(50), qos=1, retain=True).wait_for_publish(10)
        wait_until(lambda: buffer_seqs(state)[1] == 51, timeout=30, what="a genuine ack to release 1..50")
    finally:
        agent.stop()
    assert "Traceback" not in agent.log()
