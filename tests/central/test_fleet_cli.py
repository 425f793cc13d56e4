"""`clinic-central fleet` for scripts: which clinics are on battery, offline for an hour, without
internet, answered at once from the store the ingest fills, with an exit code cron can act on."""

from __future__ import annotations

import json
import time

from fixtures.central import pg_query
from helpers import wait_until
from web_support import Site, cli


def test_fleet_answers_from_the_store_at_once_with_exit_codes_for_cron(central, tmp_path):
    central.start_ingest()
    cfg = central.ingest_config("cli")
    now = time.time()
    s1, s2, s3 = (Site(central, s) for s in ("SITE001", "SITE002", "SITE003"))
    s1.online()
    battery = s1.raise_event("mains_lost", "ups", now - 300, {"on_battery": True,
                                                              "battery.charge_pct": 64,
                                                              "battery.runtime_s": 900})
    s1.active([battery])
    s2.publish("status", {"state": "offline", "boot": "00112233445566ff", "ts": now - 7200},
               retain=True)
    s3.online()
    s3.active([s3.raise_event("wan_down", "wan", now - 1800, {"wan.up": False}),
               s3.raise_event("device_unreachable", "router", now - 1700,
                              {"poll.status": "timeout"})])
    wait_until(lambda: pg_query(central, "SELECT count(*) FROM events_active")[0][0] == 2
               and pg_query(central, "SELECT status FROM sites WHERE site = 'SITE002'")
               == [("offline",)], timeout=20, what="the three clinics in PostgreSQL")

    r = cli(cfg, "fleet", "--show", "on_battery", "--json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert [c["site"] for c in doc["clinics"]] == ["SITE001"]
    c = doc["clinics"][0]
    assert c["status"] == "on_battery" and c["charge_pct"] == 64 and c["runtime_s"] == 900
    assert abs(_epoch(c["on_battery_since"]) - (now - 300)) < 0.01

    r = cli(cfg, "fleet", "--show", "offline", "--for", "1h")
    assert r.returncode == 1 and r.stdout.startswith("SITE002") and "offline" in r.stdout
    assert cli(cfg, "fleet", "--show", "offline", "--for", "3h", "-q").returncode == 0
    assert cli(cfg, "fleet", "--show", "on_battery", "--for", "1h").returncode == 0

    r = cli(cfg, "fleet", "--show", "wan_down")
    assert r.returncode == 1 and "SITE003" in r.stdout and "not answering: router" in r.stdout
    # every problem, worst first: offline, then on battery, then internet down
    r = cli(cfg, "fleet", "--json")
    assert [c["site"] for c in json.loads(r.stdout)["clinics"]] == ["SITE002", "SITE001", "SITE003"]

    # without VictoriaMetrics the answer stands on PostgreSQL, and says what it does not know
    central.vm.stop()
    r = cli(cfg, "fleet", "--show", "on_battery", "--json")
    assert r.returncode == 1 and "VictoriaMetrics did not answer" in r.stderr
    assert json.loads(r.stdout)["metrics_ok"] is False
    assert json.loads(r.stdout)["clinics"][0]["charge_pct"] == 64      # the raise's own value

    # the clinic is back on mains: nothing to act on, exit 0
    s1.active([])
    wait_until(lambda: cli(cfg, "fleet", "--show", "on_battery", "-q").returncode == 0,
               timeout=20, what="SITE001 off battery")
    assert cli(cfg, "fleet", "--for", "soon").returncode == 2
    for s in (s1, s2, s3):
        s.close()


def test_the_inventory_gives_states_and_municipalities_to_filter_by(central, tmp_path):
    cfg = central.ingest_config("cli")
    bad = tmp_path / "bad.csv"
    bad.write_text("site,name,state,municipality\nSITE001,Clínica 1,Oaxaca,Juchitán\n"
                   "no good/id,x,y,z\n")
    r = cli(cfg, "sites", "import", str(bad))
    assert r.returncode == 2 and "line 3" in r.stderr and "nothing imported" in r.stderr
    good = tmp_path / "sites.csv"
    good.write_text("site,name,state,municipality\nSITE001,Clínica 1,Oaxaca,Juchitán\n"
                    "SITE002,Clínica 2,Chiapas,Ocosingo\nSITE009,Clínica 9,Oaxaca,Tlaxiaco\n")
    r = cli(cfg, "sites", "import", str(good))
    assert r.returncode == 0, r.stderr
    r = cli(cfg, "fleet", "--show", "all", "--state", "oaxaca", "--json")
    clinics = json.loads(r.stdout)["clinics"]
    # in the inventory but never connected: offline (since never)
    assert [(c["site"], c["status"], c["municipality"], c["since"]) for c in clinics] == [
        ("SITE001", "offline", "Juchitán", None), ("SITE009", "offline", "Tlaxiaco", None)]
    r = cli(cfg, "fleet", "--show", "all", "--municipality", "Ocosingo")
    assert r.returncode == 1 and r.stdout.startswith("SITE002")


def _epoch(iso: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(iso).timestamp()
