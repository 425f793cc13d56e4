"""Events and active problems in plain words, in the technician's language (agent.i18n).

``active_lines`` is what ``clinic-agent status`` shows first ("ups: no mains power, running on
battery since 14:03 (23 min); about 23 min of battery left"); ``event_row`` is one line of
``clinic-agent events``. Times are the PC's local time (or the ``tz`` given).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo

from agent.events.model import CLEAR, FLAPPING, Active, Event, base, part
from agent.i18n import MESSAGES, Messages
from agent.readings import Value
from agent.term import ago


def condition_words(cond: str, t: Messages, values: Mapping[str, Value] | None = None) -> str:
    """``voltage_low.l2`` -> "low voltage (phase l2)"; an unknown code is shown as it is."""
    code = base(cond)
    msg = f"ev.{code}"
    if code == "mains_lost" and values is not None and "on_battery" not in values:
        msg = "ev.mains_lost.meter"      # a meter's dead phases: nothing runs on a battery
    what = t(msg) if msg in MESSAGES else t("ev.unknown", cond=code)
    p = part(cond)
    if p is None:
        return what
    shown = t("ev.phase", phase=p.upper().replace("_", "-")) if p.startswith("l") else p
    return t("ev.part", what=what, part=shown)


def since_words(start: float, now: float, t: Messages, tz: tzinfo | None = None) -> str:
    when = datetime.fromtimestamp(start, tz)
    if when.date() == datetime.fromtimestamp(now, tz).date():
        return t("ev.since_time", time=when.strftime("%H:%M"))
    return t("ev.since_date", date=when.strftime("%Y-%m-%d"), time=when.strftime("%H:%M"))


def active_lines(active: Sequence[Active], t: Messages, *, now: float, tz: tzinfo | None = None,
                 latest: Mapping[str, Mapping[str, Value]] | None = None) -> list[str]:
    """One sentence per active problem, oldest first. ``latest``: the newest readings per
    device (the runtime left changes after the raise), when the caller has them."""
    lines = []
    for a in active:
        what = condition_words(a.cond, t, a.values)
        if a.kind == FLAPPING:
            what = t("ev.flapping", what=what)
        line = t("ev.active", dev=a.dev, what=what, since=since_words(a.start, now, t, tz),
                 dur=ago(now - a.start, t))
        if base(a.cond) == "mains_lost":
            values = (latest or {}).get(a.dev) or a.values
            runtime = values.get("battery.runtime_s")
            if isinstance(runtime, (int, float)) and not isinstance(runtime, bool):
                line += "; " + t("ev.runtime_left", min=int(runtime // 60))
        lines.append(line)
    return lines


def event_row(e: Event, t: Messages, *, tz: tzinfo | None = None) -> list[str]:
    """[time, device, what happened, how long] for the events table."""
    at = e.end if e.kind == CLEAR and e.end is not None else e.start
    when = datetime.fromtimestamp(at, tz).strftime("%Y-%m-%d %H:%M:%S")
    what = f"{condition_words(e.cond, t, e.values)}: {t(f'ev.kind.{e.kind}')}"
    lasted = ""
    if e.kind == CLEAR and e.dur_s is not None:
        lasted = t("ev.lasted", dur=ago(e.dur_s, t))
        if e.est:
            lasted += f" ({t('ev.estimated')})"
    return [when, e.dev, what, lasted]
