"""Rollouts started from the web page: ``rollout.start`` in a thread of the web process.

    POST /rollouts/N/start (operator, CSRF) -> Runner.start -> thread: own PostgreSQL connection
    + own MQTT link (the broker's operator account) -> rollout.start(actor = the web user)

The thread has its own connection because ``rollout.start`` holds an advisory lock on it for the
whole run (one runner per rollout, across processes) and waits minutes per stage: a pooled
connection would be lost to the pages. Progress is in PostgreSQL, which the page reads. If the
web process ends, the rollout stays where it was; ``clinic-central rollout start N`` resumes it.
"""

from __future__ import annotations

import logging
import threading

import psycopg

from agent.remote.fleet import BrokerOptions, FleetError, OperatorLink
from central import pg, rollout
from central.vm import StoreUnavailable

log = logging.getLogger(__name__)


class Runner:
    """The rollouts this process is running, and why the last run of one failed."""

    def __init__(self, pg_dsn: str, broker: BrokerOptions | None) -> None:
        self._dsn = pg_dsn                 # never logged
        self.broker = broker               # None: no broker account given, no start from here
        self._lock = threading.Lock()
        self._threads: dict[int, threading.Thread] = {}
        self._errors: dict[int, str] = {}

    def running(self, rollout_id: int) -> bool:
        with self._lock:
            t = self._threads.get(rollout_id)
            return t is not None and t.is_alive()

    def error(self, rollout_id: int) -> str | None:
        with self._lock:
            return self._errors.get(rollout_id)

    def start(self, rollout_id: int, actor: str) -> bool:
        """Run it in the background; False if this process runs it already."""
        if self.broker is None:
            raise rollout.RolloutError("no broker account for rollouts")
        with self._lock:
            t = self._threads.get(rollout_id)
            if t is not None and t.is_alive():
                return False
            self._errors.pop(rollout_id, None)
            t = threading.Thread(target=self._run, args=(rollout_id, actor, self.broker),
                                 name=f"rollout-{rollout_id}", daemon=True)
            self._threads[rollout_id] = t
            t.start()
        return True

    def _run(self, rollout_id: int, actor: str, broker: BrokerOptions) -> None:
        log.info("rollout %s started by %s from the web page", rollout_id, actor)
        try:
            with pg.connect(self._dsn) as conn, OperatorLink(broker) as link:
                st = rollout.start(conn, rollout_id, link, actor=actor, prefix=broker.prefix)
            log.info("rollout %s: %s %s", rollout_id, st["state"], st.get("stopped_reason") or "")
        except (FleetError, rollout.RolloutError, StoreUnavailable, psycopg.Error) as exc:
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.error("rollout %s: %s", rollout_id, why)
            with self._lock:
                self._errors[rollout_id] = why
