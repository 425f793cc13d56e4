"""`clinic-agent events` reads the buffer file read-only, with the agent stopped (and so with the
link down), in English or Spanish; the active problems in plain words, as `status` will show."""

from __future__ import annotations

import time
from datetime import timedelta, timezone

from cli_support import SPANISH, run_cli
from events_script import Clinic

from agent.events import render, store
from agent.events.model import Active
from agent.i18n import Messages
from agent.store.outbox import ReadingStore


def write_config(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text(f"""
site_id = "TEST001"
state_dir = "{tmp_path}"
[mqtt]
host = "127.0.0.1"
tls = false
[[devices]]
name = "ups"
kind = "host"
""")
    return path


def clinic_with_history(tmp_path) -> Clinic:
    """A buffer file with an outage over and one going on, as the agent leaves it."""
    now = time.time()
    c = Clinic()
    c.now = c.origin = now - 3 * 3600
    c.polls_for("ups", 3600, every=10, on_battery=False, battery__runtime_s=1800)
    c.polls_for("ups", 47 * 60, every=10, on_battery=True, battery__runtime_s=1500)
    c.polls_for("ups", 3600, every=10, on_battery=False, battery__runtime_s=1800)
    c.polls_for("ups", 600, every=10, on_battery=True, battery__runtime_s=1380)
    rs = ReadingStore.open(tmp_path / "buffer.sqlite")
    store.ensure_schema(rs._db)
    store.record(rs._db, c.events, c.engine.snapshot())
    rs.close()
    return c


def test_events_lists_active_problems_first_then_recent_events(tmp_path):
    config = write_config(tmp_path)
    clinic_with_history(tmp_path)
    r = run_cli("events", "-c", config)
    assert r.code == 1, r                                  # a problem is on
    lines = r.out.splitlines()
    assert lines[0] == "Active now:"
    assert lines[1].startswith("  ups: no mains power, running on battery since ")
    assert lines[1].endswith("; about 23 min of battery left")
    assert "lasted 47 min" in r.out
    assert r.out.count("no mains power, running on battery: began") == 2
    assert r.out.count("no mains power, running on battery: ended") == 1


def test_events_in_spanish_and_as_json(tmp_path):
    config = write_config(tmp_path)
    c = clinic_with_history(tmp_path)
    r = run_cli("events", "-c", config, lang=SPANISH)
    assert r.out.splitlines()[0] == "Activos ahora:"
    assert "sin luz de la red, funcionando con batería desde las" in r.out
    assert "duró 47 min" in r.out
    doc = run_cli("events", "-c", config, "--json").json
    assert [e["id"] for e in doc["events"]] == [e.id for e in c.events]
    assert [a["cond"] for a in doc["active"]] == ["mains_lost"]
    old = run_cli("events", "-c", config, "--json", "--since", "30m").json
    assert [e["kind"] for e in old["events"]] == ["raise"]      # only the outage going on


def test_events_refuses_a_bad_since_and_reports_a_missing_buffer(tmp_path):
    config = write_config(tmp_path)
    r = run_cli("events", "-c", config, "--since", "yesterday-ish")
    assert r.code == 2 and "not a time" in r.err
    r = run_cli("events", "-c", config)
    assert r.code == 1 and "no buffer file" in r.err


def test_active_problems_in_plain_words():
    tz = timezone(timedelta(hours=-6))
    now = 1_795_356_000.0                                   # 2026-11-20 16:00 UTC-6... a day
    t_en, t_es = Messages("en"), Messages("es")
    active = [Active(1, "raise", "voltage_low.l1_l2", "meter", now - 600, {"voltage.l1_l2": 190}),
              Active(2, "flapping", "wan_down", "wan", now - 90000, {}),
              Active(3, "raise", "mains_lost", "ups", now - 25 * 60, {"on_battery": True,
                                                                     "battery.runtime_s": 1500})]
    lines = render.active_lines(active, t_en, now=now, tz=tz,
                                latest={"ups": {"battery.runtime_s": 600}})
    assert lines[0].startswith("meter: low voltage (phase L1-L2) since ") and \
        lines[0].endswith("(10 min)")
    assert "wan: no internet, coming and going since 2026-11-" in lines[1]
    assert lines[2].endswith("(25 min); about 10 min of battery left")
    es = render.active_lines(active, t_es, now=now, tz=tz)
    assert es[0].startswith("meter: voltaje bajo (fase L1-L2) desde las ")
    assert es[2].endswith("quedan unos 25 min de batería")
    assert render.condition_words("something_new", t_en) == "something_new"
