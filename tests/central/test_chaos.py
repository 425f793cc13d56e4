"""kill -9 of the ingests and the broker at random moments while clinics publish: after the drain,
every reading is in VictoriaMetrics exactly once.

The clinics here release a reading only when the central ack covers it and send again what stays
unacknowledged (the contract of docs/mqtt.md, spoken by tests/central/support.py); the agent's own
release-on-central-ack replaces them once it exists.
"""

from __future__ import annotations

import random
import time
from collections import Counter

from fixtures.central import SITES, mqtt_client, pg_query, vm_export
from helpers import wait_until
from support import FakeClinic

PER_SITE = 12000
BATCH = 60
RESEND_AFTER_S = 3.0


def test_kill_9_of_ingests_and_broker_loses_nothing_and_doubles_nothing(central):
    rnd = random.Random(13)
    central.start_ingest("ingest-1")
    central.start_ingest("ingest-2")
    clinics = [FakeClinic(mqtt_client(central, s), s) for s in SITES]
    t0 = time.time() - 2 * 86400
    batches = PER_SITE // BATCH
    kills = sorted(rnd.sample(range(5, batches - 5), 8))
    victims = ["broker", "ingest-1", "ingest-2", "broker"] * 2
    rnd.shuffle(victims)
    for i in range(batches):
        for c in clinics:
            # One poll of BATCH metrics at t0 + its first seq: each (series, timestamp) is one reading.
            rs = c.readings([(f"m{k}", c.next_seq + k) for k in range(BATCH)], ts=t0 + c.next_seq)
            c.publish(rs)
        if kills and i == kills[0]:
            kills.pop(0)
            victim = victims.pop()
            if victim == "broker":
                central.broker.kill9()
                central.broker.start()
            else:
                p = next(p for p in central.ingests if p.alive() and p.log_path.stem == victim)
                p.kill9()
                central.start_ingest(victim, wait=False)
        time.sleep(0.01)                                  # ~ a fleet's pace, not a burst

    def drained():
        for c in clinics:
            c.resend_unacked(RESEND_AFTER_S)
        return all(c.acked == c.next_seq - 1 for c in clinics)
    try:
        wait_until(drained, timeout=120, interval=0.5, what="every clinic's readings acknowledged")
    except AssertionError:
        print([(c.site, c.acked, c.next_seq - 1, len(c.unacked)) for c in clinics],
              pg_query(central, "SELECT site, max_seq, acked_seq, stored_total, ack_due FROM sites"),
              pg_query(central, "SELECT * FROM seq_ranges"))
        raise

    per_site = Counter()
    doubled = []
    for series in vm_export(central):
        site = series["metric"]["site"]
        per_site[site] += len(series["timestamps"])
        dup = [t for t, n in Counter(series["timestamps"]).items() if n > 1]
        doubled += dup
    assert doubled == []
    assert dict(per_site) == {s: PER_SITE for s in SITES}
    # And each sample is the reading the clinic made (value = seq, polled at t0 + the poll's first seq).
    for series in vm_export(central, '{__name__="clinic_value",site="SITE001"}'):
        k = int(series["metric"]["metric"][1:])
        for t, v in zip(series["timestamps"], series["values"]):
            assert t == round((t0 + v - k) * 1000)
    assert pg_query(central, "SELECT site, stored_total FROM sites ORDER BY site") == [(s, PER_SITE) for s in SITES]
    assert pg_query(central, "SELECT count(*) FROM gaps") == [(0,)]
