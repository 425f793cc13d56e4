"""SNMP source: what the device's profiles name (system, interfaces, CPU, memory, UPS, cellular).

One poll:

    plan (scalars, interface columns and profile tables, learned from earlier polls)
      -> one multi-column walk: GETBULK (v2c/v3) or GETNEXT (v1) through ``SnmpClient``
      -> interfaces: rows by ifIndex -> names, selection and WAN (compiled on discovery polls)
         -> samples; rates from the counters of the previous poll
      -> scalars and tables: converted as the profiles say (``snmp_values``)
      -> ``snmp.skipped`` when the set of metrics that could not be read changes

Which OIDs are read and what the metrics are called comes from the profiles (TOML data files,
``agent/config/snmp_profiles.py``); what stays in code is what needs state: counter rates with
wraps, reboots and discontinuities, interface discovery and naming, and recognising the WAN.

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

``<key>`` is ifName (else ifDescr, else ``if<ifIndex>``) lowercased, reduced to [a-z0-9_.-];
a key already taken gets ``_<ifIndex>`` appended. A speed of 0 means the agent does not know.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from agent.config import DeviceConfig
from agent.config.snmp import InterfaceSelector, SnmpSettings
from agent.config.snmp_profiles import InterfaceSpec, ScalarSpec, TableSpec
from agent.errors import DeviceProtocolError, SourceError
from agent.readings import Sample
from agent.sources.latest import LatestSamples
from agent.sources.snmp_client import (
    COUNTER32,
    COUNTER64,
    END_OF_MIB,
    GAUGE,
    INTEGER,
    STRING,
    TIMETICKS,
    NoSuchName,
    Oid,
    SnmpClient,
    TooBig,
    VarBind,
)
from agent.sources.snmp_values import (
    NOT_OFFERED,
    clean_text,
    convert,
    kind_words,
    row_matches,
    table_samples,
)

log = logging.getLogger(__name__)

_STATUS_UP = 1
_LOOPBACK_TYPE = 24
_SPEED_SATURATED = 2**32 - 1
_TICKS_MODULUS = 2**32
_MAX_SUBID = 2**32 - 1

REDISCOVER_AFTER_S = 3600.0
# A walk is bounded so an agent that never ends a column cannot keep a poll busy forever.
MAX_REQUESTS_PER_WALK = 256
MAX_REPETITIONS_LIMIT = 1000
# Faster than any link a clinic could have; a counter "rate" above it is a counter reset.
ABSOLUTE_MAX_BPS = 1e12
# A wrap is believed only when the rate it implies fits the link (with slack for wrong speeds).
WRAP_SPEED_SLACK = 1.5
# Tables with at most this many cells (known rows x columns read every poll) are read cell by
# cell, in the same request as the scalars, between discovery polls instead of walked.
MAX_CELLS_PER_TABLE = 32
# snmp.skipped is a status line, not a dump: past this many characters it says "and N more".
SKIPPED_MAX_CHARS = 1500

UNIT_BPS = "bit/s"
SKIPPED_METRIC = "snmp.skipped"
REBOOTED_METRIC = "system.rebooted"
# Interface columns read on discovery polls only: names and types do not change between them.
_STATIC_ROLES = ("descr", "name", "type", "alias")
# How the WAN was recognised, most trusted first (lower rank wins over a remembered WAN).
_RANK_ROUTE, _RANK_TYPE, _RANK_NAME = 1, 2, 3


# -- pure helpers (unit-tested on their own) ----------------------------------------------------

def counter_rate(prev: int, cur: int, dt_s: float, *, bits: int,
                 link_bps: float | None = None) -> float | None:
    """Bit/s between two readings of an octet counter, or None when no honest rate exists.

    A negative delta is a wrap only if the wrapped delta is a rate the link could carry
    (``link_bps`` when known); otherwise the counter was reset (agent restart, interface
    re-created) and the poll gives no rate. A 64-bit counter practically never wraps, so a
    negative 64-bit delta always implies an absurd rate and is treated as a reset.
    """
    if dt_s <= 0 or prev < 0 or cur < 0:
        return None
    delta = cur - prev
    limit = ABSOLUTE_MAX_BPS
    if delta < 0:
        delta += 1 << bits
        if delta < 0:
            return None
        if link_bps:
            limit = min(limit, link_bps * WRAP_SPEED_SLACK)
    rate = delta * 8 / dt_s
    return rate if rate <= limit else None


def uptime_went_backwards(prev_ticks: int, cur_ticks: int, elapsed_s: float) -> bool:
    """True when sysUpTime went backwards for a reason other than its 497-day wrap (a reboot)."""
    if cur_ticks >= prev_ticks:
        return False
    expected = prev_ticks + elapsed_s * 100
    if expected >= _TICKS_MODULUS:
        slack = max(60 * 100, elapsed_s * 100 * 0.1)
        if abs((expected - _TICKS_MODULUS) - cur_ticks) <= slack:
            return False
    return True


def metric_key(name: str) -> str:
    """An interface name as a metric path segment: lowercase [a-z0-9_.-], no empty parts."""
    key = re.sub(r"[^a-z0-9_.-]+", "_", name.lower())
    return re.sub(r"\.{2,}", ".", key)[:64].strip("._-")


def scalar_request(oid: Oid) -> Oid:
    """The OID to GETNEXT so that the answer is ``oid.0``, or ``oid`` itself from an agent that
    (wrongly) serves the object without its instance ``.0``.

    GETNEXT of ``oid`` would skip ``oid`` itself. GETNEXT of the largest OID under its preceding
    sibling (…, k-1, 2^32-1) lands on ``oid`` when it exists and on ``oid.0`` otherwise, at no
    extra cost.
    """
    if oid[-1] == 0:
        return oid
    return oid[:-1] + (oid[-1] - 1, _MAX_SUBID)


def cell_request(cell: Oid) -> Oid:
    """The OID to GETNEXT so that the answer is exactly the table cell ``cell`` if it exists."""
    if cell[-1] == 0:
        return cell[:-1]
    return cell[:-1] + (cell[-1] - 1, _MAX_SUBID)


def format_skipped(skipped: dict[str, str], limit: int = SKIPPED_MAX_CHARS) -> str:
    """``{metric: reason}`` as "metric: reason; ..." sorted by metric, at most ``limit`` chars."""
    parts = [f"{metric}: {reason}" for metric, reason in sorted(skipped.items())]
    out: list[str] = []
    used = 0
    for n, part in enumerate(parts):
        if used + len(part) + 2 > limit and out:
            out.append(f"and {len(parts) - n} more")
            break
        out.append(part)
        used += len(part) + 2
    return "; ".join(out)


# -- walking ----------------------------------------------------------------------------------

@dataclass
class Walk:
    """What one multi-column walk returned, with the monotonic time each value arrived."""

    scalars: dict[Oid, VarBind] = field(default_factory=dict)
    columns: dict[Oid, dict[Oid, tuple[VarBind, float]]] = field(default_factory=dict)
    requests: int = 0
    time: float = 0.0       # when the first answer (the one with the scalars) arrived


@dataclass(frozen=True)
class _Interface:
    index: int
    name: str
    descr: str
    alias: str
    key: str
    if_type: int | None = None


@dataclass(frozen=True)
class _Plan:
    """Compiled on a discovery poll: which interfaces to report and under which key."""

    interfaces: dict[int, _Interface]
    selected: tuple[int, ...]
    wan: int | None
    compiled_at: float
    wan_gone: str | None = None    # the WAN vanished from the table: reported down by this name


@dataclass(frozen=True)
class _Counter:
    key: str          # interface key it belonged to; a renamed index starts over
    column: str       # "in64", "in32", ...: rates only between readings of the same counter
    value: int
    bits: int
    t: float
    discontinuity: int | None = None   # ifCounterDiscontinuityTime with this reading


class SnmpSource:
    """Polls one SNMP agent (router, UPS card...). See the module docstring for metrics."""

    def __init__(self, device: DeviceConfig, *, client: SnmpClient | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 latest: LatestSamples | None = None) -> None:
        settings: SnmpSettings = device.settings
        self.name = device.name
        self.device = device
        self.settings = settings
        self.client = client or SnmpClient(settings, timeout_s=device.timeout_s, device=device.name)
        self._clock = clock
        self._latest = latest
        self._lock = asyncio.Lock()
        profiles = settings.profiles
        self._itf: InterfaceSpec | None = profiles.interfaces
        self._scalars: tuple[ScalarSpec, ...] = profiles.scalars
        self._tables: tuple[TableSpec, ...] = profiles.tables
        self._plan: _Plan | None = None
        self._discovered_at: float | None = None
        self._rediscover = True
        self._known_rows = 0
        self._reps_cap = min(settings.max_repetitions, MAX_REPETITIONS_LIMIT)
        self._uptime: tuple[int, float] | None = None
        self._counters: dict[tuple[int, str], _Counter] = {}
        self._need_32bit = settings.version == "1" or not self._has("in64")
        self._need_high_speed = False
        self._read_speed = True             # ifSpeed: on discovery polls and after link changes
        self._speeds: dict[int, tuple[VarBind | None, VarBind | None]] = {}  # ifSpeed, ifHighSpeed
        self._oper: dict[int, object] = {}
        self._if_number_trusted = False
        self._has_discontinuity = False
        self._absent_scalars: set[Oid] = set()
        self._absent_tables: set[str] = set()
        self._not_offered: dict[str, str] = {}
        self._table_static: dict[str, dict[Oid, dict[str, VarBind]]] = {}
        # table -> (row index, column) cells read one by one between discovery polls
        self._table_cells: dict[str, tuple[tuple[Oid, str], ...]] = {}
        self._on_change: dict[str, object] = {}
        self._wan_memory: tuple[str, int] | None = None
        self._skipped_now: dict[str, str] = {}
        self._skipped_reported: dict[str, str] = {}
        self._warned: set[str] = set()
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
        scalars = [s for s in self._scalars if discovering or s.oid not in self._absent_scalars]
        requests = list(dict.fromkeys(scalar_request(s.oid) for s in scalars))
        count_request = None
        routes: list[Oid] = []
        if itf is not None and itf.count is not None:
            count_request = scalar_request(itf.count)
            requests.append(count_request)
        if itf is not None and discovering:
            if self.settings.wan_auto:
                routes = [r.oid for r in itf.default_routes]
                requests += routes
            if self._has("discontinuity"):
                # One value tells whether the agent has ifCounterDiscontinuityTime at all.
                requests.append(cast(Oid, itf.column("discontinuity")))   # _has says it is set
        # _interface_roles keeps only the roles the profile has a column for
        itf_columns = [cast(Oid, itf.column(role))
                       for role in self._interface_roles(discovering)] if itf else []
        tables = [t for t in self._tables if discovering or t.name not in self._absent_tables]
        table_columns = []
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
        # Between discoveries, ifNumber ends the interface walk without a request just to see
        # the end of the table. Discovery polls walk to the real end, and ifNumber is trusted
        # only while it matches what they found (some agents count rows they do not serve).
        use_count = count_request is not None and not discovering and self._if_number_trusted
        row_count = None
        if use_count and itf is not None and itf.count is not None and count_request is not None:
            row_count = (count_request, itf.count + (0,))   # count_request is set only with count
        walk = await self.walk(requests, columns, row_count=row_count,
                               counted=itf_columns if use_count else (), probes=probes)
        try:
            samples: list[Sample] = []
            rebooted = self._scalar_samples(scalars, walk, samples, discovering)
            if rebooted:
                self._counters.clear()
                self._rediscover = True
            if itf is not None:
                samples += await self._interface_samples(itf, walk, discovering, now, routes)
            samples += self._table_samples(tables, walk, discovering)
            if discovering:
                self._discovered_at = now
                if not rebooted:
                    self._rediscover = False
            rows_now = max((len(rows) for rows in walk.columns.values()), default=0)
            # Between discoveries small tables are read cell by cell, so only a discovery poll
            # sees the longest table.
            self._known_rows = rows_now if discovering else max(rows_now, self._known_rows)
            self._report_skipped(samples)
            return samples
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - garbage from a device must not stop the poller
            self._warn_once("decode", "%s: could not make sense of the device's answer",
                            self.name, exc_info=True)
            raise DeviceProtocolError(f"could not decode the answer of {self.client.address}: "
                                      f"{exc.__class__.__name__}: {exc}") from exc

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
            roles += self._static_roles()
        return [r for r in dict.fromkeys(roles) if self._has(r)]

    def _static_roles(self) -> list[str]:
        # ifAlias only matters when the technician selects interfaces by name or label, ifType
        # for "type:" selectors and recognising the WAN: each is 1 value per interface.
        s = self.settings
        needs_alias = s.wan_interface is not None \
            or any(sel.if_type is None for sel in s.interfaces)
        needs_type = s.wan_auto or any(sel.if_type is not None for sel in s.interfaces)
        return [r for r in _STATIC_ROLES
                if (r != "alias" or needs_alias) and (r != "type" or needs_type)]

    # -- the walk ----------------------------------------------------------------------------

    async def walk(self, scalars: list[Oid], columns: list[Oid], *,
                   row_count: tuple[Oid, Oid] | None = None, counted: Iterable[Oid] = (),
                   probes: Iterable[Oid] = ()) -> Walk:
        """GETNEXT each of ``scalars`` and read whole ``columns``, all in the same requests.

        Each request asks every unfinished column for its next rows; a column is finished when
        the agent answers with an OID outside it, or, if ``row_count`` = (request, instance)
        names one of the scalars and the instance it must answer with (ifNumber.0), a column of
        ``counted`` once it has that many rows. ``probes`` are
        columns asked for one value in the first request and walked on only if they have one.
        v1 has no GETBULK and uses GETNEXT rows.
        """
        probes = [p for p in probes if p not in columns]
        scalars = [*scalars, *(p for p in probes if p not in scalars)]
        result = Walk(columns={c: {} for c in [*columns, *probes]})
        enough = 0
        counted = set(counted)
        pending = list(columns)
        cursor: dict[Oid, Oid] = {c: c for c in columns}
        first = True
        while first or pending:
            if result.requests >= MAX_REQUESTS_PER_WALK:
                raise DeviceProtocolError(f"the device at {self.client.address} never ended a "
                                          f"table after {result.requests} requests")
            non_repeaters = scalars if first else []
            answer = await self._walk_request(non_repeaters, [cursor[c] for c in pending],
                                              min((len(result.columns[c]) for c in pending),
                                                  default=0), result)
            t = self._clock()
            if first:
                result.time = t
                for prefix, vb in zip(non_repeaters, answer, strict=False):
                    result.scalars[prefix] = vb
                first = False
                count = result.scalars.get(row_count[0]) if row_count else None
                if (count is not None and row_count is not None and count.oid == row_count[1]
                        and count.kind in (INTEGER, GAUGE) and isinstance(count.value, int)):
                    enough = count.value
            rows = answer[len(non_repeaters):]
            if pending and not rows:
                raise DeviceProtocolError(f"the device at {self.client.address} answered a table "
                                          "request without any values")
            finished: set[Oid] = set()
            for i, vb in enumerate(rows):
                column = pending[i % len(pending)]
                if column in finished:
                    continue
                if vb.kind == END_OF_MIB or vb.oid[:len(column)] != column \
                        or len(vb.oid) == len(column):
                    finished.add(column)
                    continue
                if vb.oid <= cursor[column]:
                    self._warn_once(f"order:{column}", "%s: the device returned OIDs out of order "
                                    "in column %s; using what it sent so far", self.name,
                                    _dotted(column))
                    finished.add(column)
                    continue
                cursor[column] = vb.oid
                result.columns[column][vb.oid[len(column):]] = (vb, t)
                if column in counted and 0 < enough <= len(result.columns[column]):
                    finished.add(column)
            pending = [c for c in pending if c not in finished]
            for probe in probes:
                got = result.scalars.get(probe)
                if (got is not None and got.kind != END_OF_MIB and got.oid[:len(probe)] == probe
                        and len(got.oid) > len(probe)):
                    result.columns[probe][got.oid[len(probe):]] = (got, result.time)
                    cursor[probe] = got.oid
                    pending.append(probe)
            probes = []
        return result

    async def _walk_request(self, scalars: list[Oid], oids: list[Oid], rows_seen: int,
                            result: Walk) -> list[VarBind]:
        if self.settings.version == "1":
            return await self._next_v1([*scalars, *oids], result)
        while True:
            reps = self._reps_cap
            if self._known_rows > 0 and rows_seen <= self._known_rows:
                # One row past the last known row shows the column's end in this answer.
                reps = min(reps, self._known_rows + 1 - rows_seen)
            result.requests += 1
            try:
                return await self.client.get_bulk(scalars, oids, max(1, reps) if oids else 0)
            except TooBig:
                if reps <= 1:
                    raise
                # Remembered: this agent cannot send more than this in one message.
                self._reps_cap = max(1, reps // 2)
                log.info("%s: the device found a %d-row answer too big; asking for %d rows",
                         self.name, reps, self._reps_cap)

    async def _next_v1(self, oids: list[Oid], result: Walk) -> list[VarBind]:
        """GETNEXT on v1, where the end of the MIB is an error naming one varbind."""
        answer: list[VarBind | None] = [None] * len(oids)
        remaining = list(range(len(oids)))
        while remaining:
            result.requests += 1
            try:
                got = await self.client.get_next([oids[i] for i in remaining])
            except NoSuchName as exc:
                if not 0 <= exc.index < len(remaining):
                    raise
                gone = remaining.pop(exc.index)
                answer[gone] = VarBind(oids[gone], END_OF_MIB)
                continue
            for i, vb in zip(remaining, got, strict=False):
                answer[i] = vb
            break
        return [vb if vb is not None else VarBind(oids[i], END_OF_MIB)
                for i, vb in enumerate(answer)]

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
                            ".0; reading it anyway", self.name, _dotted(oid), level=logging.INFO)
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
            if spec.role == "uptime" and isinstance(vb.value, int) \
                    and vb.kind in (TIMETICKS, INTEGER, GAUGE):
                rebooted = self._check_uptime(vb.value, walk.time)
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

    def _check_uptime(self, ticks: int, t: float) -> bool:
        rebooted = False
        if self._uptime is not None:
            prev_ticks, prev_t = self._uptime
            rebooted = uptime_went_backwards(prev_ticks, ticks, t - prev_t)
        self._uptime = (ticks, t)
        return rebooted

    # -- tables ------------------------------------------------------------------------------

    def _table_samples(self, tables: list[TableSpec], walk: Walk,
                       discovering: bool) -> list[Sample]:
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
        indices = self._indices(itf, walk)
        if not discovering and self._plan is not None and indices != set(self._plan.interfaces):
            log.info("%s: the device's interfaces changed; reading their names again", self.name)
            names_walk = await self.walk([], [cast(Oid, itf.column(r)) for r in self._static_roles()
                                              if self._has(r)])
            walk.columns.update(names_walk.columns)
            discovering = True
            self._rediscover = True     # the next poll also re-reads tables and routes
        if discovering:
            if self._has("discontinuity") and itf.column("discontinuity") in walk.scalars:
                column = cast(Oid, itf.column("discontinuity"))   # _has says it is set
                probe = walk.scalars.get(column)
                has = bool(walk.columns.get(column)) or (
                    probe is not None and probe.oid[:len(column)] == column
                    and len(probe.oid) > len(column))
                if has != self._has_discontinuity:
                    log.info("%s: %s ifCounterDiscontinuityTime", self.name,
                             "reading" if has else "the device does not offer")
                self._has_discontinuity = has
            self._plan = self._compile(itf, walk, indices, now, routes)
            if itf.count is not None:
                count = walk.scalars.get(scalar_request(itf.count))
                self._if_number_trusted = (count is not None and count.oid == itf.count + (0,)
                                           and count.value == len(indices))
        return self._samples(itf, walk)

    def _indices(self, itf: InterfaceSpec, walk: Walk) -> set[int]:
        """The ifIndex values present in the walked status columns."""
        indices: set[int] = set()
        for role in ("admin", "oper"):   # required in every profile
            for suffix in walk.columns.get(cast(Oid, itf.column(role)), {}):
                if len(suffix) == 1:
                    indices.add(suffix[0])
                else:
                    self._warn_once("index", "%s: ignoring an interface row with index %s",
                                    self.name, _dotted(suffix))
        return indices

    def _compile(self, itf: InterfaceSpec, walk: Walk, indices: set[int], now: float,
                 routes: list[Oid]) -> _Plan:
        texts = {role: self._texts(itf, walk, role) for role in ("descr", "name", "alias")}
        types = self._numbers(itf, walk, "type")
        selectors = self.settings.interfaces
        wan_selector = self.settings.wan_interface
        taken = {itf.wan_key} if (wan_selector or self.settings.wan_auto) else set()
        interfaces: dict[int, _Interface] = {}
        for index in sorted(indices):
            descr = texts["descr"].get(index, "")
            name = texts["name"].get(index, "") or descr or f"if{index}"
            key = metric_key(name) or f"if{index}"
            if key in taken:
                key = f"{key}_{index}"
            taken.add(key)
            interfaces[index] = _Interface(index, name, descr, texts["alias"].get(index, ""), key,
                                           types.get(index))

        def matches(selector: InterfaceSelector, x: _Interface) -> bool:
            return selector.matches(x.name, x.descr, x.key, alias=x.alias, if_type=x.if_type)

        choices = ", ".join(i.name for i in interfaces.values()) or "none"
        selected = [i for i, x in interfaces.items()
                    if not selectors or any(matches(s, x) for s in selectors)]
        for n, selector in enumerate(selectors):
            if not any(matches(selector, x) for x in interfaces.values()):
                self._warn_once(f"selector:{selector}", "%s: interfaces[%d] %r matches none of the "
                                "device's interfaces (%s)", self.name, n, str(selector), choices)
        wan, why, gone = None, "", None
        if wan_selector is not None:
            candidates = [i for i, x in interfaces.items() if matches(wan_selector, x)]
            if not candidates:
                self._warn_once("wan", "%s: wan_interface %r matches none of the device's "
                                "interfaces (%s)", self.name, str(wan_selector), choices)
            else:
                wan, why = candidates[0], f"wan_interface {str(wan_selector)!r}"
                if len(candidates) > 1:
                    self._warn_once("wan-many", "%s: wan_interface %r matches %d interfaces; "
                                    "using %s", self.name, str(wan_selector), len(candidates),
                                    interfaces[wan].name)
        elif self.settings.wan_auto:
            wan, why, gone = self._auto_wan(itf, walk, interfaces, routes)
        if wan is not None and wan not in selected:
            selected.append(wan)
        log.info("%s: %d interface(s), reporting %s%s", self.name, len(interfaces),
                 ", ".join(interfaces[i].name for i in sorted(selected)) or "none",
                 f"; WAN is {interfaces[wan].name} ({why})" if wan is not None else
                 (f"; WAN {gone} is gone" if gone else ""))
        return _Plan(interfaces, tuple(sorted(selected)), wan, now, gone)

    def _auto_wan(self, itf: InterfaceSpec, walk: Walk, interfaces: dict[int, _Interface],
                  routes: list[Oid]) -> tuple[int | None, str, str | None]:
        """(ifIndex, why) of the recognised WAN, and the name of a remembered WAN that vanished."""
        oper = {s[0]: vb.value
                for s, (vb, _) in walk.columns.get(cast(Oid, itf.column("oper")), {}).items()
                if len(s) == 1}

        def best(candidates: list[int]) -> int:
            return min(candidates, key=lambda i: (oper.get(i) != _STATUS_UP, i))

        found: tuple[int, str, int] | None = None
        for spec in itf.default_routes:
            vb = walk.scalars.get(spec.oid) if spec.oid in routes else None
            if (vb is None or vb.kind != INTEGER or vb.oid[:len(spec.oid)] != spec.oid
                    or vb.oid[len(spec.oid):][:len(spec.index_prefix)] != spec.index_prefix):
                continue
            x = interfaces.get(cast(int, vb.value))   # an INTEGER, checked above
            if x is not None and x.if_type != _LOOPBACK_TYPE:
                found = (x.index, f"it carries the default route ({_dotted(spec.oid)})",
                         _RANK_ROUTE)
                break
        if found is None:
            typed = [i for i, x in interfaces.items() if x.if_type in itf.wan_types]
            if typed:
                index = best(typed)
                found = (index, f"ifType {interfaces[index].if_type}", _RANK_TYPE)
        if found is None:
            for n, pattern in enumerate(itf.wan_names):
                named = [i for i, x in interfaces.items()
                         if re.search(pattern, x.name) or re.search(pattern, x.descr)]
                if named:
                    found = (best(named), f"its name matches {pattern!r}", _RANK_NAME + n)
                    break
        memory = self._wan_memory
        present = {x.name for x in interfaces.values()}
        if memory is not None and memory[0] not in present \
                and (found is None or found[2] > memory[1]):
            # A PPP or cellular interface disappears when its link drops: say the WAN is down
            # rather than quietly promoting a weaker candidate (or nothing) to if.wan.*.
            self._warn_once(f"wan-gone:{memory[0]}", "%s: the WAN %s is gone from the interface "
                            "table; reporting it down", self.name, memory[0])
            return None, "", memory[0]
        if found is None:
            self._warn_once("wan-auto", "%s: no interface recognisable as the WAN (%s); set "
                            "wan_interface", self.name,
                            ", ".join(x.name for x in interfaces.values()) or "none",
                            level=logging.INFO)
            return None, "", None
        self._wan_memory = (interfaces[found[0]].name, found[2])
        return found[0], found[1], None

    def _texts(self, itf: InterfaceSpec, walk: Walk, role: str) -> dict[int, str]:
        texts: dict[int, str] = {}
        column = itf.column(role)
        if column is None:
            return texts
        for suffix, (vb, _) in walk.columns.get(column, {}).items():
            if len(suffix) != 1:
                continue
            if vb.kind == STRING and isinstance(vb.value, bytes):
                texts[suffix[0]] = clean_text(vb.value)
            elif not vb.is_exception:
                self._warn_once(f"text:{role}", "%s: interface %s is %s, not a string; ignoring it",
                                self.name, role, vb.kind)
        return texts

    def _numbers(self, itf: InterfaceSpec, walk: Walk, role: str) -> dict[int, int]:
        column = itf.column(role)
        if column is None:
            return {}
        return {s[0]: vb.value for s, (vb, _) in walk.columns.get(column, {}).items()
                if len(s) == 1 and vb.kind in (INTEGER, GAUGE) and isinstance(vb.value, int)}

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
        oper_now: dict[int, object] = {i: v[0].value for i, v in rows["oper"].items()}
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
                    samples.append(Sample(prefix + metric, status == _STATUS_UP))
            speed = self._speed(speed_rows, index, prefix + itf.metric("speed"), high_speed_read)
            if speed is not None:
                samples.append(Sample(prefix + itf.metric("speed"), float(speed), UNIT_BPS))
            if self.settings.version != "1" and self._has("in64"):
                missing_hc |= not (_is_counter(rows["in64"].get(index))
                                   and _is_counter(rows["out64"].get(index)))
            disc_entry = rows["discontinuity"].get(index)
            discontinuity = (disc_entry[0].value if disc_entry and disc_entry[0].kind == TIMETICKS
                             and isinstance(disc_entry[0].value, int) else None)
            for direction, role in (("in", "in_rate"), ("out", "out_rate")):
                metric = prefix + itf.metric(role)
                counter = self._counter(rows, index, direction, x.key, metric, discontinuity)
                if counter is None:
                    continue
                rate = self._rate((index, direction), counter, speed, metric, x.name)
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
        speed = entry[0].value if entry and entry[0].kind in (GAUGE, INTEGER) else None
        if speed is not None and speed != _SPEED_SATURATED:
            return cast(int, speed)   # a GAUGE or INTEGER
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
                 discontinuity: int | None) -> _Counter | None:
        """The interface's best octet counter: 64-bit, else 32-bit."""
        for column in (f"{direction}64", f"{direction}32"):
            entry = rows[column].get(index)
            if entry is None:
                continue
            vb, t = entry
            if _is_counter(entry):
                # _is_counter: a counter with an int value
                return _Counter(key, column, cast(int, vb.value),
                                64 if vb.kind == COUNTER64 else 32, t, discontinuity)
            if not vb.is_exception:
                self._quirk_vb(metric, vb)
        if self._need_32bit or self.settings.version == "1":
            self._quirk_vb(metric, None)
        # else: the 32-bit fallback is asked for from the next poll on.
        return None

    def _rate(self, slot: tuple[int, str], cur: _Counter, link_bps: int | None,
              metric: str, name: str) -> float | None:
        prev = self._counters.get(slot)
        self._counters[slot] = cur
        if prev is None or prev.key != cur.key or prev.column != cur.column:
            return None
        if prev.discontinuity != cur.discontinuity and None not in (prev.discontinuity,
                                                                     cur.discontinuity):
            # RFC 2863: the counters of this interface may have been reset or re-created since
            # the last poll (a PPP session coming back, a module re-inserted): no rate.
            self._warn_once(f"discontinuity:{slot[0]}", "%s: %s counters were re-created "
                            "(ifCounterDiscontinuityTime changed); no rate this poll", self.name,
                            name, level=logging.INFO)
            return None
        rate = counter_rate(prev.value, cur.value, cur.t - prev.t, bits=cur.bits,
                            link_bps=float(link_bps) if link_bps else None)
        if rate is None:
            self._warn_once(f"reset:{metric}", "%s: %s counter went from %d to %d, which is no "
                            "wrap the link could carry: counter reset, no rate this poll",
                            self.name, metric, prev.value, cur.value, level=logging.INFO)
        return rate

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

    def _warn_once(self, key: str, message: str, *args: Any, exc_info: bool = False,
                   level: int = logging.WARNING) -> None:
        """Log a device quirk at ``level`` the first time, then at DEBUG, so it cannot flood."""
        if key in self._warned:
            level = logging.DEBUG
        self._warned.add(key)
        log.log(level, message, *args, exc_info=exc_info)


def _is_counter(entry: tuple[VarBind, float] | None) -> bool:
    if entry is None:
        return False
    vb = entry[0]
    return vb.kind in (COUNTER64, COUNTER32, GAUGE) and isinstance(vb.value, int) and vb.value >= 0


def _dotted(oid: Oid) -> str:
    return ".".join(map(str, oid))
