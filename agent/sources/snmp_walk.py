"""The multi-column SNMP walk, over an injected client (Telegraf's ``internal/snmp/table.go``).

    Walker.walk(scalars, columns) -> one request carries every scalar (GETNEXT semantics) and
    every unfinished column -> GETBULK (v2c/v3) or GETNEXT rows (v1) until each column ends
    -> Walk: scalars by request OID, column rows by index suffix, with the time they arrived

Unlike Telegraf (one walk per field) every request asks for all columns at once; ``max-
repetitions`` is sized to the rows seen last time (``known_rows``) and halved for good when an
agent answers tooBig. Knows nothing of profiles or metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from agent.errors import DeviceProtocolError
from agent.i18n import text
from agent.logs import OnceLog
from agent.sources.snmp_client import END_OF_MIB, GAUGE, INTEGER, NoSuchName, Oid, TooBig, VarBind

log = logging.getLogger(__name__)

# A walk is bounded so an agent that never ends a column cannot keep a poll busy forever.
MAX_REQUESTS_PER_WALK = 256
MAX_REPETITIONS_LIMIT = 1000
_MAX_SUBID = 2**32 - 1


class WalkClient(Protocol):
    """What the walk needs of ``SnmpClient`` (tests inject a scripted agent)."""

    @property
    def address(self) -> str: ...

    async def get_next(self, oids: Sequence[Oid]) -> list[VarBind]: ...

    async def get_bulk(self, non_repeaters: Sequence[Oid], repeaters: Sequence[Oid],
                       max_repetitions: int) -> list[VarBind]: ...


@dataclass
class Walk:
    """What one multi-column walk returned, with the monotonic time each value arrived."""

    scalars: dict[Oid, VarBind] = field(default_factory=dict)
    columns: dict[Oid, dict[Oid, tuple[VarBind, float]]] = field(default_factory=dict)
    requests: int = 0
    time: float = 0.0       # when the first answer (the one with the scalars) arrived


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


def dotted(oid: Iterable[int]) -> str:
    return ".".join(map(str, oid))


class Walker:
    """Walks one agent. ``known_rows`` (the longest table of the last poll) sizes GETBULK."""

    def __init__(self, client: WalkClient, *, version: str, device: str, max_repetitions: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.version = version
        self.device = device
        self.known_rows = 0
        self._reps_cap = min(max_repetitions, MAX_REPETITIONS_LIMIT)
        self._clock = clock
        self._log = OnceLog(log)

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
                raise DeviceProtocolError(text("src.snmp.endless_table",
                                               where=self.client.address, n=result.requests))
            non_repeaters = scalars if first else []
            answer = await self._request(non_repeaters, [cursor[c] for c in pending],
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
                raise DeviceProtocolError(text("src.snmp.empty_table_answer",
                                               where=self.client.address))
            finished: set[Oid] = set()
            for i, vb in enumerate(rows):
                column = pending[i % len(pending)]
                if column in finished:
                    continue
                if (vb.kind == END_OF_MIB or vb.oid[:len(column)] != column
                        or len(vb.oid) == len(column)):
                    finished.add(column)
                    continue
                if vb.oid <= cursor[column]:
                    self._log.problem(f"order:{column}", "%s: the device returned OIDs out of "
                                      "order in column %s; using what it sent so far",
                                      self.device, dotted(column))
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

    async def _request(self, scalars: list[Oid], oids: list[Oid], rows_seen: int,
                       result: Walk) -> list[VarBind]:
        if self.version == "1":
            return await self._next_v1([*scalars, *oids], result)
        while True:
            reps = self._reps_cap
            if self.known_rows > 0 and rows_seen <= self.known_rows:
                # One row past the last known row shows the column's end in this answer.
                reps = min(reps, self.known_rows + 1 - rows_seen)
            result.requests += 1
            try:
                return await self.client.get_bulk(scalars, oids, max(1, reps) if oids else 0)
            except TooBig:
                if reps <= 1:
                    raise
                # Remembered: this agent cannot send more than this in one message.
                self._reps_cap = max(1, reps // 2)
                log.info("%s: the device found a %d-row answer too big; asking for %d rows",
                         self.device, reps, self._reps_cap)

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
