"""Real agents -> the shipped central broker -> two ingest processes -> VictoriaMetrics + PostgreSQL."""

from __future__ import annotations

import time
from collections import Counter

from fixtures.agent_proc import AgentProcess
from fixtures.central import SITES, mqtt_client, pg_query, vm_export
from helpers import wait_until

from agent.publish.wire import decode_payload, iter_readings


def agent_config(central, site, state_dir):
    return f"""
site_id = "{site}"
state_dir = "{state_dir}"
status_interval_s = 1
[mqtt]
host = "127.0.0.1"
port = {central.broker_port}
tls = false
username = "{site}"
password = "{central.site_password(site)}"
reconnect_max_s = 1
[[devices]]
name = "pc"
kind = "host"
interval_s = 0.2
"""


def series_key(site, r):
    ms = int(round(r.ts * 1000))
    if r.value is None:
        return ("clinic_null", site, r.device, r.metric, None, ms)
    if isinstance(r.value, str):
        return ("clinic_text", site, r.device, r.metric, r.value, ms)
    return ("clinic_value", site, r.device, r.metric, None, ms)


import pytest


@pytest.mark.parametrize("ingests,outage", [
    # Mosquitto 2.0 forgets shared subscriptions when it restarts (docs/central.md): with agents that
    # release on the broker's PUBACK, a broker outage is run with one ingest on a plain subscription.
    (("ingest-1",), True),
    (("ingest-1", "ingest-2"), False),
], ids=["broker-outage", "two-ingests-shared"])
def test_several_agents_every_reading_once_in_the_stores(central, tmp_path, ingests, outage):
    if len(ingests) == 1:
        central.ingest_extra = ""
        central.mqtt_shared = False
    for name in ingests:
        central.start_ingest(name)
    # A witness with its own persistent session: what the agents published, as the broker delivered it.
    seen = []
    witness = mqtt_client(central, "operator", client_id="witness", v5=False, clean=False)
    witness.on_message = lambda c, u, m: seen.append((m.topic, bytes(m.payload)))
    witness.subscribe([("clinics/+/readings", 1), ("clinics/+/backlog", 1)])
    witness.on_connect = lambda c, *a: c.subscribe([("clinics/+/readings", 1), ("clinics/+/backlog", 1)])
    agents = []
    for site in SITES:
        d = tmp_path / site
        d.mkdir()
        agents.append(AgentProcess(d, agent_config(central, site, d / "state")).start())
    try:
        def stored_each(n):
            rows = dict(pg_query(central, "SELECT site, stored_total FROM sites"))
            return all(rows.get(s, 0) >= n for s in SITES)
        wait_until(lambda: stored_each(30), timeout=60, what="readings from every agent")
        if outage:
            central.broker.stop()               # the central broker is down for 3 s ...
            time.sleep(3)
            central.broker.start()              # ... the agents' buffers drain as backlog
        before = dict(pg_query(central, "SELECT site, stored_total FROM sites"))
        wait_until(lambda: stored_each(max(before.values()) + 60), timeout=60, what="readings after the outage")
    finally:
        for a in agents:
            a.stop()
    # Every reading the broker delivered is stored, once; PostgreSQL knows no gap for any site.
    def witnessed():
        out = {}
        for topic, payload in list(seen):
            site = topic.split("/")[1]
            for r in iter_readings(decode_payload(payload)):
                out[(site, r.seq)] = r
        return out

    def complete():
        w = witnessed()
        top = {s: max(q for (site, q) in w if site == s) for s in SITES}
        rows = {s: (m, a) for s, m, a in pg_query(central, "SELECT site, max_seq, acked_seq FROM sites")}
        return all(rows.get(s) == (top[s], top[s]) for s in SITES) and w
    try:
        w = wait_until(complete, timeout=60, what="every site stored and acknowledged up to its last reading")
    except AssertionError:
        w = witnessed()
        print({s: max(q for (site, q) in w if site == s) for s in SITES},
              pg_query(central, "SELECT site, max_seq, acked_seq, drained_seq FROM sites"),
              pg_query(central, "SELECT * FROM seq_ranges"),
              pg_query(central, "SELECT reason, detail FROM set_aside"))
        raise
    for s in SITES:
        assert len([1 for (site, _) in w if site == s]) == max(q for (site, q) in w if site == s), \
            f"{s}: the broker delivered a numbering with holes"
    expected = Counter(series_key(site, r) for (site, _), r in w.items())

    def exported() -> Counter:
        got: Counter = Counter()
        for series in vm_export(central):
            m = series["metric"]
            for ts in series["timestamps"]:
                got[(m["__name__"], m["site"], m["device"], m["metric"], m.get("value"), ts)] += 1
        return got
    # Samples flushed to disk become searchable a moment later (VictoriaMetrics' in-memory parts):
    # wait for them, then compare exactly (a duplicate would still show).
    try:
        wait_until(lambda: exported() == expected, timeout=20, what="every sample searchable")
    except AssertionError:
        pass
    assert exported() == expected
    assert pg_query(central, "SELECT count(*) FROM gaps") == [(0,)]
    assert pg_query(central, "SELECT reason, count(*) FROM set_aside GROUP BY reason") == []
    stats = dict(pg_query(central, "SELECT ingest_id, (stats->>'messages')::int FROM ingest_stats"))
    assert all(stats[name] > 0 for name in ingests), stats      # each took its share
    for a in agents:
        assert "Traceback" not in a.log()
