"""``clinic-central alerts``: the clinics' events to Prometheus Alertmanager, with the edge's times.

    ingest ──(events, same transaction)──> alert_queue ─┐
                                                        v   every tick_s
    alerts process (one at a time: advisory lock) ── take_queue ──> alerts table
                                                  ── due ──> POST /api/v2/alerts ──> sent
    Alertmanager ── route, grouping ──> webhook, e-mail (conf/alertmanager.yml)

A separate process reading PostgreSQL rather than a step of the ingest: it never slows the
ingest, Alertmanager being down never holds back an acknowledgement, and several ingests feed
one alert sender. State lives in PostgreSQL only (alert_store), so a restart of this process,
of Alertmanager or of PostgreSQL neither repeats nor loses a notification; see docs/alerts.md.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from typing import Any

import psycopg

from central import alert_store, pg
from central.alert_payload import alert_json
from central.alert_rules import AlertsConfig, with_inventory
from central.alert_store import DONE, RESOLVE, RESOLVE_AGAIN, Due
from central.alertmanager import Alertmanager, AlertmanagerDown, AlertsRefused
from central.config import CentralConfig
from central.vm import StoreUnavailable

log = logging.getLogger(__name__)
POST_BATCH = 200
INVENTORY_EVERY_S = 60.0     # the inventory (state, municipality) read again this often


class AlertsProcess:
    def __init__(self, cfg: CentralConfig) -> None:
        if cfg.alerts is None:
            raise ValueError("the config has no [alerts] section")
        self.cfg = cfg
        self.acfg: AlertsConfig = cfg.alerts
        self.stop_event = threading.Event()
        self.am = Alertmanager(self.acfg.url)
        self.conn: Any = None
        self.am_started: str | None = None
        self.am_down = False        # logged once per outage
        self._inventory_due = 0.0
        self.posted = 0

    def run(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                signal.signal(sig, lambda *_: self.stop_event.set())
            except ValueError:
                pass   # not the main thread (tests): the caller sets stop_event
        log.info("alerts: Alertmanager %s, report_ended %s, hold %.0fs", self.acfg.url,
                 self.acfg.report_ended, self.acfg.hold_s)
        try:
            while not self.stop_event.is_set():
                try:
                    self._session()
                except StoreUnavailable as exc:
                    log.warning("%s; retrying", exc)
                except Exception as exc:   # a lost connection mid-tick (or a bug): start again
                    log.warning("alerts: %s; starting again", pg._brief(exc),
                                exc_info=not _is_pg(exc))
                if self.conn is not None:
                    self.conn.close()
                    self.conn = None
                self.stop_event.wait(2)
        finally:
            self.am.close()
            log.info("alerts stopped")

    def _session(self) -> None:
        """One PostgreSQL connection's life: the lock, then ticks until stopped or broken."""
        self.conn = pg.connect(self.cfg.pg_dsn)
        pg.migrate(self.conn)
        waited = False
        while not self._lock():
            if not waited:
                log.info("alerts: another alerts process holds the lock; standing by")
                waited = True
            if self.stop_event.wait(5):
                return
        if alert_store.enable(self.conn):
            log.info("alerts: first start: events stored from now on are told")
        # Whatever happened while no process was posting, Alertmanager may have lost alerts.
        n = alert_store.restart_holds(self.conn)
        self.am_started = None
        log.info("alerts: holding the lock; %d alert(s) open or resolving", n)
        while not self.stop_event.is_set():
            self.tick()
            self.stop_event.wait(self.acfg.tick_s)

    def _lock(self) -> bool:
        row = self.conn.execute("SELECT pg_try_advisory_lock(%s)",
                                (alert_store.ALERTS_LOCK,)).fetchone()
        return bool(row and row[0])

    def _inventory(self) -> None:
        """The web page's inventory, when there is one (its table is created by ``clinic-central
        sites import`` and the web page), for the state and municipality labels."""
        if time.monotonic() < self._inventory_due:
            return
        self._inventory_due = time.monotonic() + INVENTORY_EVERY_S
        try:
            rows = self.conn.execute(
                "SELECT site, state, municipality FROM site_inventory").fetchall()
        except psycopg.errors.UndefinedTable:
            rows = []
        base = self.cfg.alerts.sites if self.cfg.alerts is not None else {}
        self.acfg = dataclasses.replace(self.acfg, sites=with_inventory(base, rows))

    def tick(self) -> None:
        """Take the queued events, then post what is due (nothing if Alertmanager is down)."""
        self._inventory()
        while True:
            taken = alert_store.take_queue(self.conn, self.acfg)
            if taken.not_reported:
                log.info("alerts: %d event(s) ended before the centre heard of them; not "
                         "reported (report_ended = false)", taken.not_reported)
            if taken.events < 500:
                break
        try:
            started = self.am.started()
        except AlertmanagerDown as exc:
            self._down(exc)
            return
        if self.am_started is not None and started != self.am_started:
            n = alert_store.restart_holds(self.conn)
            log.warning("alerts: Alertmanager restarted (%s); posting %d alert(s) again",
                        started, n)
        self.am_started = started
        todo = alert_store.due(self.conn, self.acfg)
        for i in range(0, len(todo), POST_BATCH):
            if not self._post(todo[i:i + POST_BATCH]):
                return
        if self.am_down:
            log.info("alerts: Alertmanager %s answers again", self.acfg.url)
            self.am_down = False

    def _post(self, batch: list[Due]) -> bool:
        now = time.time()
        body = [alert_json(d.alert, self.acfg, now=now,
                           resolved=d.action in (RESOLVE, RESOLVE_AGAIN))
                for d in batch if d.action != DONE]
        try:
            if body:
                self.am.post(body)
        except AlertmanagerDown as exc:
            self._down(exc)
            return False
        except AlertsRefused:
            return self._post_one_by_one(batch, now)
        alert_store.sent(self.conn, batch)
        self.posted += len(body)
        for d in batch:
            if d.action in (RESOLVE,):
                log.info("alerts: %s %s %s resolved (started %.3f, ended %s)", d.alert.site,
                         d.alert.dev, d.alert.cond, d.alert.start, d.alert.end)
        return True

    def _post_one_by_one(self, batch: list[Due], now: float) -> bool:
        """Alertmanager refused the batch: find the alert(s) it refuses, keep the others."""
        for d in batch:
            if d.action != DONE:
                try:
                    self.am.post([alert_json(d.alert, self.acfg, now=now,
                                             resolved=d.action in (RESOLVE, RESOLVE_AGAIN))])
                except AlertmanagerDown as exc:
                    self._down(exc)
                    return False
                except AlertsRefused as exc:
                    log.error("alerts: Alertmanager refuses the alert of %s %s %s: %s",
                              d.alert.site, d.alert.dev, d.alert.cond, exc)
                    alert_store.refused(self.conn, d, str(exc))
                    continue
            alert_store.sent(self.conn, [d])
        return True

    def _down(self, exc: Exception) -> None:
        if not self.am_down:
            log.warning("alerts: %s; alerts wait in PostgreSQL until it answers", exc)
            self.am_down = True
        else:
            log.debug("alerts: %s", exc)


def _is_pg(exc: BaseException) -> bool:
    return isinstance(exc, psycopg.Error)
