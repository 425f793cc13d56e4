"""Messages from one MQTT subscription, handled by a fixed number of workers from a bounded queue.

    paho thread --call_soon_threadsafe--> Inbox.offer (event loop, O(1))
        --bounded deque (messages and bytes)--> ``workers`` tasks --> handler(payload)

A flood from the broker (a compromised operator account, a retained message re-sent in a loop)
costs at most ``capacity`` queued messages of memory and ``workers`` handlers at a time; the rest
is dropped and counted, and a failing handler is logged and never stops its worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

LOG_EVERY_S = 600.0     # a flood is logged at warning once per this long


class Inbox:
    """A bounded queue of payloads and the workers that hand them to ``handler`` one by one."""

    def __init__(self, handler: Callable[[bytes], Awaitable[None]], *, name: str, capacity: int,
                 max_queued_bytes: int, workers: int = 1) -> None:
        self.handler = handler
        self.name = name
        self.capacity = capacity
        self.max_queued_bytes = max_queued_bytes
        self.dropped = 0
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._workers_wanted = workers
        self._workers: list[asyncio.Task[None]] = []
        self._ready: asyncio.Event | None = None
        self._logged_at: float | None = None

    def offer(self, payload: bytes) -> bool:
        """Queue ``payload`` (call in the event loop). False if it was dropped: the queue is full
        (by count, or by bytes unless it is empty: one message of any size is always taken, so
        even an oversized one gets its rejection)."""
        if len(self._queue) >= self.capacity or \
                (self._queue and self._queued_bytes + len(payload) > self.max_queued_bytes):
            self.dropped += 1
            self._log_drop()
            return False
        self._queue.append(payload)
        self._queued_bytes += len(payload)
        self._start()
        assert self._ready is not None
        self._ready.set()
        return True

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def close(self) -> None:
        """Stop the workers; what is still queued is dropped (the broker re-sends retained ones)."""
        workers, self._workers = self._workers, []
        for task in workers:
            task.cancel()
        for task in workers:
            try:
                await task
            except (asyncio.CancelledError, Exception):   # noqa: BLE001 - closing
                pass
        self._queue.clear()
        self._queued_bytes = 0

    # -- internals -----------------------------------------------------------------------------

    def _start(self) -> None:
        if self._workers:
            return
        loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()
        self._workers = [loop.create_task(self._work(), name=f"{self.name}:{i}")
                         for i in range(self._workers_wanted)]

    async def _work(self) -> None:
        assert self._ready is not None
        while True:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            payload = self._queue.popleft()
            self._queued_bytes -= len(payload)
            try:
                await self.handler(payload)
            except asyncio.CancelledError:
                raise
            except Exception:   # noqa: BLE001 - one bad message must not stop the next ones
                log.exception("%s: handling a message failed", self.name)

    def _log_drop(self) -> None:
        now = time.monotonic()
        if self._logged_at is None or now - self._logged_at > LOG_EVERY_S:
            self._logged_at = now
            log.warning("%s: more messages than the agent handles (%d queued); dropping "
                        "them, %d so far", self.name, len(self._queue), self.dropped)
