"""Alertmanager's API v2, the two calls the alerts process makes, behind one small adapter.

``post`` raises ``AlertmanagerDown`` (retry later: nothing was recorded as sent) or
``AlertsRefused`` (Alertmanager answered 400: the alerts themselves are wrong, retrying the same
ones cannot help); ``started`` says when this Alertmanager started (it keeps alerts in memory
only, so a new start time means every alert must be posted again).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx


class AlertmanagerDown(Exception):
    """Alertmanager did not take the alerts (unreachable, timeout, 5xx)."""


class AlertsRefused(Exception):
    """Alertmanager answered 400 to these alerts."""


class Alertmanager:
    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def post(self, alerts: Sequence[dict[str, Any]]) -> None:
        try:
            r = self.http.post(f"{self.url}/api/v2/alerts", json=list(alerts))
        except httpx.HTTPError as exc:
            raise AlertmanagerDown(f"Alertmanager {self.url}: {type(exc).__name__}: {exc}") \
                from exc
        if r.status_code == 400:
            raise AlertsRefused(r.text.strip()[:500])
        if r.status_code != 200:
            raise AlertmanagerDown(f"Alertmanager {self.url}: HTTP {r.status_code}: "
                                   f"{r.text.strip()[:200]}")

    def started(self) -> str:
        """Alertmanager's start time (``uptime`` of /api/v2/status), as it says it."""
        try:
            r = self.http.get(f"{self.url}/api/v2/status")
            r.raise_for_status()
            return str(r.json()["uptime"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise AlertmanagerDown(f"Alertmanager {self.url}: {type(exc).__name__}: {exc}") \
                from exc
