"""The demo's central side: the shipped central broker, VictoriaMetrics, a throwaway PostgreSQL and
one ``clinic-central ingest`` (scripts/central_stack.py), and a loop that prints what the central
team would query: the simulated clinic's mains voltage by PromQL, its state by SQL.

Used by scripts/demo.py; kept apart so the demo's own code stays about the clinic.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from central_stack import CentralStack, StackError

# What the central team asks VictoriaMetrics (docs/central.md, "Example PromQL").
VOLTAGE_QUERY = 'last_over_time(clinic_value{{site="{site}", device="ups", metric="input.voltage"}}[1m])'
SITE_QUERY = ("SELECT status, stored_total, acked_seq, "
              "(SELECT count(*) FROM gaps WHERE gaps.site = sites.site) FROM sites WHERE site = %s")


def bring_up(workdir: Path, site: str) -> CentralStack | None:
    """Start the central side for ``site``, or say why not and return None (the demo then runs
    with a plain local broker)."""
    stack = CentralStack(workdir / "central", (site,))
    try:
        stack.start()
        stack.start_ingest()
    except (StackError, OSError) as exc:
        print(f"(central side not started: {exc}; the demo goes on with a plain broker)", flush=True)
        stack.close()
        return None
    print(f"central: broker 127.0.0.1:{stack.broker_port} (conf/central-mosquitto.conf, ACL)  "
          f"VictoriaMetrics {stack.vm_url}  PostgreSQL {stack.pg_dsn}\n"
          f"         clinic-central ingest log {stack.workdir / 'ingest-1.log'}", flush=True)
    return stack


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
