"""VictoriaMetrics: batched writes in Prometheus text format, and proof that they are on disk.

VictoriaMetrics answers a write before the samples reach disk (they wait in memory for up to a
second or so). So the ingest only acknowledges a site end to end after ``confirm_flushed``: it asks
VictoriaMetrics to flush (``/internal/force_flush``) and checks, with its start time, that it did
not restart meanwhile. When it did (a crash may have lost the unflushed samples), every body
written since the last confirmed flush is written again: VictoriaMetrics runs with
``-dedup.minScrapeInterval=1ms``, so a sample written twice (same series, same millisecond, same
value) is stored once.
"""

from __future__ import annotations

import logging
import threading
import time

import httpx

log = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """A store (VictoriaMetrics or PostgreSQL) did not take the write; it will be retried."""


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


class VictoriaMetrics:
    def __init__(self, url: str, *, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(timeout=timeout_s)
        self._lock = threading.Lock()
        # bodies written since the last confirmed flush
        self._unconfirmed: list[tuple[float, bytes]] = []
        self._start_time: float | None = None
        self._trouble = False      # a failed call since the last confirmed flush: maybe a restart

    def close(self) -> None:
        self._http.close()

    def write(self, body: bytes) -> None:
        """Write lines of Prometheus text (``name{labels} value ms``); StoreUnavailable on
        failure."""
        if not body:
            return
        self._post(body)
        stamp = time.monotonic()   # after the answer: a flush that starts later covers it
        with self._lock:
            self._unconfirmed.append((stamp, body))

    def _post(self, body: bytes) -> None:
        try:
            r = self._http.post(f"{self.url}/api/v1/import/prometheus", content=body)
        except httpx.HTTPError as exc:
            self._trouble = True
            raise StoreUnavailable(f"VictoriaMetrics write failed: {exc}") from exc
        if r.status_code >= 300:
            self._trouble = True
            raise StoreUnavailable(
                f"VictoriaMetrics write answered {r.status_code}: {r.text[:200]}")

    def start_time(self) -> float:
        try:
            r = self._http.get(f"{self.url}/metrics")
            r.raise_for_status()
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"VictoriaMetrics /metrics failed: {exc}") from exc
        for line in r.text.splitlines():
            if line.startswith("vm_app_start_timestamp "):
                return float(line.split()[1])
        raise StoreUnavailable("VictoriaMetrics /metrics has no vm_app_start_timestamp")

    def _flush(self) -> None:
        try:
            self._http.get(f"{self.url}/internal/force_flush").raise_for_status()
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"VictoriaMetrics flush failed: {exc}") from exc

    def confirm_flushed(self) -> None:
        """Return once everything written before this call is on VictoriaMetrics' disk."""
        stamp = time.monotonic()
        before = self.start_time()
        self._flush()
        after = self.start_time()
        restarted = self._trouble or before != after or (self._start_time not in (None, before))
        if restarted:
            with self._lock:
                bodies = [b for t, b in self._unconfirmed if t <= stamp]
            log.warning("VictoriaMetrics may have restarted: writing %d recent batch(es) again",
                        len(bodies))
            self._trouble = False
            for body in bodies:
                self._post(body)
            self._flush()
            after = self.start_time()
        self._start_time = after
        with self._lock:
            self._unconfirmed = [(t, b) for t, b in self._unconfirmed if t > stamp]
