"""Diagnostics and command results are kept by the ingest and readable afterwards, by anyone,
not only by a subscriber that was listening when the site answered."""

from __future__ import annotations

import json

from fixtures.central import mqtt_client, pg_query
from helpers import wait_until

from central import cli as central_cli


def test_a_diagnostics_report_and_a_result_are_stored_once_and_listed_later(central, capsys):
    central.start_ingest()
    site = mqtt_client(central, "SITE002")
    result = {"v": 1, "site": "SITE002", "at": 1_790_000_000.5, "id": "9f2c51d07a3e4b18",
              "command": "diagnostics", "ok": True,
              "result": {"topic": "clinics/SITE002/diagnostics", "bytes": 321}}
    report = {"site": "SITE002", "ts": 1_790_000_000.4, "devices": {"ups": {"status": "timeout"}}}
    for _ in range(2):   # a redelivery is not a second answer
        site.publish("clinics/SITE002/diagnostics", json.dumps(report).encode(), qos=1).wait_for_publish()
        site.publish("clinics/SITE002/cmd/result", json.dumps(result).encode(), qos=1).wait_for_publish()
    # One ingest, one publisher: stored in order, so once this one is in, the copies were seen.
    last = dict(result, id="00000000000000ff", command="poll_now", result={"devices": []})
    site.publish("clinics/SITE002/cmd/result", json.dumps(last).encode(), qos=1).wait_for_publish()
    wait_until(lambda: pg_query(central, "SELECT 1 FROM command_results WHERE command_id = %s",
                                "00000000000000ff"), timeout=20, what="the answers stored")
    site.loop_stop()
    site.disconnect()

    code = central_cli.main(["commands", "-c", str(central.ingest_config()), "--site", "SITE002",
                             "--json"])
    rows = [r for r in json.loads(capsys.readouterr().out) if r["command"] != "poll_now"]
    assert code == 0 and len(rows) == 2, rows
    by_leaf = {r["leaf"]: r for r in rows}
    assert by_leaf["cmd/result"]["command_id"] == "9f2c51d07a3e4b18" and by_leaf["cmd/result"]["ok"]
    assert by_leaf["cmd/result"]["at"] == 1_790_000_000.5
    assert by_leaf["diagnostics"]["answer"]["devices"]["ups"]["status"] == "timeout"
    assert by_leaf["cmd/result"]["sent"] is None, "sent from elsewhere (clinic-agent fleet)"
