"""The ``[alerts]`` section of the central config: where alerts go, which events alert and how.

Parsed once into a frozen ``AlertsConfig`` with the same problem style as the rest of the central
config (key paths, every problem at once). docs/alerts.md explains each setting.

    [alerts]
    url = "http://127.0.0.1:9093"       # Alertmanager
    report_ended = true                 # events that ended before the centre heard of them
    [alerts.severity]
    mains_lost = "critical"             # condition code -> critical | warning | info | none
"""

from __future__ import annotations

import csv
import io
import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from agent.config.fields import Table

SEVERITIES = ("critical", "warning", "info", "none")    # none: the condition never alerts

# The agent's condition codes (docs/events.md), with the severity each gets unless configured.
# critical: the clinic loses or is about to lose power; warning: someone should act today;
# info: worth a look, nobody need be woken.
DEFAULT_SEVERITY: dict[str, str] = {
    "mains_lost": "critical",
    "generator_failed": "critical",
    "battery_low": "critical",
    "battery_replace": "warning",
    "battery_fault": "warning",
    "ups_fault": "warning",
    "overload": "warning",
    "bypass": "warning",
    "voltage_low": "warning",
    "voltage_high": "warning",
    "frequency_low": "info",
    "frequency_high": "info",
    "wan_down": "warning",
    "wan_degraded": "info",
    "device_unreachable": "warning",
    "disk_full": "warning",
    "buffer_dropping": "warning",
    "clock_unsynced": "info",
    "clock_stepped": "none",
}
TZ_PATTERN = r"[A-Za-z0-9_+\-/]{1,64}"


@dataclass(frozen=True)
class SiteDetails:
    """What the inventory knows of a site beyond its id (all optional)."""

    state: str | None = None
    municipality: str | None = None
    tz: str | None = None        # an IANA zone name, e.g. America/Mexico_City


@dataclass(frozen=True)
class AlertsConfig:
    url: str = "http://127.0.0.1:9093"
    report_ended: bool = False   # events over before the centre heard of them: told or not
    language: str = "es"         # of the "summary" annotation (summary_es and summary_en always)
    timezone: str | None = None  # for sites without one of their own; None: times in UTC, said so
    # How long an alert stays firing in Alertmanager before its resolution is posted: Alertmanager
    # tells nobody that an alert resolved unless it told them it fired (docs/alerts.md).
    # Longer than the route's group_wait and group_interval, with a margin.
    hold_s: float = 180.0
    repost_s: float = 60.0       # firing alerts are posted again this often
    # A firing alert's endsAt is this far ahead of each post: Alertmanager resolves an alert by
    # itself only if this process has been silent that long. Long, so that a restart or an outage
    # of this process never resolves (and later re-fires) what is still on at the clinic.
    firing_ttl_s: float = 3600.0
    tick_s: float = 1.0          # how often the events queue and due posts are looked at
    default_severity: str = "warning"   # for condition codes not in DEFAULT_SEVERITY
    severity: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SEVERITY))
    sites: dict[str, SiteDetails] = field(default_factory=dict)

    def severity_of(self, cond: str) -> str | None:
        """The severity of a condition code (``voltage_low.l2`` is ``voltage_low``'s), or None
        when it does not alert."""
        sev = self.severity.get(cond.split(".", 1)[0], self.default_severity)
        return None if sev == "none" else sev


def parse_alerts(root: Table, base: Path) -> AlertsConfig | None:
    """The ``[alerts]`` table, or None when the config has none (no alerts process)."""
    if not root.has("alerts"):
        root.table("alerts")   # marks the key seen
        return None
    a = root.table("alerts")
    d = AlertsConfig()
    url = a.str("url", d.url, pattern=r"https?://[^\s/]+(/\S*)?",
                what="an http(s) URL")  # type: ignore[arg-type]  # see central.config
    tz = a.str("timezone", None)
    if tz is not None and not _zone_ok(tz):
        a.problem("timezone", f"not a time zone name (e.g. America/Mexico_City): {tz[:64]!r}")
        tz = None
    default_sev = a.str("default_severity", d.default_severity, choices=SEVERITIES)
    sev = dict(DEFAULT_SEVERITY)
    st = a.table("severity")
    for code in list(st.data):
        if code not in DEFAULT_SEVERITY:
            st.str(code, None)    # seen: reported below, not as an unknown key
            st.problem(code, f"not a condition code of docs/events.md "
                             f"({', '.join(sorted(DEFAULT_SEVERITY))})")
            continue
        sev[code] = st.str(code, sev[code], choices=SEVERITIES)
    st.finish()
    sites: dict[str, SiteDetails] = {}
    sites_file = a.str("sites_file", None)
    if sites_file is not None:
        try:
            sites, bad = read_site_details((base / sites_file).read_text(encoding="utf-8"))
            for why in bad[:5]:
                a.problem("sites_file", f"{sites_file}: {why}")
        except OSError as exc:
            a.problem("sites_file", f"cannot read {sites_file}: {exc.strerror}")
    cfg = AlertsConfig(
        url=url.rstrip("/"),
        report_ended=a.bool("report_ended", d.report_ended),
        language=a.str("language", d.language, choices=("es", "en")),
        timezone=tz,
        hold_s=a.float("hold_s", d.hold_s, min=1, max=86400),
        repost_s=a.float("repost_s", d.repost_s, min=0.5, max=3600),
        firing_ttl_s=a.float("firing_ttl_s", d.firing_ttl_s, min=60, max=7 * 86400),
        tick_s=a.float("tick_s", d.tick_s, min=0.05, max=60),
        default_severity=default_sev, severity=sev, sites=sites)
    if cfg.firing_ttl_s < 2 * cfg.repost_s:
        a.problem("firing_ttl_s", f"expected at least twice repost_s ({cfg.repost_s:g}), "
                                  f"got {cfg.firing_ttl_s:g}")
    a.finish()
    return cfg


def with_inventory(sites: dict[str, SiteDetails],
                   rows: Iterable[tuple[str, str | None, str | None]]) -> dict[str, SiteDetails]:
    """The sites file's details with the inventory's (``site_inventory``: ``clinic-central sites
    import``, what the web page shows) state and municipality over them; time zones stay the
    file's."""
    out = dict(sites)
    for site, state, municipality in rows:
        had = out.get(site) or SiteDetails()
        out[site] = SiteDetails(state=(state or had.state or None),
                                municipality=(municipality or had.municipality or None),
                                tz=had.tz)
    return out


def _zone_ok(name: str) -> bool:
    if not re.fullmatch(TZ_PATTERN, name):
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def read_site_details(text: str) -> tuple[dict[str, SiteDetails], list[str]]:
    """A CSV with a header line naming ``site`` and any of ``state``, ``municipality``,
    ``timezone``; returns the sites and a list of problems (line by line; a bad line is left out,
    the others kept)."""
    rows = csv.DictReader(io.StringIO(text, newline=""))
    try:
        fields = [f.strip() for f in rows.fieldnames or []]
    except csv.Error as exc:
        return {}, [f"line 1: not CSV: {exc}"]
    if "site" not in fields:
        return {}, ["the first line must name the columns: site,state,municipality,timezone"]
    rows.fieldnames = fields
    out: dict[str, SiteDetails] = {}
    bad: list[str] = []
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            bad.append(f"line {rows.line_num}: not CSV: {exc}")
            break
        line = rows.line_num
        site = (row.get("site") or "").strip()
        if not site or site.startswith("#"):
            continue
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", site):
            bad.append(f"line {line}: not a site id: {site[:64]!r}")
            continue
        tz = (row.get("timezone") or "").strip() or None
        if tz is not None and not _zone_ok(tz):
            bad.append(f"line {line}: not a time zone name: {tz[:64]!r}")
            continue
        out[site] = SiteDetails(state=(row.get("state") or "").strip()[:100] or None,
                                municipality=(row.get("municipality") or "").strip()[:100] or None,
                                tz=tz)
    return out, bad
