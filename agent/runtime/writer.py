"""The one task that changes the store: polls in, acknowledgements in, one transaction out.

    DevicePoller --submit(poll)--+
    AgentMonitor --submit(poll)--+--> StoreWriter --write(readings, acked)--> ReadingStore
    Forwarder ----ack(ranges)----+         |                                 (one fsync)
    Forwarder ----set_aside------'         '--> on_committed(): the forwarder sends live data

Why one writer: pollers used to commit concurrently, each adding the polls held from a failing
disk to its own; a poll could then vanish uncounted or be stored twice. Here polls queue in
order and only this task takes them out.

Why it lingers: devices polled on the same tick finish within a second of each other, and the
broker's acknowledgements of the previous tick arrive meanwhile. Writing them together costs one
transaction and one fsync instead of one per poll and one per acknowledgement: the flash of a
clinic PC lasts longer (docs/benchmarks.md: bytes written per minute). A poll waits at most
``linger_s`` in memory before it is on disk.

When the disk refuses a write (full, read-only, I/O error), the polls stay held in memory, in
order, bounded at ``hold_max`` readings: beyond that the oldest are dropped and counted
(``dropped_in_memory``); the write is retried with a backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.errors import StoreError
from agent.readings import Reading
from agent.runtime.supervisor import Heartbeat
from agent.store.outbox import AsyncStore, EventAcks

if TYPE_CHECKING:
    from agent.config.events import EventsConfig

log = logging.getLogger(__name__)

LINGER_S = 1.0                  # a poll waits at most this long before its transaction
# Acknowledgements wait for the next poll's transaction (nothing new to keep safe meanwhile):
# deleting them in a transaction of their own would double the transactions, and the writes.
ACK_LINGER_S = 30.0
ACK_FLUSH_ROWS = 20_000         # ...unless a backlog drain piles up this many acknowledged rows
HOLD_MAX = 20_000               # readings held in memory while the disk refuses writes
RETRY_INITIAL_S = 1.0
RETRY_MAX_S = 30.0
IDLE_BEAT_S = 10.0              # an idle writer still proves it is alive this often
EVENT_RETRY_S = 1.0             # an events tick the disk refused is tried again after this


@dataclass(frozen=True)
class WriterStats:
    held: int                   # readings held in memory because the disk refused them
    dropped_in_memory: int      # readings lost because the disk refused writes for too long
    failing: bool               # the last write was refused
    pending_acks: int           # acknowledged readings not yet deleted from the file
    transactions: int


class StoreWriter:
    """Single writer of an ``AsyncStore``. Run ``await writer.run(heartbeat)`` as a task."""

    def __init__(self, store: AsyncStore, *, on_committed: Callable[[], None] = lambda: None,
                 on_events: Callable[[], None] = lambda: None,
                 linger_s: float = LINGER_S, ack_linger_s: float = ACK_LINGER_S,
                 hold_max: int = HOLD_MAX, retry_initial_s: float = RETRY_INITIAL_S) -> None:
        self.store = store
        self.on_committed = on_committed
        self.on_events = on_events
        self._event_acks: list[int] = []
        self._summary_acks: list[str] = []
        self._next_tick = 0.0
        self.linger_s = linger_s
        self.ack_linger_s = ack_linger_s
        self.hold_max = hold_max
        self._polls: deque[list[Reading]] = deque()
        self._held = 0                       # readings in _polls
        self._acks: list[tuple[int, int]] = []
        self._ack_rows = 0
        self._asides: list[tuple[list[tuple[int, int]], str, asyncio.Future[int]]] = []
        self._maintain: list[asyncio.Future[int]] = []
        self._jobs: list[tuple[Callable[[], Awaitable[Any]], asyncio.Future[int]]] = []
        self._poll_due: float | None = None     # when the queued polls must be written
        self._first_ack_at: float | None = None
        self._wake = asyncio.Event()
        self._failing = False
        self._retry_at = 0.0
        self._retry_initial_s = retry_initial_s
        self._retry_s = retry_initial_s
        self.dropped_in_memory = 0
        self.transactions = 0

    # -- what other tasks hand in (never blocks, never raises) ---------------------------------

    def submit(self, readings: list[Reading], *, linger_s: float | None = None) -> None:
        """Queue one poll; it is written within ``linger_s`` (default: the writer's; or held
        while the disk refuses). The agent's own health readings pass a long linger: they join
        the next device poll's transaction instead of costing one of their own."""
        if not readings:
            return
        self._polls.append(readings)
        self._held += len(readings)
        self._trim()
        due = time.monotonic() + (self.linger_s if linger_s is None else linger_s)
        self._poll_due = due if self._poll_due is None else min(self._poll_due, due)
        self._wake.set()

    def _trim(self) -> None:
        """Keep at most ``hold_max`` readings: drop (and count) the oldest queued ones. Polls
        in the transaction under way are not touched; they are trimmed if it fails."""
        overflow = self._held - self.hold_max
        while overflow > 0 and self._polls:
            oldest = self._polls[0]
            cut = min(len(oldest), overflow)
            if cut == len(oldest):
                self._polls.popleft()
            else:
                self._polls[0] = oldest[cut:]
            self._held -= cut
            overflow -= cut
            self.dropped_in_memory += cut

    def ack(self, ranges: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> None:
        """The broker has these seq ranges: delete them with the next transaction."""
        if not ranges:
            return
        self._acks.extend(ranges)
        self._ack_rows += sum(hi - lo + 1 for lo, hi in ranges)
        if self._first_ack_at is None:
            self._first_ack_at = time.monotonic()
        self._wake.set()

    def ack_events(self, ids: Sequence[int], days: Sequence[str] = ()) -> None:
        """The broker has these events (and daily summaries): recorded with the next write."""
        self._event_acks.extend(ids)
        self._summary_acks.extend(days)
        if self._first_ack_at is None:
            self._first_ack_at = time.monotonic()
        self._wake.set()

    async def set_aside(self, ranges: tuple[tuple[int, int], ...], why: str) -> int:
        """Move readings the broker will never take into the ``rejected`` table (done at once)."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._asides.append((list(ranges), why, fut))
        self._wake.set()
        return await fut

    async def reconfigure_events(self, cfg: EventsConfig, devices: list[str]) -> None:
        """New event rules; the conditions of removed devices are closed (in the writer's turn)."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._jobs.append((lambda: self.store.reconfigure_events(cfg, devices), fut))
        self._wake.set()
        await fut

    async def maintain(self) -> int:
        """Apply the size and age caps now; returns the readings dropped."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._maintain.append(fut)
        self._wake.set()
        return await fut

    def stats(self) -> WriterStats:
        # Polls lingering for their transaction are not "held": only those the disk refused.
        return WriterStats(self._held if self._failing else 0, self.dropped_in_memory,
                           self._failing, self._ack_rows, self.transactions)

    # -- the task ------------------------------------------------------------------------------

    async def run(self, heartbeat: Heartbeat) -> None:
        while True:
            heartbeat.beat()
            delay = self._due_in()
            if delay > 0:
                self._wake.clear()
                try:
                    async with asyncio.timeout(min(delay, IDLE_BEAT_S)):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                continue
            await self._flush()

    async def flush(self) -> None:
        """Write everything queued now (shutdown; tests)."""
        await self._flush(force=True)

    def _due_in(self) -> float:
        """Seconds until the next transaction is due (0: now; inf: nothing to do)."""
        if self._asides or self._maintain or self._jobs:
            return 0.0
        now = time.monotonic()
        due = float("inf")
        if self._polls and self._poll_due is not None:
            due = self._poll_due
        if self.store.events_enabled:
            # Only when a timer of the engine runs out (a minimum duration): an idle engine
            # costs no wake-ups.
            due = min(due, max(self.store.events_due(), self._next_tick))
        acks_due = self._acks_due()
        if acks_due is not None:
            due = min(due, acks_due)
        if self._failing:
            due = max(due, self._retry_at)
        return max(due - now, 0.0)

    def _acks_due(self) -> float | None:
        if not (self._acks or self._event_acks or self._summary_acks) or \
                self._first_ack_at is None:
            return None
        return 0.0 if self._ack_rows >= ACK_FLUSH_ROWS else self._first_ack_at + self.ack_linger_s

    def _write_due(self, now: float) -> bool:
        """Polls that lingered their time, or acknowledgements that did: a transaction woken
        for something else (a job, the events timer) leaves the rest to their own time, so
        that a tick's polls and the acks meanwhile still go in one transaction."""
        if self._polls and self._poll_due is not None and now >= self._poll_due:
            return True
        acks_due = self._acks_due()
        return acks_due is not None and now >= acks_due

    async def _flush(self, *, force: bool = False) -> None:
        if self._asides:
            await self._run_asides()
        jobs, self._jobs = self._jobs, []
        for job, fut in jobs:
            try:
                events = await job()
            except StoreError as exc:
                fut.set_exception(exc)
                continue
            fut.set_result(0)
            if events:
                self.on_events()
        queued = self._polls or self._acks or self._event_acks or self._summary_acks
        if queued and (force or self._write_due(time.monotonic())):
            await self._write()
        now = time.monotonic()
        if self.store.events_enabled and now >= max(self.store.events_due(), self._next_tick):
            try:
                if await self.store.tick_events():
                    self.on_events()
                self._next_tick = 0.0
            except StoreError as exc:
                self._next_tick = now + EVENT_RETRY_S
                log.debug("events tick not written: %s", exc)
        if self._maintain:
            waiters, self._maintain = self._maintain, []
            try:
                dropped: int | BaseException = await self.store.maintain()
            except StoreError as exc:
                log.warning("cannot apply the buffer's caps now: %s", exc)
                dropped = exc
            for fut in waiters:
                if not fut.done():
                    if isinstance(dropped, BaseException):
                        fut.set_exception(dropped)
                    else:
                        fut.set_result(dropped)

    async def _write(self) -> None:
        # Taken out of the queue for the transaction: polls submitted meanwhile queue behind.
        polls = list(self._polls)
        self._polls.clear()
        readings = [r for poll in polls for r in poll]
        acks, ack_rows = self._acks, self._ack_rows
        self._acks, self._ack_rows = [], 0
        event_acks = EventAcks(tuple(self._event_acks), tuple(self._summary_acks))
        self._event_acks, self._summary_acks = [], []
        try:
            _, events = await self.store.write(readings, acks, event_acks)
        except StoreError as exc:
            self._polls.extendleft(reversed(polls))   # back in front, in order
            self._acks[:0] = acks
            self._ack_rows += ack_rows
            self._event_acks[:0] = event_acks.events
            self._summary_acks[:0] = event_acks.summaries
            self._trim()
            if not self._failing:
                log.error("cannot write the buffer (%s); holding readings in memory "
                          "(up to %d) and retrying", exc, self.hold_max)
            self._failing = True
            self._retry_at = time.monotonic() + self._retry_s
            self._retry_s = min(self._retry_s * 2, RETRY_MAX_S)
            return
        self._held -= len(readings)
        self._poll_due = time.monotonic() + self.linger_s if self._polls else None
        self._first_ack_at = time.monotonic() if self._acks or self._event_acks else None
        self.transactions += 1
        if self._failing:
            log.info("buffer writable again; %d held readings stored", len(readings))
        self._failing = False
        self._retry_s = self._retry_initial_s
        if readings:
            self.on_committed()
        if events:
            self.on_events()

    async def _run_asides(self) -> None:
        asides, self._asides = self._asides, []
        for ranges, why, fut in asides:
            try:
                n = await self.store.set_aside(ranges, why)
            except StoreError as exc:
                if not fut.done():
                    fut.set_exception(exc)
                continue
            if not fut.done():
                fut.set_result(n)
