"""The ingest prepares the next batch while the previous one is being stored (central/service.py):
a message in both, prepared before either was stored, is stored and counted once."""

from __future__ import annotations

from fixtures.central import pg_query, vm_export

from agent.publish.wire import encode_batch
from agent.readings import StoredReading
from central import pg
from central.config import load_config
from central.pipeline import Inbound, Pipeline
from central.vm import VictoriaMetrics


def test_a_message_in_two_batches_prepared_before_either_was_stored_counts_once(central):
    cfg = load_config(central.ingest_config("pipelined"))
    vm = VictoriaMetrics(cfg.vm_url)
    conn, lookup = pg.connect(cfg.pg_dsn), pg.connect(cfg.pg_dsn)
    try:
        pg.migrate(conn)
        pipeline = Pipeline(cfg, vm, conn, lookup=lookup)
        ts = 1_790_000_000.0
        rs = [StoredReading(seq, "ups", f"m{seq}", float(seq), "V", ts, 0) for seq in (1, 2, 3)]
        payload = encode_batch(rs, site="SITE001", boot="0123456789abcdef", compress=True).payload
        message = Inbound("clinics/SITE001/readings", payload, mid=1, qos=1)
        first = pipeline.prepare([message])
        again = pipeline.prepare([message])        # a redelivery, read before the first is stored
        assert first.body and again.body           # neither knows the other: both write
        pipeline.commit(first)
        pipeline.commit(again)
        vm.confirm_flushed()
    finally:
        vm.close()
        conn.close()
        lookup.close()
    assert pg_query(central, "SELECT stored_total, duplicates_total, max_seq FROM sites "
                             "WHERE site = 'SITE001'") == [(3, 3, 3)]
    samples = {s["metric"]["metric"]: s["values"] for s in vm_export(central)
               if s["metric"]["site"] == "SITE001"}
    assert samples == {"m1": [1.0], "m2": [2.0], "m3": [3.0]}
