"""The demo's central side: the shipped central broker, VictoriaMetrics, a throwaway PostgreSQL and
one ``clinic-central ingest`` (scripts/central_stack.py); the fleet web page (``clinic-central
web``, with a demo operator account and the clinic in the inventory); alerts (``clinic-central
alerts`` to a real Prometheus Alertmanager on the shipped route, whose notifications the demo
prints as ``ALERT`` lines, scripts/demo_alerts.py); and a loop that prints what the central team
would query: the simulated clinic's mains voltage by PromQL, its state by SQL.

A piece whose binary is missing (or that does not start) is said on the screen and left out; the
rest goes on. Used by scripts/demo.py; kept apart so the demo's own code stays about the clinic.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import threading
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import psycopg
from central_stack import CentralStack, StackError, alertmanager_config
from demo_alerts import Receivers

# What the central team asks VictoriaMetrics (docs/central.md, "Example PromQL").
VOLTAGE_QUERY = 'last_over_time(clinic_value{{site="{site}", device="ups", metric="input.voltage"}}[1m])'
SITE_QUERY = ("SELECT status, stored_total, acked_seq, "
              "(SELECT count(*) FROM gaps WHERE gaps.site = sites.site) FROM sites WHERE site = %s")
# The simulated clinic in the inventory (clinic-central sites import): the page shows these.
DEMO_INVENTORY = ("Centro de Salud Demo", "Oaxaca", "Santa María Huatulco")
WEB_USER = "demo"
# Alertmanager's timings for the demo (shipped: 30 s, 2 min), and the hold above them with a
# margin (docs/alerts.md, "Why the hold"): a raise shows as ALERT within seconds, its clear too.
GROUP_WAIT_S, GROUP_INTERVAL_S = 1, 2
HOLD_S = GROUP_WAIT_S + GROUP_INTERVAL_S + 2


class DemoCentral(CentralStack):
    """The stack, and the demo's alert receivers when the alerts run."""

    receivers: Receivers | None = None

    def close(self) -> None:
        super().close()
        if self.receivers is not None:
            self.receivers.close()


def bring_up(workdir: Path, site: str) -> CentralStack | None:
    """Start the central side for ``site``, or say why not and return None (the demo then runs
    with a plain local broker). The web page and the alerts are optional parts."""
    stack: DemoCentral | None = None
    try:
        stack = DemoCentral(workdir / "central", (site,))    # a missing binary: StackError
        stack.start()
        stack.start_ingest()
    except (StackError, OSError, subprocess.CalledProcessError) as exc:
        print(f"(central side not started: {exc}; the demo goes on with a plain broker)", flush=True)
        if stack is not None:
            stack.close()
        return None
    print(f"central: broker 127.0.0.1:{stack.broker_port} (conf/central-mosquitto.conf, ACL)  "
          f"VictoriaMetrics {stack.vm_url}  PostgreSQL {stack.pg_dsn}\n"
          f"         clinic-central ingest log {stack.workdir / 'ingest-1.log'}", flush=True)
    zone = local_zone()
    try:
        _fleet_page(stack, site, zone)
    except (StackError, OSError) as exc:
        print(f"(fleet page not started: {exc}; the demo goes on without it)", flush=True)
    try:
        _alerts(stack, zone)
    except (StackError, OSError) as exc:
        print(f"(alerts not started: {exc}; the demo goes on without them)", flush=True)
    return stack


def _fleet_page(stack: CentralStack, site: str, zone: str) -> None:
    """``clinic-central web`` with a demo operator whose random password is shown once, here."""
    sites = stack.workdir / "sites.csv"
    sites.write_text("site,name,state,municipality\n" + ",".join((site, *DEMO_INVENTORY)) + "\n",
                     encoding="utf-8")
    stack.import_sites(sites)
    password = secrets.token_urlsafe(9)
    stack.users_add(WEB_USER, password, "operator")
    web = stack.start_web(tz=zone, poll_s=2)
    print(f"fleet page http://127.0.0.1:{web.port}  user {WEB_USER}  password {password}",
          flush=True)


def _alerts(stack: DemoCentral, zone: str) -> None:
    """Alertmanager (the shipped route, demo timings), ``clinic-central alerts``, the receivers."""
    stack.receivers = Receivers(stack.workdir / "mail.txt")
    am = stack.start_alertmanager(alertmanager_config(
        stack.receivers.url, stack.receivers.smtp_port, group_wait_s=GROUP_WAIT_S,
        group_interval_s=GROUP_INTERVAL_S))
    stack.start_alerts(am.url, hold_s=HOLD_S, timezone=zone, repost_s=5, tick_s=0.5)
    print(f"alerts: clinic-central alerts (hold {HOLD_S} s) -> Alertmanager {am.url} (conf/"
          f"alertmanager.yml, group_wait {GROUP_WAIT_S} s, group_interval {GROUP_INTERVAL_S} s) -> "
          f"ALERT lines here; e-mails in {stack.workdir / 'mail.txt'}", flush=True)


def local_zone() -> str:
    """This machine's IANA time zone (the simulated clinic's), for the page and the alerts' text."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        candidates.append(os.readlink("/etc/localtime").split("zoneinfo/", 1)[1])
    except (OSError, IndexError):
        pass
    for name in candidates:
        try:
            if name:
                ZoneInfo(name)
                return name
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return "UTC"


def agent_mqtt_lines(stack: CentralStack, site: str) -> str:
    """The [mqtt] lines of the clinic's account on the central broker (username = site id)."""
    return f'username = "{site}"\npassword = "{stack.site_password(site)}"\n'


def agent_buffer_lines() -> str:
    """Keep readings until the ingest has them in both stores (docs/store-and-forward.md)."""
    return 'release = "central"\ncentral_ack_timeout_s = 20\n'


def operator_auth(stack: CentralStack) -> tuple[str, str]:
    """The account the demo's watcher reads the broker with (the ACL's operator)."""
    return "operator", stack.broker.passwords["operator"]


def show_queries(stack: CentralStack, site: str, stop: threading.Event, every_s: float = 15) -> threading.Thread:
    """Every ``every_s``, print the clinic's mains voltage from VictoriaMetrics and its row in
    PostgreSQL, as the central team would query them."""
    def loop() -> None:
        # Halfway between two polls (every 5 s), so a query never races a poll being stored.
        if stop.wait(2.5):
            return
        while not stop.wait(every_s):
            try:
                print(_report(stack, site), flush=True)
            except (httpx.HTTPError, psycopg.Error, KeyError, ValueError) as exc:
                # A store restarting must not end the demo.
                print(f"  [central] query failed: {exc}", flush=True)
    thread = threading.Thread(target=loop, name="central-queries", daemon=True)
    thread.start()
    return thread


def _report(stack: CentralStack, site: str) -> str:
    query = VOLTAGE_QUERY.format(site=site)
    r = httpx.get(f"{stack.vm_url}/api/v1/query", params={"query": query}, timeout=10)
    r.raise_for_status()
    result: list[dict[str, Any]] = r.json()["data"]["result"]
    if result:
        # An instant query's timestamp is when it was asked; the poll's own time is the last
        # sample's, which MetricsQL's tlast_over_time gives.
        value = result[0]["value"][1]
        r = httpx.get(f"{stack.vm_url}/api/v1/query",
                      params={"query": "t" + query}, timeout=10)
        r.raise_for_status()
        polled = float(r.json()["data"]["result"][0]["value"][1])
        voltage = f"{float(value):.1f} V (polled {time.strftime('%H:%M:%S', time.localtime(polled))})"
    else:
        voltage = "no reading stored yet"
    with psycopg.connect(stack.pg_dsn, autocommit=True) as conn:
        row = conn.execute(SITE_QUERY, (site,)).fetchone()
    state = ("not seen yet" if row is None else
             f"{row[0]}, {row[1]} readings stored, acknowledged to the clinic up to seq {row[2]}, "
             f"{row[3]} gap(s)")
    return (f"  [central] PromQL {query}\n"
            f"            = {voltage}\n"
            f"  [central] PostgreSQL sites: {state}")
