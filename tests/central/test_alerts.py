"""Alerts with the clinic's own times, end to end: a clinic's events over MQTT, the real ingest,
PostgreSQL, ``clinic-central alerts``, a real Alertmanager on the shipped route, and a webhook
receiver that counts what the operators would be told."""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fixtures.alertmanager import GROUP_INTERVAL_S, GROUP_WAIT_S, WebhookRecorder
from fixtures.central import mqtt_client, pg_query
from helpers import wait_until

from agent.events.model import Event
from agent.events.wire import encode_events

HOLD_S = GROUP_WAIT_S + GROUP_INTERVAL_S + 2
SITE = "SITE001"


def alerts_config(central: Any, am_url: str, *, report_ended: bool = True) -> Path:
    path = central.ingest_config("alerts-1")
    path.write_text(path.read_text() + f"""
[alerts]
url = "{am_url}"
report_ended = {"true" if report_ended else "false"}
timezone = "America/Mexico_City"
hold_s = {HOLD_S}
repost_s = 1
tick_s = 0.2
""")
    return path


def start_alerts(central: Any, cfg: Path) -> Any:
    from central_stack import Proc
    root = Path(__file__).resolve().parents[2]
    p = Proc([sys.executable, "-m", "central", "alerts", "-c", str(cfg)],
             central.workdir / "alerts-1.log", 0, env=dict(os.environ, PYTHONPATH=str(root)),
             wait=False).start()
    central.ingests.append(p)       # stopped with the stack
    wait_until(lambda: "holding the lock" in p.log() or not p.alive(), timeout=30,
               what="the alerts process to start")
    assert p.alive(), p.log()
    return p


def event(eid: int, kind: str, start: float, *, end: float | None = None, cond: str = "mains_lost",
          dev: str = "ups", values: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": eid, "kind": kind, "cond": cond, "dev": dev, "start": start, "end": end,
            "dur_s": None if end is None else round(end - start, 3), "est": False,
            "values": values or {"on_battery": kind != "clear", "battery.runtime_s": 1380},
            "flags": 0}


def publish_events(client: Any, *events: dict[str, Any]) -> None:
    """As the agent sends them: its own encoder (agent.events.wire), on its events topic."""
    payload = encode_events([Event.from_dict(e) for e in events], site=SITE, boot="00112233445566ff")
    client.publish(f"clinics/{SITE}/events", payload, qos=1).wait_for_publish(10)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pg_query_script(central: Any, sql: str) -> None:
    import psycopg
    with psycopg.connect(central.pg_dsn, autocommit=True) as conn:
        conn.execute(sql)


def at(rfc3339: str) -> float:
    """Alertmanager's time (RFC 3339, trailing zeros of the fraction dropped) in epoch seconds."""
    return round(datetime.fromisoformat(rfc3339).timestamp(), 3)


def alert_state(central: Any, start: float) -> str | None:
    rows = pg_query(central, "SELECT state FROM alerts WHERE site = %s AND start_at = to_timestamp(%s)",
                    SITE, start)
    return rows[0][0] if rows else None


def hhmm(ts: float) -> str:
    from zoneinfo import ZoneInfo
    return datetime.fromtimestamp(ts, ZoneInfo("America/Mexico_City")).strftime("%H:%M")


def assert_one_pair(webhook: WebhookRecorder, start: float, end: float) -> None:
    got = webhook.alerts(site=SITE, alertname="mains_lost", event_start=iso(start))
    assert [a["status"] for a in got] == ["firing", "resolved"], got
    firing, resolved = got
    assert at(firing["startsAt"]) == at(resolved["startsAt"]) == start
    assert at(resolved["endsAt"]) == end
    assert firing["labels"]["severity"] == "critical" and firing["labels"]["device"] == "ups"
    assert firing["annotations"]["code"] == "mains_lost"
    assert f"desde las {hhmm(start)} CST" in firing["annotations"]["summary"]
    assert f"since {hhmm(start)} CST" in firing["annotations"]["summary_en"]
    assert f"terminó a las {hhmm(end)} CST" in resolved["annotations"]["summary"]
    args = json.loads(resolved["annotations"]["args"])
    assert (args["start"], args["end"]) == (start, end)


def test_an_outage_during_a_2h_link_outage_gives_one_notification_pair_with_the_edge_times(
        central: Any, alertmanager: Any, webhook: WebhookRecorder) -> None:
    """The link was down 2 h; the clinic was on battery for 37 min of it. When the link returns
    the centre hears of both ends at once: the shipped setting (report_ended) tells it, once."""
    central.start_ingest()
    start_alerts(central, alerts_config(central, alertmanager.url))
    now = time.time()
    start, end = round(now - 7200 + 600, 3), round(now - 7200 + 600 + 2220, 3)
    clinic = mqtt_client(central, SITE)
    publish_events(clinic, event(41, "raise", start), event(42, "clear", start, end=end))
    wait_until(lambda: alert_state(central, start) == "done", timeout=60,
               what="the alert to be resolved and no longer posted")
    assert_one_pair(webhook, start, end)
    resolved = webhook.alerts(event_start=iso(start))[1]
    assert resolved["annotations"]["reported_late"] == "true"
    assert "duró 37 min" in resolved["annotations"]["summary"]
    assert "after 37 min" in resolved["annotations"]["summary_en"]
    assert "aviso tardío" in resolved["annotations"]["summary"]
    # The shipped route sends critical alerts by e-mail too: one message each way, in Spanish.
    assert [m["Subject"] for m in webhook.mails] == [f"ALERTA {SITE}: mains_lost",
                                                      f"RESUELTO {SITE}: mains_lost"]
    text = next(p for p in webhook.mails[1].walk() if p.get_content_type() == "text/plain")
    assert "duró 37 min" in text.get_payload(decode=True).decode()
    # The same events again (the clinic missed the broker's acknowledgement): nothing new.
    publish_events(clinic, event(41, "raise", start), event(42, "clear", start, end=end))
    later = round(time.time(), 3)
    publish_events(clinic, event(43, "raise", later, cond="wan_down", dev="wan", values={}))
    wait_until(lambda: webhook.alerts(alertname="wan_down"), timeout=30, what="the next alert")
    assert webhook.statuses(event_start=iso(start)) == ["firing", "resolved"]


def test_an_ended_event_is_not_told_when_report_ended_is_off(
        central: Any, alertmanager: Any, webhook: WebhookRecorder) -> None:
    central.start_ingest()
    start_alerts(central, alerts_config(central, alertmanager.url, report_ended=False))
    now = time.time()
    start, end = round(now - 7200, 3), round(now - 7000, 3)
    clinic = mqtt_client(central, SITE)
    publish_events(clinic, event(41, "raise", start), event(42, "clear", start, end=end))
    wait_until(lambda: alert_state(central, start) == "not_reported", timeout=30,
               what="the ended event to be recorded as not reported")
    live = round(time.time(), 3)
    publish_events(clinic, event(43, "raise", live))
    wait_until(lambda: webhook.alerts(event_start=iso(live)), timeout=30, what="the live alert")
    assert webhook.alerts(event_start=iso(start)) == []


def test_a_live_outage_fires_then_resolves_with_the_edge_times(
        central: Any, alertmanager: Any, webhook: WebhookRecorder) -> None:
    central.start_ingest()
    # The inventory the web page shows (clinic-central sites import): its state and municipality.
    root = Path(__file__).resolve().parents[2]
    pg_query_script(central, (root / "central" / "schema_web.sql").read_text())
    pg_query_script(central, "INSERT INTO site_inventory (site, name, state, municipality) "
                             f"VALUES ('{SITE}', 'Centro de Salud', 'Oaxaca', 'Juchitán de Zaragoza')")
    start_alerts(central, alerts_config(central, alertmanager.url))
    clinic = mqtt_client(central, SITE)
    start = round(time.time() - 5, 3)       # raised 5 s after the first poll that showed it
    publish_events(clinic, event(7, "raise", start))
    wait_until(lambda: webhook.alerts(event_start=iso(start)), timeout=30, what="the firing notification")
    firing = webhook.alerts(event_start=iso(start))[0]
    assert firing["status"] == "firing" and "quedan unos 23 min de batería" in firing["annotations"]["summary"]
    assert (firing["labels"]["state"], firing["labels"]["municipality"]) == ("Oaxaca", "Juchitán de Zaragoza")
    assert firing["annotations"]["summary"].startswith(f"{SITE} (Juchitán de Zaragoza, Oaxaca) ups: ")
    end = round(time.time(), 3)
    publish_events(clinic, event(8, "clear", start, end=end))
    wait_until(lambda: alert_state(central, start) == "done", timeout=60, what="the alert to be done")
    assert_one_pair(webhook, start, end)
    assert webhook.alerts(event_start=iso(start))[1]["annotations"].get("reported_late") is None


@pytest.mark.parametrize("when", ["before_notified", "after_notified"])
def test_the_alerts_process_killed_midway_neither_repeats_nor_loses_a_notification(
        central: Any, alertmanager: Any, webhook: WebhookRecorder, when: str) -> None:
    central.start_ingest()
    cfg = alerts_config(central, alertmanager.url)
    proc = start_alerts(central, cfg)
    clinic = mqtt_client(central, SITE)
    start = round(time.time() - 5, 3)
    publish_events(clinic, event(7, "raise", start))
    wait_until(lambda: pg_query(central, "SELECT hold_from IS NOT NULL FROM alerts")[0:1] == [(True,)],
               timeout=30, what="the firing alert posted")
    if when == "after_notified":
        wait_until(lambda: webhook.alerts(event_start=iso(start)), timeout=30, what="the firing notification")
    proc.kill9()
    end = round(time.time(), 3)
    publish_events(clinic, event(8, "clear", start, end=end))
    wait_until(lambda: pg_query(central, "SELECT count(*) FROM events")[0][0] == 2, timeout=30,
               what="the clear stored by the ingest")
    start_alerts(central, cfg)
    wait_until(lambda: alert_state(central, start) == "done", timeout=60, what="the alert to be done")
    assert_one_pair(webhook, start, end)


def test_an_alertmanager_restart_midway_does_not_repeat_a_notification(
        central: Any, alertmanager: Any, webhook: WebhookRecorder) -> None:
    central.start_ingest()
    start_alerts(central, alerts_config(central, alertmanager.url))
    clinic = mqtt_client(central, SITE)
    start = round(time.time() - 5, 3)
    publish_events(clinic, event(7, "raise", start))
    wait_until(lambda: webhook.alerts(event_start=iso(start)), timeout=30, what="the firing notification")
    alertmanager.stop()                  # systemctl restart: its notification log is kept
    alertmanager.start()
    end = round(time.time(), 3)
    publish_events(clinic, event(8, "clear", start, end=end))
    wait_until(lambda: alert_state(central, start) == "done", timeout=60, what="the alert to be done")
    assert_one_pair(webhook, start, end)


def test_alertmanager_down_then_up_loses_nothing(
        central: Any, alertmanager: Any, webhook: WebhookRecorder) -> None:
    """Alertmanager is down for a whole outage (raise and clear reach the centre live): both are
    told once it is back, firing first."""
    central.start_ingest()
    start_alerts(central, alerts_config(central, alertmanager.url, report_ended=False))
    alertmanager.stop()
    clinic = mqtt_client(central, SITE)
    start = round(time.time() - 5, 3)
    publish_events(clinic, event(7, "raise", start))
    wait_until(lambda: alert_state(central, start) == "firing", timeout=30, what="the alert stored")
    time.sleep(2.5)     # live, the clear reaches the centre later than the raise (TOGETHER_S)
    end = round(time.time(), 3)
    publish_events(clinic, event(8, "clear", start, end=end))
    wait_until(lambda: pg_query(central, "SELECT end_at IS NOT NULL FROM alerts") == [(True,)],
               timeout=30, what="the clear stored")
    assert webhook.got == []
    alertmanager.start()
    wait_until(lambda: alert_state(central, start) == "done", timeout=60, what="the alert to be done")
    assert_one_pair(webhook, start, end)


def test_a_late_event_in_a_group_already_notified_is_still_told_as_a_pair(
        central: Any, alertmanager: Any, webhook: WebhookRecorder) -> None:
    """Alertmanager tells a new alert of a group it already notified only at the group's next
    group_interval, and never tells a resolution of an alert it did not tell firing: the alert
    must stay firing for hold_s before its (late) clear is posted (with hold_s = 1 s here,
    neither notification comes)."""
    central.start_ingest()
    start_alerts(central, alerts_config(central, alertmanager.url))
    clinic = mqtt_client(central, SITE)
    meter = round(time.time() - 5, 3)
    publish_events(clinic, event(7, "raise", meter, dev="meter", values={}))
    wait_until(lambda: webhook.alerts(device="meter"), timeout=30, what="the meter's alert told")
    now = time.time()
    start, end = round(now - 3600, 3), round(now - 3000, 3)
    publish_events(clinic, event(8, "raise", start), event(9, "clear", start, end=end))
    wait_until(lambda: alert_state(central, start) == "done", timeout=60, what="the alert to be done")
    assert_one_pair(webhook, start, end)
    assert webhook.statuses(device="meter")[-1] == "firing"


def test_an_event_still_on_when_it_reaches_the_centre_late_is_told_at_once_with_its_start(
        central: Any, alertmanager: Any, webhook: WebhookRecorder) -> None:
    central.start_ingest()
    start_alerts(central, alerts_config(central, alertmanager.url, report_ended=False))
    clinic = mqtt_client(central, SITE)
    start = round(time.time() - 5400, 3)        # on battery for 90 min, the link back just now
    publish_events(clinic, event(41, "raise", start))
    wait_until(lambda: webhook.alerts(event_start=iso(start)), timeout=30, what="the firing notification")
    firing = webhook.alerts(event_start=iso(start))[0]
    assert firing["status"] == "firing" and at(firing["startsAt"]) == start
    assert f"desde las {hhmm(start)} CST" in firing["annotations"]["summary"]


def test_a_flapping_condition_and_the_raise_it_interrupted_are_two_alerts_each_told_once(
        central: Any, alertmanager: Any, webhook: WebhookRecorder) -> None:
    central.start_ingest()
    start_alerts(central, alerts_config(central, alertmanager.url))
    clinic = mqtt_client(central, SITE)
    raised = round(time.time() - 60, 3)
    flap = round(time.time() - 30, 3)
    publish_events(clinic, event(1, "raise", raised, cond="wan_down", dev="wan", values={}))
    publish_events(clinic, event(2, "flapping", flap, cond="wan_down", dev="wan", values={"wan.up": False}))
    wait_until(lambda: len(webhook.alerts(alertname="wan_down")) >= 2, timeout=30, what="both told firing")
    assert webhook.alerts(event_start=iso(flap))[0]["labels"]["flapping"] == "true"
    assert "sin internet, va y viene" in webhook.alerts(event_start=iso(flap))[0]["annotations"]["summary"]
    time.sleep(2.5)     # live, the clears reach the centre later than the raises (TOGETHER_S)
    end = round(time.time(), 3)
    publish_events(clinic, event(3, "clear", flap, end=end, cond="wan_down", dev="wan", values={}),
                   event(4, "clear", raised, end=end, cond="wan_down", dev="wan", values={}))
    wait_until(lambda: alert_state(central, raised) == alert_state(central, flap) == "done", timeout=60,
               what="both alerts done")
    for start in (raised, flap):
        # A notification lists every alert of its group (site, alertname): an alert shows again
        # in the message about the other. What it goes through is firing, then resolved, once.
        told = webhook.statuses(event_start=iso(start))
        assert [s for i, s in enumerate(told) if i == 0 or told[i - 1] != s] == ["firing", "resolved"]
    resolved = {a["labels"]["event_start"]: a for a in webhook.alerts(alertname="wan_down")
                if a["status"] == "resolved"}
    assert at(resolved[iso(flap)]["endsAt"]) == at(resolved[iso(raised)]["endsAt"]) == end


def test_the_shipped_alertmanager_config_is_valid() -> None:
    from helpers import require_binary
    import subprocess
    amtool = require_binary("amtool")
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run([amtool, "check-config", str(root / "conf" / "alertmanager.yml")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 receivers" in res.stdout


def test_an_event_with_a_huge_device_name_neither_blocks_nor_breaks_the_alerts_after_it(
        central: Any, alertmanager: Any, webhook: WebhookRecorder) -> None:
    """The ingest stores any non-empty device name; PostgreSQL cannot index 10,000 characters."""
    central.start_ingest()
    start_alerts(central, alerts_config(central, alertmanager.url))
    clinic = mqtt_client(central, SITE)
    start = round(time.time() - 5, 3)
    huge = base64.b64encode(os.urandom(7500)).decode()        # 10,000 characters, incompressible
    publish_events(clinic, event(1, "raise", start, dev=huge))
    publish_events(clinic, event(2, "raise", start, cond="wan_down", dev="wan", values={}))
    wait_until(lambda: webhook.alerts(alertname="wan_down"), timeout=30, what="the alert after it")
    wait_until(lambda: webhook.alerts(alertname="mains_lost"), timeout=30, what="the odd one too")
    assert webhook.alerts(alertname="mains_lost")[0]["labels"]["device"] == huge[:200]


def test_events_stored_before_the_alerts_process_first_ran_are_not_told(
        central: Any, alertmanager: Any, webhook: WebhookRecorder) -> None:
    """Enabling alerts on a store with a history does not replay it; a store without alerts
    keeps no queue."""
    central.start_ingest()
    clinic = mqtt_client(central, SITE)
    old = round(time.time() - 600, 3)
    publish_events(clinic, event(1, "raise", old))
    wait_until(lambda: pg_query(central, "SELECT count(*) FROM events")[0][0] == 1, timeout=30,
               what="the event stored")
    assert pg_query(central, "SELECT count(*) FROM alert_queue") == [(0,)]
    start_alerts(central, alerts_config(central, alertmanager.url))
    new = round(time.time() - 5, 3)
    publish_events(clinic, event(2, "raise", new, cond="wan_down", dev="wan", values={}))
    wait_until(lambda: webhook.alerts(alertname="wan_down"), timeout=30, what="the new event told")
    assert webhook.alerts(alertname="mains_lost") == []


def test_the_real_agent_on_battery_while_its_link_is_down_gives_one_pair_with_its_own_times(
        central: Any, alertmanager: Any, webhook: WebhookRecorder, agent_process: Any,
        modbus_server: Any, tmp_path: Path) -> None:
    """The agent, its UPS (the Modbus simulator) and the central broker behind a link that goes
    silent (packets vanish): the UPS goes on battery and back meanwhile, the link returns. The
    centre hears of the outage only then, and tells it once, with the times the agent's polls
    saw."""
    from events_clinic import POLL_S, Mark, ups_toml, wait_polled
    from fixtures.proxy import SilentableProxy
    ups = modbus_server
    link = SilentableProxy(central.broker_port)
    central.start_ingest()
    start_alerts(central, alerts_config(central, alertmanager.url))
    agent_process(f"""
site_id = "{SITE}"
state_dir = "{tmp_path / 'agent-state'}"
status_interval_s = 0.5
[mqtt]
host = "127.0.0.1"
port = {link.port}
tls = false
username = "{SITE}"
password = "{central.site_password(SITE)}"
keepalive_s = 2
reconnect_max_s = 1
[events.mains_lost]
raise_after_s = 1
clear_after_s = 1
{ups_toml(ups)}""")
    wait_until(lambda: pg_query(central, "SELECT count(*) FROM sites WHERE status = 'online'") == [(1,)],
               timeout=60, what="the agent online at the centre")
    link.go_silent()                                # the clinic's link is down
    cut = Mark()
    ups.set_outage(True)
    wait_polled(ups, cut, 2.5)                      # on battery long enough to be raised
    back = Mark()
    ups.set_outage(False)
    wait_polled(ups, back, 2.5)                     # and cleared
    link.restore()                                  # the link is back
    wait_until(lambda: pg_query(central, "SELECT state FROM alerts") == [("done",)], timeout=90,
               what="the outage told and resolved")
    told = webhook.alerts(site=SITE, alertname="mains_lost")
    assert [a["status"] for a in told] == ["firing", "resolved"], told
    start, end = at(told[1]["startsAt"]), at(told[1]["endsAt"])
    slack = 1.0 + POLL_S
    assert abs(start - cut.wall) <= slack and abs(end - back.wall) <= slack, (start, end, cut.wall, back.wall)
    assert at(told[0]["startsAt"]) == start and told[1]["annotations"]["reported_late"] == "true"
    link.close()
