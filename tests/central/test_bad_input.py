"""Bad input is set aside with a reason and counted; it never stops the ingest nor other sites."""

from __future__ import annotations

import json
import zlib

from fixtures.central import mqtt_client, pg_query, vm_export
from helpers import wait_until
from support import FakeClinic


def test_bad_payloads_unknown_sites_and_series_explosions_are_set_aside_and_good_sites_go_on(central):
    central.ingest_extra = "max_series_per_site = 30\n"
    central.start_ingest()
    bad = mqtt_client(central, "SITE001")
    ops = mqtt_client(central, "operator")      # may publish anywhere: stands in for a foreign publisher
    good = FakeClinic(mqtt_client(central, "SITE002"), "SITE002")
    t = "clinics/SITE001/readings"
    bad.publish(t, b"\x00" * 300_000, qos=1)                                      # oversized
    bad.publish(t, zlib.compress(b"{" + b" " * 20_000_000 + b"}"), qos=1)         # zip bomb
    bad.publish(t, zlib.compress(b'{"v": 1, "site": "SITE001"}')[:-3], qos=1)     # truncated
    bad.publish(t, b"{\"hello\": ", qos=1)                                         # not JSON
    bad.publish(t, json.dumps({"temperature": 21}).encode(), qos=1)               # someone else's JSON
    ops.publish("clinics/NOPE!/readings", b"{}", qos=1)                            # not a site id
    ops.publish("clinics/SITE002/readings", json.dumps(                           # says another site
        {"v": 1, "site": "SITE001", "boot": "b", "g": [{"s": 1, "d": "x", "t": 1790000000, "m": [["a", 1]]}]}).encode(), qos=1)
    explode = FakeClinic(bad, "SITE001")
    explode.publish(explode.readings([(f"metric{i}", i) for i in range(50)] + [("bad name!", 1)], ts=1790000000.0))
    good.publish(good.readings([("input.voltage", 127.0)], ts=1790000000.0))
    wait_until(lambda: good.acked == 1, timeout=20, what="the good site's reading to be stored and acknowledged")
    wait_until(lambda: explode.acked == 51, timeout=20, what="the set-aside readings to count as handled")

    reasons = dict(pg_query(central, "SELECT reason, sum(readings) FROM set_aside GROUP BY reason"))
    assert {k: int(v) for k, v in reasons.items()} == {
        "too_large": 0, "inflated_too_large": 0, "truncated": 0, "not_json": 0, "foreign": 0,
        "unknown_site": 0, "site_mismatch": 0, "series_cap": 20, "bad_name": 1}
    assert pg_query(central, "SELECT stored_total, set_aside_total FROM sites WHERE site = 'SITE001'") == [(30, 21)]
    assert len([s for s in vm_export(central) if s["metric"]["site"] == "SITE001"]) == 30
    assert [s["values"] for s in vm_export(central) if s["metric"]["site"] == "SITE002"] == [[127.0]]
    # The set-aside readings are kept with the reason, not thrown away.
    kept = json.loads(pg_query(central, "SELECT payload FROM set_aside WHERE reason = 'series_cap'")[0][0])
    assert [r[2] for r in kept] == [f"metric{i}" for i in range(30, 50)]
    assert central.ingests[0].alive()
