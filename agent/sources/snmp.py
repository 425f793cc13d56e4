"""SNMP source: what the device's profiles name (system, interfaces, CPU, memory, UPS, cellular).

One poll:

    plan (scalars, interface columns and profile tables, learned from earlier polls)
      -> one multi-column walk: GETBULK (v2c/v3) or GETNEXT (v1) through ``SnmpClient``
      -> interfaces: rows by ifIndex -> names, selection and WAN (compiled on discovery polls)
         -> samples; rates from the counters of the previous poll
      -> scalars and tables: converted as the profiles say (``snmp_values``)
      -> ``snmp.skipped`` when the set of metrics that could not be read changes

Which OIDs are read and what the metrics are called comes from the profiles (TOML data files,
``agent/config/snmp_profiles.py``). This module orchestrates one poll and keeps the state between
polls; the jobs live beside it:

    snmp_walk.py        the multi-column walk over the client (GETBULK sizing, tooBig, v1)
    snmp_interfaces.py  interface discovery, naming, selection, WAN recognition (pure)
    snmp_rates.py       counter rates, wraps, resets, reboots, discontinuities
    snmp_values.py      profile value conversion, tables, the skipped-metrics report
    snmp_client.py      the client: SNMP messages, error-status translation

Requests are kept few: every request carries all scalars and columns at once, ``max-repetitions``
is sized to the rows seen last time, and what never changes (interface names and types, table
columns marked ``static``) is only read on discovery polls: the first, after a reboot, when the
set of interfaces changed, and hourly. What the device does not offer (a table it lacks, a
64-bit counter, ifCounterDiscontinuityTime) is not asked for again until the next discovery.
SNMPv1 has no GETBULK: one GETNEXT per row.

Interface metrics (names from the if-mib profile; units in ``Sample.unit``)::

    system.rebooted           True on the poll that saw sysUpTime go backwards
    if.<key>.oper_up          ifOperStatus == up
    if.<key>.admin_up         ifAdminStatus == up
    if.<key>.speed_bps  bit/s ifSpeed, or ifHighSpeed * 1e6 when ifSpeed is saturated or missing
    if.<key>.in_bps     bit/s from ifHCInOctets (ifInOctets when the 64-bit counter is missing)
    if.<key>.out_bps    bit/s from ifHCOutOctets (ifOutOctets likewise)
    if.wan.*                  the WAN under a name that is the same at every clinic (instead of
                              its own key), plus if.wan.name, its real name
    snmp.skipped              "metric: reason; ..." of what could not be read, sent when it changes
                              ("" once everything reads again)

``<key>``: see ``snmp_interfaces``. A speed of 0 means the agent does not know.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from agent.config import DeviceConfig
from agent.config.snmp import SnmpSettings
from agent.config.snmp_profiles import InterfaceSpec, ScalarSpec, TableSpec
from agent.errors import DeviceProtocolError, SourceError
from agent.i18n import text
from agent.logs import OnceLog
from agent.readings import Sample
from agent.sources.latest import LatestSamples
from agent.sources.snmp_client import (
    COUNTER64,
    GAUGE,
    INTEGER,
    TIMETICKS,
    Oid,
    PlainValue,
    SnmpClient,
    VarBind,
)
from agent.sources.snmp_interfaces import (
    STATUS_UP,
    InterfacePlan,
    Note,
    WanMemory,
    compile_interfaces,
    interface_indices,
    metric_key,
    static_roles,
)
from agent.sources.snmp_rates import (
    ABSOLUTE_MAX_BPS,
    Counter,
    CounterRates,
    UptimeWatch,
    counter_rate,
    is_counter,
    uptime_went_backwards,
)
from agent.sources.snmp_values import (
    NOT_OFFERED,
    clean_text,
    convert,
    format_skipped,
    kind_words,
    row_matches,
    table_samples,
)
from agent.sources.snmp_walk import Walk, WalkClient, Walker, cell_request, dotted, scalar_request

# Re-exported: tests and tools import them from here.
__all__ = ["ABSOLUTE_MAX_BPS", "REBOOTED_METRIC", "SKIPPED_METRIC", "SnmpSource", "counter_rate",
           "format_skipped", "metric_key", "scalar_request", "uptime_went_backwards"]

log = logging.getLogger(__name__)

_SPEED_SATURATED = 2**32 - 1
REDISCOVER_AFTER_S = 3600.0
# Tables with at most this many cells (known rows x columns read every poll) are read cell by
# cell, in the same request as the scalars, between discovery polls instead of walked.
MAX_CELLS_PER_TABLE = 32

UNIT_BPS = "bit/s"
SKIPPED_METRIC = "snmp.skipped"
REBOOTED_METRIC = "system.rebooted"


@dataclass(frozen=True)
class _RequestPlan:
    """What one poll asks for: compiled once per discovery state, not rebuilt every poll."""

    scalars: tuple[ScalarSpec, ...]
    requests: list[Oid]          # GETNEXT targets of the first request (scalars, cells, probes)
    columns: list[Oid]           # interface columns walked to their end
    itf_columns: list[Oid]
    probes: list[Oid]            # profile table columns probed, walked only if present
    tables: tuple[TableSpec, ...]
    routes: list[Oid]
    count_request: Oid | None


class SnmpSource:
    """Polls one SNMP agent (router, UPS card...). See the module docstring for metrics."""

    def __init__(self, device: DeviceConfig[SnmpSettings], *, client: WalkClient | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 latest: LatestSamples | None = None) -> None:
        settings: SnmpSettings = device.settings
        self.name = device.name
        self.device = device
        self.settings = settings
        self.client: Any = client or SnmpClient(settings, timeout_s=device.timeout_s,
                                                device=device.name)
        self._walker = Walker(self.client, version=settings.version, device=device.name,
                              max_repetitions=settings.max_repetitions, clock=clock)
        self._clock = clock
        self._latest = latest
        self._lock = asyncio.Lock()
        profiles = settings.profiles
        self._itf: InterfaceSpec | None = profiles.interfaces
        self._scalars: tuple[ScalarSpec, ...] = profiles.scalars
        self._tables: tuple[TableSpec, ...] = profiles.tables
        self._plan: InterfacePlan | None = None
        self._discovered_at: float | None = None
        self._discoveries = 0                # discovery polls done: the request plan's epoch
        self._requests: tuple[tuple[object, ...], _RequestPlan] | None = None
        self._rediscover = True
        self._once = OnceLog(log)
        self._uptime = UptimeWatch()
        self._rates = CounterRates(device.name, self._once)
        self._need_32bit = settings.version == "1" or not self._has("in64")
        self._need_high_speed = False
        self._read_speed = True             # ifSpeed: on discovery polls and after link changes
        self._speeds: dict[int, tuple[VarBind | None, VarBind | None]] = {}  # ifSpeed, ifHighSpeed
        self._oper: dict[int, PlainValue] = {}
        self._if_number_trusted = False
        self._has_discontinuity = False
        self._absent_scalars: set[Oid] = set()
        self._absent_tables: set[str] = set()
        self._not_offered: dict[str, str] = {}
        self._table_static: dict[str, dict[Oid, dict[str, VarBind]]] = {}
        # table -> (row index, column) cells read one by one between discovery polls
        self._table_cells: dict[str, tuple[tuple[Oid, str], ...]] = {}
        self._on_change: dict[str, object] = {}
        self._wan_memory: WanMemory | None = None
        self._skipped_now: dict[str, str] = {}
        self._skipped_reported: dict[str, str] = {}
        self.last_poll_requests = 0

    async def read(self) -> list[Sample]:
        """Poll the agent once. Raises DeviceTimeout, DeviceRefused or DeviceProtocolError."""
        async with self._lock:
            before = self.client.requests
            try:
                samples = await self._poll()
            finally:
                self.last_poll_requests = self.client.requests - before
                log.debug("%s: poll used %d SNMP request(s)", self.name, self.last_poll_requests)
            if self._latest is not None:
                self._latest.publish(self.name, samples,
                                     fresh_for_s=3 * self.device.interval_s + self.device.timeout_s)
            return samples

    async def close(self) -> None:
        """Close the SNMP socket."""
        await self.client.close()

    # -- one poll ----------------------------------------------------------------------------

    def _has(self, role: str) -> bool:
        return self._itf is not None and self._itf.column(role) is not None

    async def _poll(self) -> list[Sample]:
        now = self._clock()
        discovering = (self._discovered_at is None or self._rediscover
                       or now - self._discovered_at >= REDISCOVER_AFTER_S)
        self._skipped_now = {}
        itf = self._itf
        plan = self._request_plan(discovering)
        # Between discoveries, ifNumber ends the interface walk without a request just to see
        # the end of the table. Discovery polls walk to the real end, and ifNumber is trusted
        # only while it matches what they found (some agents count rows they do not serve).
        count = plan.count_request
        use_count = count is not None and itf is not None and itf.count is not None \
            and not discovering and self._if_number_trusted
        walk = await self._walker.walk(
            plan.requests, plan.columns,
            row_count=(count, itf.count + (0,)) if use_count and count and itf and itf.count
            else None, counted=plan.itf_columns if use_count else (), probes=plan.probes)
        try:
            samples: list[Sample] = []
            rebooted = self._scalar_samples(list(plan.scalars), walk, samples, discovering)
            if rebooted:
                self._rates.clear()
                self._rediscover = True
            if itf is not None:
                samples += await self._interface_samples(itf, walk, discovering, now,
                                                         plan.routes)
            samples += self._table_samples(list(plan.tables), walk, discovering)
            if discovering:
                self._discovered_at = now
                self._discoveries += 1
                if not rebooted:
                    self._rediscover = False
            rows_now = max((len(rows) for rows in walk.columns.values()), default=0)
            # Between discoveries small tables are read cell by cell, so only a discovery poll
            # sees the longest table.
            known = self._walker.known_rows
            self._walker.known_rows = rows_now if discovering else max(rows_now, known)
            self._report_skipped(samples)
            return samples
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - garbage from a device must not stop the poller
            self._warn_once("decode", "%s: could not make sense of the device's answer",
                            self.name, exc_info=True)
            raise DeviceProtocolError(text("src.snmp.undecodable", where=self.client.address,
                                           error=f"{exc.__class__.__name__}: {exc}")) from exc

    def _request_plan(self, discovering: bool) -> _RequestPlan:
        """What this poll asks for. Between discoveries only the interface columns read can
        change (speed after a link change, 32-bit counters): the plan is compiled once per
        discovery and per set of columns, not rebuilt at every poll."""
        roles = tuple(self._interface_roles(discovering))
        key = (discovering, roles, self._discoveries)
        if not discovering and self._requests is not None and self._requests[0] == key:
            return self._requests[1]
        plan = self._compile_requests(discovering, roles)
        self._requests = (key, plan)
        return plan

    def _compile_requests(self, discovering: bool, roles: tuple[str, ...]) -> _RequestPlan:
        itf = self._itf
        scalars = [s for s in self._scalars if discovering or s.oid not in self._absent_scalars]
        requests = list(dict.fromkeys(scalar_request(s.oid) for s in scalars))
        count_request: Oid | None = None
        routes: list[Oid] = []
        if itf is not None and itf.count is not None:
            count_request = scalar_request(itf.count)
            requests.append(count_request)
        if itf is not None and discovering:
            if self.settings.wan_auto:
                routes = [r.oid for r in itf.default_routes]
                requests += routes
            discontinuity = itf.column("discontinuity")
            if discontinuity is not None:
                # One value tells whether the agent has ifCounterDiscontinuityTime at all.
                requests.append(discontinuity)
        itf_columns = [c for c in (itf.column(role) for role in roles) if c is not None] \
            if itf else []
        tables = [t for t in self._tables if discovering or t.name not in self._absent_tables]
        table_columns: list[Oid] = []
        for t in tables:
            dynamic = [c for c, _ in t.columns if discovering or c not in t.static]
            if not discovering and t.name in self._table_cells:
                requests += [cell_request(t.column_oid(c) + index)
                             for index, c in self._table_cells[t.name]]
            else:
                table_columns += [t.column_oid(c) for c in dynamic]
        requests = list(dict.fromkeys(requests))
        columns = list(dict.fromkeys(itf_columns))
        # Profile tables a device may well not have (HOST-RESOURCES on a small router, UPS-MIB
        # on a router) are probed with one GETNEXT each in the first request and walked only
        # if they answer; the probe's answer is their first row.
        probes = [c for c in dict.fromkeys(table_columns) if c not in columns]
        return _RequestPlan(tuple(scalars), requests, columns, itf_columns, probes, tuple(tables),
                            routes, count_request)

    def _interface_roles(self, discovering: bool) -> list[str]:
        roles = ["admin", "oper"]
        # A link's speed changes when it renegotiates, which takes it down first: it is read on
        # discovery polls and after an interface changed its status, one column less per poll.
        if discovering or self._read_speed:
            roles.append("speed")
            if self._need_high_speed:
                roles.append("high_speed")
        if self.settings.version != "1":
            roles += ["in64", "out64"]
        if self._need_32bit:
            roles += ["in32", "out32"]
        if self._has_discontinuity:
            roles.append("discontinuity")
        if discovering:
            roles += static_roles(self.settings)
        return [r for r in dict.fromkeys(roles) if self._has(r)]

    # -- scalars -----------------------------------------------------------------------------

    def _scalar_answer(self, walk: Walk, oid: Oid) -> VarBind | None:
        """The agent's value of scalar ``oid``, or None when it does not have it."""
        vb = walk.scalars.get(scalar_request(oid))
        if vb is None:
            return None
        if vb.oid == oid + (0,):
            return vb
        if vb.oid == oid and not vb.is_exception:
            self._warn_once(f"no-instance:{oid}", "%s: the device serves %s without its instance "
                            ".0; reading it anyway", self.name, dotted(oid), level=logging.INFO)
            return vb
        return None

    def _scalar_samples(self, scalars: list[ScalarSpec], walk: Walk, samples: list[Sample],
                        discovering: bool) -> bool:
        """Append the scalars' samples; True when sysUpTime says the device rebooted."""
        rebooted = False
        if discovering:
            self._absent_scalars = set()
            self._not_offered = {k: v for k, v in self._not_offered.items()
                                 if not any(k == s.metric for s in self._scalars)}
        for spec in scalars:
            vb = self._scalar_answer(walk, spec.oid)
            if vb is None:
                if discovering:
                    self._absent_scalars.add(spec.oid)
                    self._not_offered[spec.metric] = NOT_OFFERED
                continue
            value, why = convert(vb, spec.value)
            if why is not None:
                self._quirk(spec.metric, why)
                continue
            if (spec.role == "uptime" and isinstance(vb.value, int)
                    and vb.kind in (TIMETICKS, INTEGER, GAUGE)):
                rebooted = self._uptime.check(vb.value, walk.time)
            if spec.on_change:
                if self._on_change.get(spec.metric, object()) == value:
                    continue
                self._on_change[spec.metric] = value
            samples.append(Sample(spec.metric, value, spec.value.unit))
        if rebooted:
            log.warning("%s: sysUpTime went backwards: the device (or its SNMP agent) restarted; "
                        "no rates this poll", self.name)
            samples.append(Sample(REBOOTED_METRIC, True))
        return rebooted

    # -- tables ------------------------------------------------------------------------------

    def _table_samples(
        self, tables: list[TableSpec], walk: Walk, discovering: bool
    ) -> list[Sample]:
        samples: list[Sample] = []
        if discovering:
            self._absent_tables = set()
        for spec in tables:
            rows: dict[Oid, dict[str, VarBind]] = {}
            if not discovering and spec.name in self._table_cells:
                for index, column in self._table_cells[spec.name]:
                    cell = spec.column_oid(column) + index
                    vb = walk.scalars.get(cell_request(cell))
                    if vb is not None and vb.oid == cell:
                        rows.setdefault(index, {})[column] = vb
                    else:
                        # The row went away (or the agent was replaced): look again.
                        self._rediscover = True
            for column, _ in spec.columns:
                for suffix, (vb, _t) in walk.columns.get(spec.column_oid(column), {}).items():
                    rows.setdefault(suffix, {})[column] = vb
            if discovering:
                self._table_static[spec.name] = {
                    index: {c: v for c, v in row.items() if c in spec.static}
                    for index, row in rows.items()}
                for m in spec.metrics:
                    self._not_offered.pop(f"{spec.prefix}.{m.metric}", None)
                self._table_cells.pop(spec.name, None)
                if not rows:
                    self._absent_tables.add(spec.name)
                    for m in spec.metrics:
                        self._not_offered[f"{spec.prefix}.{m.metric}"] = NOT_OFFERED
                    continue
                known = sorted(rows)
                if all(c in spec.static for c, _ in spec.where):
                    known = [i for i in known if row_matches(spec, rows[i])]
                cells = tuple((i, c) for i in known for c, _ in spec.columns
                              if c not in spec.static and c in rows[i])
                if len(cells) <= MAX_CELLS_PER_TABLE:
                    self._table_cells[spec.name] = cells
            else:
                for index, static in self._table_static.get(spec.name, {}).items():
                    if index in rows:
                        rows[index].update(static)
            got, skipped = table_samples(spec, rows)
            samples += got
            for metric, why in skipped.items():
                self._quirk(metric, why)
        return samples

    # -- interfaces --------------------------------------------------------------------------

    async def _interface_samples(self, itf: InterfaceSpec, walk: Walk, discovering: bool,
                                 now: float, routes: list[Oid]) -> list[Sample]:
        indices, notes = interface_indices(itf, walk, self.name)
        self._say(notes)
        if not discovering and self._plan is not None and indices != set(self._plan.interfaces):
            log.info("%s: the device's interfaces changed; reading their names again", self.name)
            names_walk = await self._walker.walk(
                [], [c for c in (itf.column(r) for r in static_roles(self.settings))
                     if c is not None])
            walk.columns.update(names_walk.columns)
            discovering = True
            self._rediscover = True     # the next poll also re-reads tables and routes
        if discovering:
            column = itf.column("discontinuity")
            if column is not None and column in walk.scalars:
                probe = walk.scalars.get(column)
                has = bool(walk.columns.get(column)) or (
                    probe is not None and probe.oid[:len(column)] == column
                    and len(probe.oid) > len(column))
                if has != self._has_discontinuity:
                    log.info("%s: %s ifCounterDiscontinuityTime", self.name,
                             "reading" if has else "the device does not offer")
                self._has_discontinuity = has
            self._plan, self._wan_memory, notes = compile_interfaces(
                itf, walk, indices, self.settings, device=self.name, now=now, routes=routes,
                wan_memory=self._wan_memory)
            self._say(notes)
            if itf.count is not None:
                count = walk.scalars.get(scalar_request(itf.count))
                self._if_number_trusted = (count is not None and count.oid == itf.count + (0,)
                                           and count.value == len(indices))
        return self._samples(itf, walk)

    def _samples(self, itf: InterfaceSpec, walk: Walk) -> list[Sample]:
        samples: list[Sample] = []
        plan = self._plan
        assert plan is not None
        rows = {role: {s[0]: v for s, v in walk.columns.get(oid, {}).items() if len(s) == 1}
                for role, oid in itf.columns}
        high_speed_read = self._has("high_speed") and itf.column("high_speed") in walk.columns
        for role in ("in64", "out64", "in32", "out32", "high_speed", "speed", "discontinuity"):
            rows.setdefault(role, {})
        if self._has("speed") and itf.column("speed") in walk.columns:
            self._speeds = {i: ((rows["speed"].get(i) or (None,))[0],
                                (rows["high_speed"].get(i) or (None,))[0])
                            for i in plan.interfaces}
            self._read_speed = False
        speed_rows = {"speed": {i: (v[0], 0.0) for i, v in self._speeds.items() if v[0]},
                      "high_speed": {i: (v[1], 0.0) for i, v in self._speeds.items() if v[1]}}
        oper_now = {i: v[0].value for i, v in rows["oper"].items()}
        if self._oper and oper_now != self._oper:
            self._read_speed = True
        self._oper = oper_now
        missing_hc = False
        if plan.wan_gone is not None:
            wan_prefix = f"{itf.prefix}.{itf.wan_key}."
            samples += [Sample(wan_prefix + itf.metric("name"), plan.wan_gone),
                        Sample(wan_prefix + itf.metric("oper_up"), False)]
        for index in plan.selected:
            x = plan.interfaces[index]
            if index not in rows["admin"] and index not in rows["oper"]:
                continue      # no status row this poll: nothing trustworthy to report
            key = itf.wan_key if index == plan.wan else x.key
            prefix = f"{itf.prefix}.{key}."
            if index == plan.wan:
                samples.append(Sample(prefix + itf.metric("name"), x.name))
            for role, metric in (("oper", itf.metric("oper_up")),
                                 ("admin", itf.metric("admin_up"))):
                status = self._number(rows[role].get(index), prefix + metric, (INTEGER,))
                if status is not None:
                    samples.append(Sample(prefix + metric, status == STATUS_UP))
            speed = self._speed(speed_rows, index, prefix + itf.metric("speed"), high_speed_read)
            if speed is not None:
                samples.append(Sample(prefix + itf.metric("speed"), float(speed), UNIT_BPS))
            if self.settings.version != "1" and self._has("in64"):
                missing_hc |= not (is_counter(rows["in64"].get(index))
                                   and is_counter(rows["out64"].get(index)))
            disc_entry = rows["discontinuity"].get(index)
            discontinuity = (disc_entry[0].value if disc_entry and disc_entry[0].kind == TIMETICKS
                             and isinstance(disc_entry[0].value, int) else None)
            for direction, role in (("in", "in_rate"), ("out", "out_rate")):
                metric = prefix + itf.metric(role)
                counter = self._counter(rows, index, direction, x.key, metric, discontinuity)
                if counter is None:
                    continue
                rate = self._rates.rate((index, direction), counter, speed, metric, x.name)
                if rate is not None:
                    # A tenth of a bit/s is noise; fewer digits are fewer bytes over the satellite.
                    samples.append(Sample(metric, round(rate, 1), UNIT_BPS))
        if self.settings.version != "1" and self._has("in32") and missing_hc != self._need_32bit:
            if missing_hc:
                log.info("%s: some interfaces lack 64-bit counters; reading 32-bit ones too",
                         self.name)
            self._need_32bit = missing_hc
        return samples

    def _speed(self, rows: dict[str, dict[int, tuple[VarBind, float]]], index: int,
               metric: str, high_speed_read: bool) -> int | None:
        entry = rows["speed"].get(index)
        speed = entry[0].value if entry and entry[0].kind in (GAUGE, INTEGER) \
            and isinstance(entry[0].value, int) else None
        if speed is not None and speed != _SPEED_SATURATED:
            return speed
        high = rows["high_speed"].get(index)
        if high is not None and high[0].kind in (GAUGE, INTEGER) and isinstance(high[0].value, int):
            return high[0].value * 1_000_000
        if (entry is None or speed == _SPEED_SATURATED) and self._has("high_speed") \
                and not high_speed_read:
            if not self._need_high_speed:
                log.info("%s: %s; reading ifHighSpeed from the next poll", self.name,
                         "an interface is faster than ifSpeed can say" if entry else
                         "the device does not offer ifSpeed")
                self._read_speed = True
            self._need_high_speed = True
            return None
        self._quirk_vb(metric, entry[0] if entry and speed is None else None)
        return None

    def _counter(self, rows: dict[str, dict[int, tuple[VarBind, float]]], index: int,
                 direction: str, key: str, metric: str,
                 discontinuity: int | None) -> Counter | None:
        """The interface's best octet counter: 64-bit, else 32-bit."""
        for column in (f"{direction}64", f"{direction}32"):
            entry = rows[column].get(index)
            if entry is None:
                continue
            vb, t = entry
            if is_counter(entry) and isinstance(vb.value, int):
                return Counter(key, column, vb.value, 64 if vb.kind == COUNTER64 else 32, t,
                                discontinuity)
            if not vb.is_exception:
                self._quirk_vb(metric, vb)
        if self._need_32bit or self.settings.version == "1":
            self._quirk_vb(metric, None)
        # else: the 32-bit fallback is asked for from the next poll on.
        return None

    # -- quirks and skipped metrics ----------------------------------------------------------

    def _number(self, entry: VarBind | tuple[VarBind, float] | None, metric: str,
                kinds: Iterable[str]) -> int | None:
        """The integer in ``entry`` (a VarBind or (VarBind, t)), or None after noting the quirk."""
        vb = entry[0] if isinstance(entry, tuple) else entry
        if vb is not None and vb.kind in kinds and isinstance(vb.value, int):
            return vb.value
        self._quirk_vb(metric, vb)
        return None

    def _quirk_vb(self, metric: str, vb: VarBind | None) -> None:
        if vb is None:
            self._quirk(metric, "the device sent nothing")
        elif vb.is_exception:
            self._quirk(metric, f"the device sent {kind_words(vb.kind)}")
        else:
            shown = clean_text(vb.value) if isinstance(vb.value, bytes) else vb.value
            self._quirk(metric,
                        f"expected a number, the device sent {kind_words(vb.kind)} {shown!r}",
                        why_short=f"expected a number, the device sent {kind_words(vb.kind)}")

    def _quirk(self, metric: str, why: str, *, why_short: str | None = None) -> None:
        """Note that ``metric`` was skipped this poll; logged once, reported in snmp.skipped."""
        self._skipped_now[metric] = why_short or why
        self._warn_once(metric, "%s: skipping %s: %s", self.name, metric, why)

    def _report_skipped(self, samples: list[Sample]) -> None:
        """Append snmp.skipped when the set of skipped metrics (or their reasons) changed."""
        skipped = {**self._not_offered, **self._skipped_now}
        if skipped == self._skipped_reported:
            return
        if skipped:
            new = sorted(set(skipped) - set(self._skipped_reported))
            if new:
                log.info("%s: not reporting %s", self.name,
                         format_skipped({m: skipped[m] for m in new}, 600))
        else:
            log.info("%s: every metric reads again", self.name)
        self._skipped_reported = skipped
        samples.append(Sample(SKIPPED_METRIC, format_skipped(skipped)))

    def _say(self, notes: Iterable[Note]) -> None:
        """Log what the interface discovery found worth saying (once per key)."""
        for note in notes:
            if note.key is None:
                log.log(note.level, note.message, *note.args)
            else:
                self._once.problem(note.key, note.message, *note.args, level=note.level)

    def _warn_once(self, key: str, message: str, *args: object, exc_info: bool = False,
                   level: int = logging.WARNING) -> None:
        """Log a device quirk at ``level`` the first time, then at DEBUG, so it cannot flood."""
        self._once.problem(key, message, *args, level=level, exc_info=exc_info)
