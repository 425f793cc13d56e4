"""clinic-central ingest against real Mosquitto, VictoriaMetrics and PostgreSQL: what a central team sees."""

from __future__ import annotations

import json
import zlib

from fixtures.central import mqtt_client, pg_query, vm_export
from helpers import wait_until
from support import FakeClinic

from agent.publish.wire import decode_ack


def stored(central, site):
    rows = pg_query(central, "SELECT stored_total FROM sites WHERE site = %s", site)
    return rows[0][0] if rows else 0


def test_readings_land_in_victoriametrics_once_with_edge_times_and_the_ack_follows(central):
    central.start_ingest()
    c = mqtt_client(central, "SITE001")
    clinic = FakeClinic(c, "SITE001")
    t0 = 1_790_000_000.125
    first = clinic.readings([("input.voltage", 127.4), ("on_battery", False), ("mode", "online"),
                             ("battery.runtime_s", None)], ts=t0)
    second = clinic.readings([("input.voltage", 118.0), ("on_battery", True), ("mode", "battery")],
                             ts=t0 + 10)
    clinic.publish(first)
    clinic.publish(second, compress=False)
    clinic.publish(first, lane="backlog")         # sent again (a lost PUBACK): stored once
    wait_until(lambda: clinic.acked == 7, timeout=20, what="the central ack to cover seq 7")

    series = {(s["metric"]["__name__"], s["metric"]["metric"], s["metric"].get("value")):
              list(zip(s["timestamps"], s["values"])) for s in vm_export(central)
              if s["metric"]["site"] == "SITE001"}
    assert series[("clinic_value", "input.voltage", None)] == [(1790000000125, 127.4), (1790000010125, 118.0)]
    assert series[("clinic_value", "on_battery", None)] == [(1790000000125, 0), (1790000010125, 1)]
    assert series[("clinic_text", "mode", "online")] == [(1790000000125, 1)]
    assert series[("clinic_text", "mode", "battery")] == [(1790000010125, 1)]
    assert series[("clinic_null", "battery.runtime_s", None)] == [(1790000000125, 1)]
    site = pg_query(central, "SELECT stored_total, duplicates_total, max_seq, acked_seq FROM sites "
                             "WHERE site = 'SITE001'")[0]
    assert site == (7, 4, 7, 7)
    # The ack is retained: a clinic that (re)connects later reads it at once.
    late = mqtt_client(central, "SITE001")
    got = []
    late.on_message = lambda cl, u, m: got.append(decode_ack(m.payload))
    late.subscribe("clinics/SITE001/ack", qos=1)
    wait_until(lambda: got == [7], timeout=10, what="the retained ack")


def test_status_meta_config_and_events_go_to_postgresql_once(central):
    central.start_ingest()
    c = mqtt_client(central, "SITE002")
    c.publish("clinics/SITE002/status", json.dumps(
        {"state": "online", "boot": "00112233445566ff", "version": "0.1.0", "ts": 1790000000.0}), qos=1, retain=True)
    c.publish("clinics/SITE002/meta", json.dumps({"v": 1, "units": {"ups": {"input.voltage": "V"}}}),
              qos=1, retain=True)
    c.publish("clinics/SITE002/config/state", json.dumps(
        {"v": 1, "site": "SITE002", "ts": 1790000000.0, "state": "applied",
         "config": {"source": "push", "version": 7}, "highest_version": 7, "latest_push": None,
         "set_aside": None, "event": None}), qos=1, retain=True)
    events = {"v": 1, "site": "SITE002", "boot": "00112233445566ff", "e": [
        {"id": 1, "kind": "raise", "cond": "on_battery", "dev": "ups", "start": 1790000100.5, "end": None,
         "dur_s": None, "est": False, "values": {"input.voltage": 0}, "flags": 0},
        {"id": 2, "kind": "clear", "cond": "on_battery", "dev": "ups", "start": 1790000100.5,
         "end": 1790000400.5, "dur_s": 300.0, "est": False, "values": {"input.voltage": 127}, "flags": 0}]}
    payload = json.dumps(events).encode()
    c.publish("clinics/SITE002/events", payload, qos=1)
    c.publish("clinics/SITE002/events", zlib.compress(payload), qos=1)     # resent, compressed
    c.publish("clinics/SITE002/events/active", json.dumps(
        {"v": 1, "site": "SITE002", "ts": 1790000400.5, "active": []}), qos=1, retain=True)
    c.publish("clinics/SITE002/summary", json.dumps(
        {"v": 1, "site": "SITE002", "day": "2026-09-21", "outage_s": 300}), qos=1)

    def complete():
        return pg_query(central, "SELECT count(*) FROM events")[0][0] == 2 and pg_query(
            central, "SELECT count(*) FROM daily_summaries")[0][0] == 1 and pg_query(
            central, "SELECT status, config_version, units FROM sites WHERE site='SITE002'")
    wait_until(complete, timeout=20, what="events, summary and site state in PostgreSQL")
    rows = pg_query(central, "SELECT id, kind, extract(epoch FROM start_at), extract(epoch FROM end_at), dur_s "
                             "FROM events WHERE site = 'SITE002' ORDER BY id")
    assert [(i, k, float(s), e and float(e), d) for i, k, s, e, d in rows] == [
        (1, "raise", 1790000100.5, None, None), (2, "clear", 1790000100.5, 1790000400.5, 300.0)]
    assert pg_query(central, "SELECT status, agent_version, config_version, units FROM sites WHERE site='SITE002'")[0] \
        == ("online", "0.1.0", "7", {"ups": {"input.voltage": "V"}})
    wait_until(lambda: pg_query(central, "SELECT count(*) FROM events_active")[0][0] == 1, timeout=10,
               what="the active list")


def test_a_gap_that_stays_after_the_backlog_drained_is_loss_with_the_agents_reason(central):
    central.ingest_extra = "gap_settle_s = 0.5\n"
    central.start_ingest()
    clinic = FakeClinic(mqtt_client(central, "SITE003"), "SITE003")
    clinic.publish(clinic.readings([(f"m{i}", i) for i in range(10)]))           # seq 1..10
    clinic.readings([(f"m{i}", i) for i in range(10)])                           # 11..20: dropped by the cap
    clinic.publish(clinic.readings([("buffer.dropped_total", 10), ("buffer.depth", 5)], device="agent"))
    wait_until(lambda: clinic.acked == 10, timeout=20, what="the ack up to the gap")
    # Until the agent says its backlog drained, the gap may still fill: the ack waits at 10.
    clinic.publish(clinic.readings([("buffer.dropped_total", 10), ("buffer.depth", 0)], device="agent"))
    wait_until(lambda: clinic.acked == 24, timeout=20, what="the ack past the final gap")
    assert pg_query(central, "SELECT lo, hi, reason FROM gaps WHERE site = 'SITE003'") == [(11, 20, "dropped_by_cap")]


def test_status_shows_the_ingest_sites_and_gaps(central, capsys):
    from central.cli import main
    central.start_ingest()
    clinic = FakeClinic(mqtt_client(central, "SITE001"), "SITE001")
    clinic.publish(clinic.readings([("input.voltage", 127.0)]))
    wait_until(lambda: clinic.acked == 1, timeout=20, what="the ack")
    cfg = central.ingest_config("ingest-1")
    assert main(["status", "-c", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "ingest ingest-1: running, broker connected" in out
    assert "1 known, 1 seen in the last 5 min" in out
    assert "gaps:      0 (0 readings lost)" in out
    central.ingests[0].stop()
    # A silent ingest is a problem: exit 1 once its figures are stale.
    wait_until(lambda: main(["status", "-c", str(cfg)]) == 1, timeout=30, interval=1, what="status to notice")


def test_a_clinic_cannot_forge_another_clinics_readings_nor_its_own_ack(central):
    central.start_ingest()
    own = FakeClinic(mqtt_client(central, "SITE002"), "SITE002")
    forger = mqtt_client(central, "SITE001")
    forged = json.dumps({"v": 1, "site": "SITE002", "boot": "b",
                         "g": [{"s": 1, "d": "ups", "t": 1790000000, "m": [["on_battery", True]]}]})
    forger.publish("clinics/SITE002/readings", forged, qos=1)                    # not its topic
    forger.publish("clinics/SITE001/ack", b'{"v":1,"seq":1000}', qos=1, retain=True)  # only the ingest may
    own.publish(own.readings([("on_battery", False)], ts=1790000000.0))
    wait_until(lambda: own.acked == 1, timeout=20, what="SITE002's own reading")
    assert [s["values"] for s in vm_export(central) if s["metric"]["site"] == "SITE002"] == [[0]]
    watcher = mqtt_client(central, "operator")
    acks = {}
    watcher.on_message = lambda c, u, m: acks.__setitem__(m.topic, decode_ack(m.payload))
    watcher.subscribe("clinics/+/ack", qos=1)
    wait_until(lambda: "clinics/SITE002/ack" in acks, timeout=10, what="the retained acks")
    assert "clinics/SITE001/ack" not in acks
    assert pg_query(central, "SELECT count(*) FROM set_aside") == [(0,)]
