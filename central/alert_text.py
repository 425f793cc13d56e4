"""An alert in plain words, in Spanish and English, with the clinic's own times.

"DFSSA001234 ups: sin luz de la red, funcionando con batería desde las 14:03 CST; quedan unos
23 min de batería", and on the clear "...; terminó a las 14:50 CST, duró 47 min". The condition
words are the agent's (``agent.events.render``: one vocabulary for technician and operator); the
alert's own phrases are in ``MESSAGES`` below. Times are in the clinic's time zone when the
inventory or the config gives one, else in UTC, and the zone is always written.
"""

from __future__ import annotations

import math
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from agent.events.render import condition_words
from agent.i18n import MESSAGES as AGENT_MESSAGES
from agent.i18n import Messages
from agent.term import ago

MESSAGES: dict[str, dict[str, str]] = {
    "al.firing": {"en": "{site} {dev}: {what} {since}", "es": "{site} {dev}: {what} {since}"},
    "al.site_place": {"en": "{site} ({place})", "es": "{site} ({place})"},
    "al.since_time": {"en": "since {time} {zone}", "es": "desde las {time} {zone}"},
    "al.since_date": {"en": "since {date} {time} {zone}",
                      "es": "desde el {date} a las {time} {zone}"},
    "al.ended_time": {"en": "ended at {time} {zone}, after {dur}",
                      "es": "terminó a las {time} {zone}, duró {dur}"},
    "al.ended_date": {"en": "ended on {date} at {time} {zone}, after {dur}",
                      "es": "terminó el {date} a las {time} {zone}, duró {dur}"},
    "al.late": {"en": "told late: the clinic was out of contact until it was over",
                "es": "aviso tardío: la clínica estuvo sin conexión hasta que terminó"},
}
LANGUAGES = ("es", "en")


class _Words(Messages):
    """The agent's messages plus the alert phrases, in one language."""

    def __call__(self, msg_id: str, **params: Any) -> str:
        entry = MESSAGES.get(msg_id)
        if entry is None:
            return super().__call__(msg_id, **params)
        try:
            return entry[self.lang].format(**params)
        except (KeyError, IndexError, ValueError):
            return entry[self.lang]


@dataclass(frozen=True)
class Facts:
    """What the words are made of (all from the stored alert, nothing parsed here)."""

    site: str
    dev: str
    cond: str
    start: float
    values: Mapping[str, Any]
    flapping: bool = False
    end: float | None = None
    dur_s: float | None = None
    est: bool = False
    late: bool = False
    place: str | None = None      # "municipality, state" from the inventory
    tz: str | None = None


def zone(name: str | None) -> tzinfo:
    if name:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return UTC


def _when(ts: float, tz: tzinfo) -> datetime:
    try:
        return datetime.fromtimestamp(ts, tz)
    except (OverflowError, OSError, ValueError):
        return datetime.fromtimestamp(0, tz)


def summary(f: Facts, lang: str) -> str:
    """One sentence: what, where, since when; on a clear also when it ended and how long."""
    t = _Words(lang)
    tz = zone(f.tz)
    start = _when(f.start, tz)
    zone_name = start.tzname() or "UTC"
    site = t("al.site_place", site=f.site, place=f.place) if f.place else f.site
    what = condition_words(f.cond, t, f.values)
    if f.flapping:
        what = t("ev.flapping", what=what)
    since = t("al.since_time", time=start.strftime("%H:%M"), zone=zone_name)
    if f.end is not None and _when(f.end, tz).date() != start.date():
        since = t("al.since_date", date=start.strftime("%Y-%m-%d"),
                  time=start.strftime("%H:%M"), zone=zone_name)
    text = t("al.firing", site=site, dev=f.dev, what=what, since=since)
    runtime = f.values.get("battery.runtime_s")
    if f.end is None and f.cond == "mains_lost" and isinstance(runtime, (int, float)) \
            and not isinstance(runtime, bool) and 0 <= runtime < 10**7:
        text += "; " + t("ev.runtime_left", min=int(runtime // 60))
    if f.end is not None:
        end = _when(f.end, tz)
        dur = f.dur_s if f.dur_s is not None and math.isfinite(f.dur_s) else f.end - f.start
        dur = dur if math.isfinite(dur) else 0.0
        msg = "al.ended_time" if end.date() == start.date() else "al.ended_date"
        text += "; " + t(msg, date=end.strftime("%Y-%m-%d"), time=end.strftime("%H:%M"),
                         zone=end.tzname() or "UTC", dur=ago(dur, t))
        if f.est:
            text += f" ({t('ev.estimated')})"
        if f.late:
            text += ". " + t("al.late")
    return text


def known_ids() -> set[str]:
    """Every message id this module renders (tests check both languages are complete)."""
    return set(MESSAGES) | {k for k in AGENT_MESSAGES if k.startswith("ev.")}
