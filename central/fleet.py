"""One definition of a clinic's state, for the fleet page, its JSON API and `clinic-central fleet`.

    PostgreSQL: sites (status, last seen, versions) + events_active (what is on, since when)
              + site_inventory (name, state, municipality) + problem_acks (who took charge)
    VictoriaMetrics: the latest battery charge, runtime and buffer depth (one instant query)
        -> ClinicState per clinic, ranked worst first

Everything here is language-neutral (codes and times); the page and the CLI word it.
The state comes from the edge's own events (``mains_lost``, ``wan_down``, ``device_unreachable``:
docs/events.md) so "on battery since" is the clinic's time, not the time the centre heard of it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import httpx
import psycopg

from central import pg

log = logging.getLogger(__name__)

# Primary states, worst first: the fleet page's order and the CLI's --show choices.
STATES = ("offline", "battery_low", "on_battery", "wan_down", "devices", "problem", "backlog", "ok")
RANK = {s: i for i, s in enumerate(STATES)}
POWER_CONDS = ("mains_lost",)           # the UPS on battery, or a meter with every phase dead
SILENT_AFTER_S = 300.0    # no message for this long: offline, even without the broker's will
BACKLOG_MIN = 1000        # readings waiting at the clinic before it counts as a backlog
LATEST_METRICS = ("battery.charge_pct", "battery.runtime_s", "buffer.depth")


def migrate(conn: psycopg.Connection[Any]) -> None:
    """The ingest's schema, then the web's own tables (both idempotent)."""
    pg.migrate(conn)
    ddl = resources.files("central").joinpath("schema_web.sql").read_text(encoding="utf-8")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (pg.MIGRATION_LOCK,))
        conn.execute(ddl)


@dataclass(frozen=True)
class Problem:
    """One active condition of a clinic (an entry of its retained events/active list)."""

    id: int
    cond: str
    dev: str
    start: datetime
    values: dict[str, Any]
    ack_by: str | None = None
    ack_at: datetime | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "cond": self.cond, "dev": self.dev, "start": _iso(self.start),
                "values": self.values, "ack_by": self.ack_by, "ack_at": _iso(self.ack_at),
                "note": self.note}


@dataclass(frozen=True)
class ClinicState:
    site: str
    name: str | None
    state: str | None            # the inventory's state (entidad), not the clinic's condition
    municipality: str | None
    status: str                  # the worst of STATES that applies
    flags: frozenset[str]        # every one of STATES that applies
    since: datetime | None       # since when the worst applies (None: never seen / unknown)
    last_seen: datetime | None
    offline_since: datetime | None
    on_battery_since: datetime | None
    charge_pct: float | None
    runtime_s: float | None
    wan_down_since: datetime | None
    devices_down: tuple[tuple[str, datetime], ...]
    backlog: int | None
    agent_version: str | None
    config_version: str | None
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def rank(self) -> int:
        return RANK[self.status]

    def as_dict(self) -> dict[str, Any]:
        return {
            "site": self.site, "name": self.name, "state": self.state,
            "municipality": self.municipality, "status": self.status,
            "flags": sorted(self.flags, key=RANK.__getitem__), "since": _iso(self.since),
            "last_seen": _iso(self.last_seen), "offline_since": _iso(self.offline_since),
            "on_battery_since": _iso(self.on_battery_since), "charge_pct": self.charge_pct,
            "runtime_s": self.runtime_s, "wan_down_since": _iso(self.wan_down_since),
            "devices_down": [{"dev": d, "since": _iso(t)} for d, t in self.devices_down],
            "backlog": self.backlog, "agent_version": self.agent_version,
            "config_version": self.config_version,
            "problems": [p.as_dict() for p in self.problems]}

    def since_for(self, flag: str) -> datetime | None:
        """Since when ``flag`` applies (for ``--for``); None when unknown or not applicable."""
        if flag == "offline":
            return self.offline_since
        if flag in ("on_battery", "battery_low"):
            return self.on_battery_since
        if flag == "wan_down":
            return self.wan_down_since
        if flag == "devices":
            return min((t for _, t in self.devices_down), default=None)
        if flag == "problem":
            return min((p.start for p in self.problems), default=None)
        return None


@dataclass(frozen=True)
class Filter:
    """Which clinics to list: a condition (one of STATES, "problems" = anything but ok, or
    None = all), the inventory's state and municipality, and a minimum duration."""

    show: str | None = None
    state: str | None = None
    municipality: str | None = None
    for_s: float | None = None
    site: str | None = None

    def matches(self, c: ClinicState, now: datetime) -> bool:
        if self.site is not None and c.site != self.site:
            return False
        if self.state is not None and (c.state or "").casefold() != self.state.casefold():
            return False
        if self.municipality is not None and \
                (c.municipality or "").casefold() != self.municipality.casefold():
            return False
        if self.show is None:
            return True
        if self.show == "problems":
            flag = c.status
            if flag == "ok":
                return False
        elif self.show in c.flags:
            flag = self.show
        else:
            return False
        if self.for_s is not None:
            since = c.since_for(flag)
            # a clinic never seen has been offline "forever"
            if since is not None and (now - since).total_seconds() < self.for_s:
                return False
            if since is None and flag != "offline":
                return False
        return True


@dataclass(frozen=True)
class Fleet:
    clinics: tuple[ClinicState, ...]
    now: datetime
    metrics_ok: bool            # VictoriaMetrics answered (else charge, runtime, backlog unknown)
    states: tuple[str, ...]     # the inventory's states, for the filter menu
    municipalities: tuple[str, ...]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATES, 0)
        for c in self.clinics:
            out[c.status] += 1
        return out


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _epoch_dt(x: Any) -> datetime | None:
    if type(x) not in (int, float) or not math.isfinite(x) or not 0 <= x < 32503680000:
        return None
    return datetime.fromtimestamp(float(x), tz=UTC)


def read_problems(active: Any, acks: dict[tuple[str, str, datetime], tuple[str, datetime, str]]
                  ) -> tuple[Problem, ...]:
    """The retained active list, as stored (the ingest checked only that it is a list)."""
    out: list[Problem] = []
    if not isinstance(active, list):
        return ()
    for e in active:
        if not isinstance(e, dict):
            continue
        cond, dev, start = e.get("cond"), e.get("dev"), _epoch_dt(e.get("start"))
        if not isinstance(cond, str) or not isinstance(dev, str) or start is None:
            continue
        eid = e.get("id") if type(e.get("id")) is int else 0
        values = e.get("values") if isinstance(e.get("values"), dict) else {}
        ack = acks.get((dev, cond, start))
        out.append(Problem(int(eid), cond, dev, start, dict(values),  # type: ignore[arg-type]
                           ack[0] if ack else None, ack[1] if ack else None,
                           ack[2] if ack else ""))
    out.sort(key=lambda p: (p.start, p.dev, p.cond))
    return tuple(out)


def _num(x: Any) -> float | None:
    return float(x) if type(x) in (int, float) and math.isfinite(x) else None


def judge(*, site: str, inv: tuple[str | None, str | None, str | None], status: str | None,
          status_at: datetime | None, last_seen: datetime | None, agent_version: str | None,
          config_version: str | None, problems: Sequence[Problem],
          latest: dict[str, float], now: datetime,
          silent_after_s: float = SILENT_AFTER_S, backlog_min: int = BACKLOG_MIN) -> ClinicState:
    """A clinic's state from what the stores hold: the single definition of every flag."""
    flags: set[str] = set()
    since: dict[str, datetime | None] = {}
    offline_since: datetime | None = None
    if last_seen is None:
        flags.add("offline")                               # in the inventory, never heard of
    elif status == "offline":
        flags.add("offline")
        offline_since = status_at or last_seen
    elif (now - last_seen).total_seconds() > silent_after_s:
        flags.add("offline")
        offline_since = last_seen
    since["offline"] = offline_since

    power = [p for p in problems if p.cond.split(".")[0] in POWER_CONDS]
    on_battery_since = min((p.start for p in power), default=None)
    charge = latest.get("battery.charge_pct")
    runtime = latest.get("battery.runtime_s")
    for p in power:   # the raise's own values when the store has no newer reading
        charge = charge if charge is not None else _num(p.values.get("battery.charge_pct"))
        runtime = runtime if runtime is not None else _num(p.values.get("battery.runtime_s"))
    if power:
        flags.add("on_battery")
        since["on_battery"] = on_battery_since
    low = [p for p in problems if p.cond == "battery_low"]
    if power and low:
        flags.add("battery_low")
        since["battery_low"] = on_battery_since
    wan = [p.start for p in problems if p.cond.split(".")[0] == "wan_down"]
    wan_down_since = min(wan, default=None)
    if wan:
        flags.add("wan_down")
        since["wan_down"] = wan_down_since
    down: dict[str, datetime] = {}
    for p in problems:
        if p.cond == "device_unreachable":
            down[p.dev] = min(p.start, down.get(p.dev, p.start))
    if down:
        flags.add("devices")
        since["devices"] = min(down.values())
    if problems:
        flags.add("problem")
        since["problem"] = min(p.start for p in problems)
    backlog = latest.get("buffer.depth")
    if backlog is not None and backlog >= backlog_min:
        flags.add("backlog")
        since["backlog"] = None
    if not flags:
        flags.add("ok")
    worst = min(flags, key=RANK.__getitem__)
    return ClinicState(
        site=site, name=inv[0], state=inv[1], municipality=inv[2], status=worst,
        flags=frozenset(flags), since=since.get(worst), last_seen=last_seen,
        offline_since=offline_since, on_battery_since=on_battery_since, charge_pct=charge,
        runtime_s=runtime, wan_down_since=wan_down_since,
        devices_down=tuple(sorted(down.items())),
        backlog=None if backlog is None else int(backlog), agent_version=agent_version,
        config_version=config_version, problems=tuple(problems))


def sort_key(c: ClinicState) -> tuple[int, float, str]:
    """Worst first; within a state, the longest-running first; then by site id."""
    return (c.rank, c.since.timestamp() if c.since else float("-inf"), c.site)


def latest_values(vm_url: str | None, sites: Iterable[str] | None = None, *,
                  timeout_s: float = 5.0) -> dict[str, dict[str, float]] | None:
    """site -> metric -> latest value within 15 minutes, from VictoriaMetrics; None if it did not
    answer (the page says so, and the rest of the state stands on PostgreSQL alone)."""
    if not vm_url:
        return None
    match = "|".join(m.replace(".", "\\\\.") for m in LATEST_METRICS)
    sel = f'metric=~"{match}"'
    if sites is not None:
        wanted = list(sites)
        if len(wanted) == 1:
            sel += f',site="{_label(wanted[0])}"'
    query = f"max by (site, metric) (last_over_time(clinic_value{{{sel}}}[15m]))"
    try:
        r = httpx.post(f"{vm_url}/api/v1/query", data={"query": query}, timeout=timeout_s)
        r.raise_for_status()
        result = r.json()["data"]["result"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        log.warning("VictoriaMetrics did not answer the fleet query: %s", exc)
        return None
    out: dict[str, dict[str, float]] = {}
    for series in result:
        labels, (_, value) = series.get("metric", {}), series.get("value", (0, "nan"))
        try:
            v = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(v):
            out.setdefault(str(labels.get("site")), {})[str(labels.get("metric"))] = v
    return out


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def load(conn: psycopg.Connection[Any], vm_url: str | None, flt: Filter = Filter(), *,
         silent_after_s: float = SILENT_AFTER_S, backlog_min: int = BACKLOG_MIN) -> Fleet:
    """Every clinic (the inventory's and every site ever heard of) matching ``flt``, worst first."""
    only = flt.site
    rows = conn.execute(
        """SELECT COALESCE(s.site, i.site), i.name, i.state, i.municipality, s.status,
                  s.status_at, s.last_seen, s.agent_version, s.config_version, a.active,
                  clock_timestamp()
             FROM sites s FULL JOIN site_inventory i ON i.site = s.site
             LEFT JOIN events_active a ON a.site = COALESCE(s.site, i.site)
            WHERE %(site)s::text IS NULL OR COALESCE(s.site, i.site) = %(site)s""",
        {"site": only}).fetchall()
    now = rows[0][10] if rows else datetime.now(UTC)
    acks: dict[str, dict[tuple[str, str, datetime], tuple[str, datetime, str]]] = {}
    for site, dev, cond, start, by, at, note in conn.execute(
            "SELECT site, dev, cond, start_at, by_user, at, note FROM problem_acks "
            "WHERE %(site)s::text IS NULL OR site = %(site)s", {"site": only}):
        acks.setdefault(site, {})[(dev, cond, start)] = (by, at, note)
    latest = latest_values(vm_url, [only] if only else None)
    clinics = []
    for (site, name, state, muni, status, status_at, last_seen, agent_v, config_v, active,
         _) in rows:
        c = judge(site=site, inv=(name, state, muni), status=status, status_at=status_at,
                  last_seen=last_seen, agent_version=agent_v, config_version=config_v,
                  problems=read_problems(active, acks.get(site, {})),
                  latest=(latest or {}).get(site, {}), now=now, silent_after_s=silent_after_s,
                  backlog_min=backlog_min)
        if flt.matches(c, now):
            clinics.append(c)
    clinics.sort(key=sort_key)
    inv = conn.execute("SELECT DISTINCT state, municipality FROM site_inventory "
                       "WHERE state IS NOT NULL").fetchall()
    wanted_state = None if flt.state is None else flt.state.casefold()
    munis = {m for s, m in inv if m and wanted_state in (None, s.casefold())}
    return Fleet(tuple(clinics), now, latest is not None, tuple(sorted({s for s, _ in inv})),
                 tuple(sorted(munis)))


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``1h``, ``2d`` -> seconds; ValueError otherwise."""
    t = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    mult = units.get(t[-1:])
    num = t[:-1] if mult else t
    value = float(num) * (mult or 1)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"not a duration: {text!r}")
    return value


def event_history(conn: psycopg.Connection[Any], site: str, *, limit: int = 100
                  ) -> list[dict[str, Any]]:
    """A clinic's newest events (edge times), newest first."""
    rows = conn.execute(
        "SELECT id, kind, cond, dev, start_at, end_at, dur_s, est, vals FROM events "
        "WHERE site = %s ORDER BY start_at DESC, id DESC LIMIT %s", (site, limit)).fetchall()
    return [{"id": i, "kind": k, "cond": c, "dev": d, "start": s, "end": e, "dur_s": du,
             "est": est, "values": v} for i, k, c, d, s, e, du, est, v in rows]


def acknowledge(conn: psycopg.Connection[Any], *, site: str, dev: str, cond: str,
                start: datetime, user: str, note: str) -> bool:
    """Record that ``user`` took charge of an active problem; False if it is not active (any
    more). The audit trail gets the action too."""
    with conn.transaction():
        row = conn.execute("SELECT active FROM events_active WHERE site = %s FOR UPDATE",
                           (site,)).fetchone()
        active = read_problems(row[0] if row else None, {})
        if not any(p.dev == dev and p.cond == cond and p.start == start for p in active):
            return False
        conn.execute(
            """INSERT INTO problem_acks (site, dev, cond, start_at, by_user, note)
               VALUES (%s, %s, %s, %s, %s, %s)
               ON CONFLICT (site, dev, cond, start_at)
               DO UPDATE SET by_user = excluded.by_user, note = excluded.note, at = now()""",
            (site, dev, cond, start, user, note))
        record_action(conn, user=user, action="problem_ack", site=site,
                      detail={"dev": dev, "cond": cond, "start": start.isoformat(), "note": note})
    return True


def record_action(conn: psycopg.Connection[Any], *, user: str, action: str, site: str | None,
                  detail: dict[str, Any]) -> None:
    """One line of the centre's audit trail (``operator_actions``, shared with the rollouts):
    who did what, to which clinic."""
    from psycopg.types.json import Jsonb
    conn.execute("INSERT INTO operator_actions (actor, action, sites, detail) "
                 "VALUES (%s, %s, %s, %s)",
                 (user, action, 0 if site is None else 1,
                  Jsonb(detail if site is None else {"site": site, **detail})))
