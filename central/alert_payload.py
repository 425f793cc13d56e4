"""One stored alert as Alertmanager's API v2 wants it (``POST /api/v2/alerts``, a list of these).

    labels       alertname (the condition code without its part), site, device, severity, part,
                 event_start (the edge's start: one Alertmanager alert per event, so two outages
                 of the same UPS are two alerts, each told and resolved once), flapping, state and
                 municipality from the inventory
    startsAt     the edge's start;  endsAt: the edge's end once cleared, else a few re-posts ahead
    annotations  code and args (JSON, language-neutral), summary (the configured language),
                 summary_es, summary_en, timezone, reported_late

Everything comes from PostgreSQL rows the ingest already validated; still, nothing here raises on
odd values (the fuzz tests feed it anything a row can hold) and every string is bounded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from central import alert_text
from central.alert_rules import AlertsConfig

MAX_LABEL = 256
MAX_ANNOTATION = 4096
GENERATOR_URL = "clinic-central://alerts"


@dataclass(frozen=True)
class StoredAlert:
    """A row of the ``alerts`` table (times in epoch seconds)."""

    site: str
    dev: str
    cond: str
    start: float
    severity: str
    values: Mapping[str, Any] = field(default_factory=dict)
    flapping: bool = False
    end: float | None = None
    dur_s: float | None = None
    est: bool = False
    late: bool = False
    raise_id: int | None = None
    clear_id: int | None = None

    @property
    def key(self) -> tuple[str, str, str, float]:
        return (self.site, self.dev, self.cond, self.start)


def rfc3339(ts: float) -> str:
    """UTC with milliseconds, the form Alertmanager returns (and the edge's precision)."""
    if not math.isfinite(ts):
        ts = 0.0
    ts = min(max(ts, 0.0), 32503680000.0 - 1)
    return datetime.fromtimestamp(round(ts, 3), UTC).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def _label(v: Any) -> str:
    s = v if isinstance(v, str) else str(v)
    return s.encode("utf-8", "replace").decode("utf-8")[:MAX_LABEL]


def _args(a: StoredAlert) -> str:
    doc = {"site": a.site, "dev": a.dev, "cond": a.cond, "start": a.start, "end": a.end,
           "dur_s": a.dur_s, "est": a.est, "flapping": a.flapping, "late": a.late,
           "raise_id": a.raise_id, "clear_id": a.clear_id, "values": dict(a.values)}
    text = json.dumps(doc, default=str, ensure_ascii=False, allow_nan=True)
    if len(text) > MAX_ANNOTATION:
        doc["values"] = {"truncated": True}
        text = json.dumps(doc, default=str, ensure_ascii=False)[:MAX_ANNOTATION]
    return text


def alert_json(a: StoredAlert, cfg: AlertsConfig, *, now: float,
               resolved: bool) -> dict[str, Any]:
    """The alert firing (``resolved`` False: endsAt a few re-posts ahead) or resolved (endsAt the
    edge's end)."""
    details = cfg.sites.get(a.site)
    tz = (details.tz if details else None) or cfg.timezone
    place = ", ".join(x for x in (details.municipality, details.state) if x) if details else ""
    code, _, part = a.cond.partition(".")
    labels = {"alertname": code or "unknown", "site": a.site, "device": a.dev,
              "severity": a.severity, "event_start": rfc3339(a.start)}
    if part:
        labels["part"] = part
    if a.flapping:
        labels["flapping"] = "true"
    if details and details.state:
        labels["state"] = details.state
    if details and details.municipality:
        labels["municipality"] = details.municipality
    labels = {k: _label(v) for k, v in labels.items() if v}
    shown = alert_text.Facts(site=a.site, dev=a.dev, cond=a.cond, start=a.start, values=a.values,
                             flapping=a.flapping, end=a.end if resolved else None,
                             dur_s=a.dur_s if resolved else None, est=a.est and resolved,
                             late=a.late and resolved, place=place or None, tz=tz)
    texts = {lang: alert_text.summary(shown, lang)[:MAX_ANNOTATION]
             for lang in alert_text.LANGUAGES}
    annotations = {"code": _label(a.cond), "args": _args(a), "summary": texts[cfg.language],
                   "summary_es": texts["es"], "summary_en": texts["en"],
                   "timezone": tz or "UTC"}
    if a.late:
        annotations["reported_late"] = "true"
    # Alertmanager refuses an end before the start: a clock that went back keeps its start.
    if resolved:
        end = a.end if a.end is not None and math.isfinite(a.end) else now
        ends = max(end, a.start)
    else:
        ends = max(now, a.start) + cfg.firing_ttl_s
    return {"labels": labels, "annotations": annotations, "startsAt": rfc3339(a.start),
            "endsAt": rfc3339(ends), "generatorURL": GENERATOR_URL}
