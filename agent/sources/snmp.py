"""SNMP source: the router's uptime and name, and status and traffic of its interfaces.

One poll:

    plan (IF-MIB columns to walk, learned from earlier polls)
      -> one multi-column walk: GETBULK (v2c/v3) or GETNEXT (v1) through ``SnmpClient``
      -> rows by ifIndex -> names and selection (compiled on discovery polls only)
      -> samples; rates from the counters of the previous poll

Requests are kept few: every request carries all columns at once, and ``max-repetitions`` is sized
to the number of interfaces seen last time, so a router that answers a whole table in one message
needs one request per poll. Names (ifDescr, ifName, ifAlias) are only walked on discovery polls:
the first one, after a reboot, when the set of interfaces changed, and hourly. Against net-snmp,
which caps a GETBULK answer at 100 values, a 48-port router takes 3 requests per poll and 4 on a
discovery poll (tests/test_snmp_source.py checks both). SNMPv1 has no GETBULK: one GETNEXT per
interface row.

Metrics (units in ``Sample.unit``)::

    system.uptime_s   s       sysUpTime (the SNMP agent's uptime)
    system.name               sysName
    system.rebooted           True on the poll that saw sysUpTime go backwards
    if.<key>.oper_up          ifOperStatus == up
    if.<key>.admin_up         ifAdminStatus == up
    if.<key>.speed_bps  bit/s ifSpeed, or ifHighSpeed * 1e6 when ifSpeed is saturated
    if.<key>.in_bps     bit/s from ifHCInOctets (ifInOctets when the 64-bit counter is missing)
    if.<key>.out_bps    bit/s from ifHCOutOctets (ifOutOctets likewise)
    if.wan.*                  ``wan_interface`` under a name that is the same at every clinic
                              (instead of its own key), plus if.wan.name, its real name

``<key>`` is ifName (else ifDescr, else ``if<ifIndex>``) lowercased, reduced to [a-z0-9_.-];
a key already taken gets ``_<ifIndex>`` appended. A speed of 0 means the agent does not know.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from ..config import DeviceConfig
from ..config.snmp import InterfaceSelector, SnmpSettings
from ..errors import DeviceProtocolError, SourceError
from ..readings import Sample
from .snmp_client import (COUNTER32, COUNTER64, END_OF_MIB, GAUGE, INTEGER, STRING, TIMETICKS,
                          NoSuchName, Oid, SnmpClient, TooBig, VarBind)

log = logging.getLogger(__name__)

SYS_UPTIME: Oid = (1, 3, 6, 1, 2, 1, 1, 3)
SYS_NAME: Oid = (1, 3, 6, 1, 2, 1, 1, 5)
IF_NUMBER: Oid = (1, 3, 6, 1, 2, 1, 2, 1)
_IF_TABLE: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1)
_IF_X_TABLE: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)

# The IF-MIB columns this source can ask for, by short name.
COLUMNS: dict[str, Oid] = {
    "descr": _IF_TABLE + (2,),        # ifDescr
    "speed": _IF_TABLE + (5,),        # ifSpeed, bit/s, saturates at 2^32-1
    "admin": _IF_TABLE + (7,),        # ifAdminStatus
    "oper": _IF_TABLE + (8,),         # ifOperStatus
    "in32": _IF_TABLE + (10,),        # ifInOctets
    "out32": _IF_TABLE + (16,),       # ifOutOctets
    "name": _IF_X_TABLE + (1,),       # ifName
    "in64": _IF_X_TABLE + (6,),       # ifHCInOctets
    "out64": _IF_X_TABLE + (10,),     # ifHCOutOctets
    "high_speed": _IF_X_TABLE + (15,),  # ifHighSpeed, Mbit/s
    "alias": _IF_X_TABLE + (18,),     # ifAlias, the label the technician gave the port
}
_NAME_COLUMNS = ("descr", "name")
_STATUS_UP = 1
_SPEED_SATURATED = 2**32 - 1
_TICKS_MODULUS = 2**32

REDISCOVER_AFTER_S = 3600.0
# A walk is bounded so an agent that never ends a column cannot keep a poll busy forever.
MAX_REQUESTS_PER_WALK = 256
MAX_REPETITIONS_LIMIT = 1000
# Faster than any link a clinic could have; a counter "rate" above it is a counter reset.
ABSOLUTE_MAX_BPS = 1e12
# A wrap is believed only when the rate it implies fits the link (with slack for wrong speeds).
WRAP_SPEED_SLACK = 1.5

UNIT_BPS = "bit/s"
WAN_KEY = "wan"


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


def clean_text(raw: bytes) -> str:
    """Decode an SNMP string, dropping the NUL padding some agents add."""
    return raw.decode("utf-8", errors="replace").replace("\x00", "").strip()


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


@dataclass(frozen=True)
class _Plan:
    """Compiled on a discovery poll: which interfaces to report and under which key."""

    interfaces: dict[int, _Interface]
    selected: tuple[int, ...]
    wan: int | None
    compiled_at: float


@dataclass(frozen=True)
class _Counter:
    key: str          # interface key it belonged to; a renamed index starts over
    column: str       # "in64", "in32", ...: rates only between readings of the same counter
    value: int
    bits: int
    t: float


class SnmpSource:
    """Polls one SNMP agent (usually the clinic router). See the module docstring for metrics."""

    def __init__(self, device: DeviceConfig, *, client: SnmpClient | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        settings: SnmpSettings = device.settings
        self.name = device.name
        self.device = device
        self.settings = settings
        self.client = client or SnmpClient(settings, timeout_s=device.timeout_s, device=device.name)
        self._clock = clock
        self._lock = asyncio.Lock()
        self._plan: _Plan | None = None
        self._rediscover = True
        self._known_rows = 0
        self._reps_cap = min(settings.max_repetitions, MAX_REPETITIONS_LIMIT)
        self._uptime: tuple[int, float] | None = None
        self._counters: dict[tuple[int, str], _Counter] = {}
        self._need_32bit = settings.version == "1"
        self._need_high_speed = False
        self._warned: set[str] = set()
        self.last_poll_requests = 0

    async def read(self) -> list[Sample]:
        """Poll the agent once. Raises DeviceTimeout, DeviceRefused or DeviceProtocolError."""
        async with self._lock:
            before = self.client.requests
            try:
                return await self._poll()
            finally:
                self.last_poll_requests = self.client.requests - before
                log.debug("%s: poll used %d SNMP request(s)", self.name, self.last_poll_requests)

    async def close(self) -> None:
        """Close the SNMP socket."""
        await self.client.close()

    # -- one poll ----------------------------------------------------------------------------

    async def _poll(self) -> list[Sample]:
        now = self._clock()
        discovering = (self._plan is None or self._rediscover
                       or now - self._plan.compiled_at >= REDISCOVER_AFTER_S)
        data_columns = self._data_columns()
        columns = data_columns + (self._name_columns() if discovering else [])
        # On discovery polls, ifNumber ends the walk without a request just to see the end of
        # the table; a lying ifNumber only delays the extra interfaces by one poll, because
        # the next poll walks the status columns to their real end and rediscovers.
        walk = await self.walk([SYS_UPTIME, SYS_NAME, IF_NUMBER], [COLUMNS[c] for c in columns],
                               row_count=IF_NUMBER if discovering else None)
        try:
            indices = self._indices(walk)
            if not discovering and self._plan is not None and indices != set(self._plan.interfaces):
                log.info("%s: the router's interfaces changed; reading their names again", self.name)
                names_walk = await self.walk([], [COLUMNS[c] for c in self._name_columns()])
                walk.columns.update(names_walk.columns)
                discovering = True
            if discovering:
                self._plan = self._compile(walk, indices, now)
                self._rediscover = False
            self._known_rows = max((len(rows) for rows in walk.columns.values()), default=0)
            return self._samples(walk)
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - garbage from a device must not stop the poller
            self._warn_once("decode", "%s: could not make sense of the router's answer",
                            self.name, exc_info=True)
            raise DeviceProtocolError(f"could not decode the answer of {self.client.address}: "
                                      f"{exc.__class__.__name__}: {exc}") from exc

    def _data_columns(self) -> list[str]:
        columns = ["admin", "oper", "speed"]
        if self.settings.version != "1":
            columns += ["in64", "out64"]
        if self._need_32bit:
            columns += ["in32", "out32"]
        if self._need_high_speed:
            columns.append("high_speed")
        return columns

    def _name_columns(self) -> list[str]:
        # ifAlias only matters when the technician selects interfaces by their label.
        needs_alias = bool(self.settings.interfaces or self.settings.wan_interface)
        return list(_NAME_COLUMNS) + (["alias"] if needs_alias else [])

    # -- the walk ----------------------------------------------------------------------------

    async def walk(self, scalars: list[Oid], columns: list[Oid], *,
                   row_count: Oid | None = None) -> Walk:
        """Read the scalars (each as GETNEXT of its prefix) and whole columns, all at once.

        Each request asks every unfinished column for its next rows; a column is finished when
        the agent answers with an OID outside it, or, if ``row_count`` names one of the scalars,
        once it has that many rows. v1 has no GETBULK and uses GETNEXT rows.
        """
        result = Walk(columns={c: {} for c in columns})
        enough = 0
        pending = list(columns)
        cursor: dict[Oid, Oid] = {c: c for c in columns}
        first = True
        while first or pending:
            if result.requests >= MAX_REQUESTS_PER_WALK:
                raise DeviceProtocolError(f"the router at {self.client.address} never ended its "
                                          f"interface table after {result.requests} requests")
            non_repeaters = scalars if first else []
            answer = await self._walk_request(non_repeaters, [cursor[c] for c in pending],
                                              max(len(r) for r in result.columns.values())
                                              if result.columns else 0, result)
            t = self._clock()
            if first:
                result.time = t
                for prefix, vb in zip(non_repeaters, answer):
                    result.scalars[prefix] = vb
                first = False
                count = _scalar(result.scalars.get(row_count), row_count) if row_count else None
                if count is not None and count.kind in (INTEGER, GAUGE) and isinstance(count.value, int):
                    enough = count.value
            rows = answer[len(non_repeaters):]
            if pending and not rows:
                raise DeviceProtocolError(f"the router at {self.client.address} answered a table "
                                          "request without any values")
            finished: set[Oid] = set()
            for i, vb in enumerate(rows):
                column = pending[i % len(pending)]
                if column in finished:
                    continue
                if vb.kind == END_OF_MIB or vb.oid[:len(column)] != column or len(vb.oid) == len(column):
                    finished.add(column)
                    continue
                if vb.oid <= cursor[column]:
                    self._warn_once(f"order:{column}", "%s: the router returned OIDs out of order "
                                    "in column %s; using what it sent so far", self.name,
                                    _dotted(column))
                    finished.add(column)
                    continue
                cursor[column] = vb.oid
                result.columns[column][vb.oid[len(column):]] = (vb, t)
                if 0 < enough <= len(result.columns[column]):
                    finished.add(column)
            pending = [c for c in pending if c not in finished]
        return result

    async def _walk_request(self, scalars: list[Oid], oids: list[Oid], rows_seen: int,
                            result: Walk) -> list[VarBind]:
        if self.settings.version == "1":
            return await self._next_v1([*scalars, *oids], result)
        while True:
            reps = self._reps_cap
            if 0 < self._known_rows and rows_seen <= self._known_rows:
                # One row past the last known interface shows the column's end in this answer.
                reps = min(reps, self._known_rows + 1 - rows_seen)
            result.requests += 1
            try:
                return await self.client.get_bulk(scalars, oids, max(1, reps))
            except TooBig:
                if reps <= 1:
                    raise
                # Remembered: this agent cannot send more than this in one message.
                self._reps_cap = max(1, reps // 2)
                log.info("%s: the router found a %d-row answer too big; asking for %d rows",
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
            for i, vb in zip(remaining, got):
                answer[i] = vb
            break
        return [vb if vb is not None else VarBind(oids[i], END_OF_MIB) for i, vb in enumerate(answer)]

    # -- discovery ---------------------------------------------------------------------------

    def _indices(self, walk: Walk) -> set[int]:
        """The ifIndex values present in the walked status columns."""
        indices: set[int] = set()
        for column in (COLUMNS["admin"], COLUMNS["oper"]):
            for suffix in walk.columns.get(column, {}):
                if len(suffix) == 1:
                    indices.add(suffix[0])
                else:
                    self._warn_once("index", "%s: ignoring an interface row with index %s",
                                    self.name, _dotted(suffix))
        return indices

    def _compile(self, walk: Walk, indices: set[int], now: float) -> _Plan:
        texts = {c: self._texts(walk, c) for c in ("descr", "name", "alias")}
        selectors = self.settings.interfaces
        wan_selector = self.settings.wan_interface
        taken = {WAN_KEY} if wan_selector else set()
        interfaces: dict[int, _Interface] = {}
        for index in sorted(indices):
            descr = texts["descr"].get(index, "")
            name = texts["name"].get(index, "") or descr or f"if{index}"
            key = metric_key(name) or f"if{index}"
            if key in taken:
                key = f"{key}_{index}"
            taken.add(key)
            interfaces[index] = _Interface(index, name, descr, texts["alias"].get(index, ""), key)

        def matches(selector: InterfaceSelector, itf: _Interface) -> bool:
            return selector.matches(itf.name, itf.descr, itf.alias, itf.key)

        selected = [i for i, itf in interfaces.items()
                    if not selectors or any(matches(s, itf) for s in selectors)]
        for n, selector in enumerate(selectors):
            if not any(matches(selector, itf) for itf in interfaces.values()):
                self._warn_once(f"selector:{selector}", "%s: interfaces[%d] %r matches none of the "
                                "router's interfaces (%s)", self.name, n, str(selector),
                                ", ".join(i.name for i in interfaces.values()) or "none")
        wan = None
        if wan_selector is not None:
            candidates = [i for i, itf in interfaces.items() if matches(wan_selector, itf)]
            if not candidates:
                self._warn_once("wan", "%s: wan_interface %r matches none of the router's "
                                "interfaces (%s)", self.name, str(wan_selector),
                                ", ".join(i.name for i in interfaces.values()) or "none")
            else:
                wan = candidates[0]
                if len(candidates) > 1:
                    self._warn_once("wan-many", "%s: wan_interface %r matches %d interfaces; "
                                    "using %s", self.name, str(wan_selector), len(candidates),
                                    interfaces[wan].name)
        if wan is not None and wan not in selected:
            selected.append(wan)
        log.info("%s: %d interface(s), reporting %s%s", self.name, len(interfaces),
                 ", ".join(interfaces[i].name for i in sorted(selected)) or "none",
                 f"; WAN is {interfaces[wan].name}" if wan is not None else "")
        return _Plan(interfaces, tuple(sorted(selected)), wan, now)

    def _texts(self, walk: Walk, column_name: str) -> dict[int, str]:
        texts: dict[int, str] = {}
        for suffix, (vb, _) in walk.columns.get(COLUMNS[column_name], {}).items():
            if len(suffix) != 1:
                continue
            if vb.kind == STRING and isinstance(vb.value, bytes):
                texts[suffix[0]] = clean_text(vb.value)
            elif not vb.is_exception:
                self._warn_once(f"text:{column_name}", "%s: if%s is %s, not a string; ignoring it",
                                self.name, column_name.capitalize(), vb.kind)
        return texts

    # -- samples -----------------------------------------------------------------------------

    def _samples(self, walk: Walk) -> list[Sample]:
        samples: list[Sample] = []
        rebooted = self._system_samples(walk, samples)
        plan = self._plan
        assert plan is not None
        if rebooted:
            self._counters.clear()
            self._rediscover = True
        rows = {name: {s[0]: v for s, v in walk.columns.get(oid, {}).items() if len(s) == 1}
                for name, oid in COLUMNS.items()}
        missing_hc = False
        for index in plan.selected:
            itf = plan.interfaces[index]
            if index not in rows["admin"] and index not in rows["oper"]:
                continue      # no status row this poll: nothing trustworthy to report
            key = WAN_KEY if index == plan.wan else itf.key
            prefix = f"if.{key}."
            if index == plan.wan:
                samples.append(Sample(prefix + "name", itf.name))
            for column, metric in (("oper", "oper_up"), ("admin", "admin_up")):
                status = self._number(rows[column].get(index), prefix + metric, (INTEGER,))
                if status is not None:
                    samples.append(Sample(prefix + metric, status == _STATUS_UP))
            speed = self._speed(rows, index, prefix + "speed_bps")
            if speed is not None:
                samples.append(Sample(prefix + "speed_bps", float(speed), UNIT_BPS))
            if self.settings.version != "1":
                missing_hc |= not (_is_counter(rows["in64"].get(index))
                                   and _is_counter(rows["out64"].get(index)))
            for direction in ("in", "out"):
                metric = prefix + f"{direction}_bps"
                counter = self._counter(rows, index, direction, itf.key, metric)
                if counter is None:
                    continue
                rate = self._rate((index, direction), counter, speed, metric)
                if rate is not None:
                    # A tenth of a bit/s is noise; fewer digits are fewer bytes over the satellite.
                    samples.append(Sample(metric, round(rate, 1), UNIT_BPS))
        if self.settings.version != "1" and missing_hc != self._need_32bit:
            if missing_hc:
                log.info("%s: some interfaces lack 64-bit counters; reading 32-bit ones too",
                         self.name)
            self._need_32bit = missing_hc
        return samples

    def _system_samples(self, walk: Walk, samples: list[Sample]) -> bool:
        rebooted = False
        ticks = self._number(_scalar(walk.scalars.get(SYS_UPTIME), SYS_UPTIME), "system.uptime_s",
                             (TIMETICKS, INTEGER, GAUGE))
        if ticks is not None:
            samples.append(Sample("system.uptime_s", ticks / 100, "s"))
            if self._uptime is not None:
                prev_ticks, prev_t = self._uptime
                rebooted = uptime_went_backwards(prev_ticks, ticks, walk.time - prev_t)
            self._uptime = (ticks, walk.time)
        name = _scalar(walk.scalars.get(SYS_NAME), SYS_NAME)
        if name is not None and name.kind == STRING and isinstance(name.value, bytes):
            samples.append(Sample("system.name", clean_text(name.value)))
        else:
            self._quirk("system.name", name)
        if rebooted:
            log.warning("%s: sysUpTime went backwards: the router (or its SNMP agent) restarted; "
                        "no rates this poll", self.name)
            samples.append(Sample("system.rebooted", True))
        return rebooted

    def _speed(self, rows: dict[str, dict[int, tuple[VarBind, float]]], index: int,
               metric: str) -> int | None:
        entry = rows["speed"].get(index)
        speed = entry[0].value if entry and entry[0].kind in (GAUGE, INTEGER) else None
        if speed is not None and speed != _SPEED_SATURATED:
            return speed
        high = rows["high_speed"].get(index)
        if high is not None and high[0].kind in (GAUGE, INTEGER):
            return high[0].value * 1_000_000
        if speed == _SPEED_SATURATED:
            if not self._need_high_speed:
                log.info("%s: an interface is faster than ifSpeed can say; reading ifHighSpeed "
                         "from the next poll", self.name)
            self._need_high_speed = True
            return None
        self._quirk(metric, entry[0] if entry else None)
        return None

    def _counter(self, rows, index: int, direction: str, key: str, metric: str) -> _Counter | None:
        """The interface's best octet counter: 64-bit, else 32-bit."""
        for column in (f"{direction}64", f"{direction}32"):
            entry = rows[column].get(index)
            if entry is None:
                continue
            vb, t = entry
            if _is_counter(entry):
                return _Counter(key, column, vb.value, 64 if vb.kind == COUNTER64 else 32, t)
            if not vb.is_exception:
                self._quirk(metric, vb)
        if self._need_32bit or self.settings.version == "1":
            self._quirk(metric, None)
        # else: the 32-bit fallback is asked for from the next poll on.
        return None

    def _rate(self, slot: tuple[int, str], cur: _Counter, link_bps: int | None,
              metric: str) -> float | None:
        prev = self._counters.get(slot)
        self._counters[slot] = cur
        if prev is None or prev.key != cur.key or prev.column != cur.column:
            return None
        rate = counter_rate(prev.value, cur.value, cur.t - prev.t, bits=cur.bits,
                            link_bps=float(link_bps) if link_bps else None)
        if rate is None:
            self._warn_once(f"reset:{metric}", "%s: %s counter went from %d to %d, which is no "
                            "wrap the link could carry: counter reset, no rate this poll",
                            self.name, metric, prev.value, cur.value, level=logging.INFO)
        return rate

    # -- quirks ------------------------------------------------------------------------------

    def _number(self, entry, metric: str, kinds: Iterable[str]) -> int | None:
        """The integer in ``entry`` (a VarBind or (VarBind, t)), or None after noting the quirk."""
        vb = entry[0] if isinstance(entry, tuple) else entry
        if vb is not None and vb.kind in kinds and isinstance(vb.value, int):
            return vb.value
        self._quirk(metric, vb)
        return None

    def _quirk(self, metric: str, vb: VarBind | None) -> None:
        what = "nothing" if vb is None else (vb.kind if vb.value is None else f"{vb.kind} {vb.value!r}")
        self._warn_once(metric, "%s: skipping %s: the router sent %s", self.name, metric, what)

    def _warn_once(self, key: str, message: str, *args, exc_info: bool = False,
                   level: int = logging.WARNING) -> None:
        """Log a device quirk at ``level`` the first time, then at DEBUG, so it cannot flood."""
        if key in self._warned:
            level = logging.DEBUG
        self._warned.add(key)
        log.log(level, message, *args, exc_info=exc_info)


def _scalar(vb: VarBind | None, prefix: Oid) -> VarBind | None:
    """A non-repeater answer is the OID after ``prefix``; anything but ``prefix.0`` is missing."""
    return vb if vb is not None and vb.oid == prefix + (0,) else None


def _is_counter(entry: tuple[VarBind, float] | None) -> bool:
    if entry is None:
        return False
    vb = entry[0]
    return vb.kind in (COUNTER64, COUNTER32, GAUGE) and isinstance(vb.value, int) and vb.value >= 0


def _dotted(oid: Oid) -> str:
    return ".".join(map(str, oid))
