"""Polls one device on its own schedule and hands each poll's readings to the store.

Every poll, successful or not, also records the device's status (``poll.status``: ok, timeout,
refused, bad_answer, error), the reason in plain words when it is not ok (``poll.reason``) and how
long it took (``poll.duration_s``). A poll still running when the next is due makes that next poll
be skipped (said once in the log and counted in ``poll.overruns``), so a slow device never piles up
requests; a poll that hangs past its hard deadline is cancelled and recorded as a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.clock import ClockGuard
from agent.config import DeviceConfig
from agent.errors import SourceError
from agent.readings import (
    DURATION_METRIC,
    REASON_METRIC,
    SKIPPED_METRIC,
    STATUS_METRIC,
    Reading,
    Sample,
)
from agent.runtime.supervisor import Heartbeat
from agent.sources import Source

log = logging.getLogger(__name__)

# Hands a poll to the store writer; never blocks (the writer queues it).
Sink = Callable[[list[Reading]], None]


@dataclass
class DeviceHealth:
    """The latest outcome per device, for the CLI and the status readings."""

    status: str = "unknown"
    reason: str = ""
    last_poll: float | None = None
    last_ok: float | None = None
    overruns: int = 0
    consecutive_failures: int = 0
    last_samples: list[Sample] = field(default_factory=list)


async def poll_once(device: DeviceConfig, source: Source,
                    clock: ClockGuard) -> tuple[list[Reading], str, str]:
    """Poll ``source`` once: readings (samples plus status), status and reason. Never raises
    ``SourceError``: a failure becomes the status readings."""
    wall, flags = clock.stamp()
    start = time.monotonic()
    samples: list[Sample] = []
    status, reason = "ok", ""
    try:
        async with asyncio.timeout(hard_deadline(device)):   # no extra task, unlike wait_for
            samples = await source.read()
    except SourceError as exc:
        status, reason = exc.status, exc.reason
    except TimeoutError:
        status = "timeout"
        reason = f"poll took longer than {hard_deadline(device):g}s and was abandoned"
    except Exception as exc:  # a bug in a source must not stop the other devices
        log.exception("%s: unexpected error while polling", device.name)
        status, reason = "error", f"internal error: {exc.__class__.__name__}: {exc}"
    duration = time.monotonic() - start
    readings = [Reading(device.name, s.metric, s.value, s.unit, wall, flags) for s in samples]
    readings.append(Reading(device.name, STATUS_METRIC, status, "", wall, flags))
    if reason:
        readings.append(Reading(device.name, REASON_METRIC, reason, "", wall, flags))
    readings.append(Reading(device.name, DURATION_METRIC, round(duration, 4), "s", wall, flags))
    return readings, status, reason


def hard_deadline(device: DeviceConfig) -> float:
    # Sources enforce their own per-request timeouts; this catches one that hangs anyway.
    return max(device.interval_s * 3, device.timeout_s * 4)


class DevicePoller:
    """One device's loop: poll, commit, wait for the next tick (skipping ticks it overran)."""

    def __init__(self, device: DeviceConfig, source: Source, sink: Sink, clock: ClockGuard) -> None:
        self.device = device
        self.source = source
        self.sink = sink
        self.clock = clock
        self.health = DeviceHealth()
        self.poll_now = asyncio.Event()
        self._skipped = 0
        self._overrunning = False   # logged once per streak of overruns, like a failure
        self._poll_waiters: list[asyncio.Future[list[Reading]]] = []

    def stall_limit_s(self) -> float:
        """Longest this loop may go without a heartbeat before it counts as hung."""
        return self.device.interval_s + hard_deadline(self.device) + 30

    async def run(self, heartbeat: Heartbeat | None = None) -> None:
        interval = self.device.interval_s
        next_tick = time.monotonic()
        while True:
            if heartbeat is not None:
                heartbeat.beat()
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The sink has its own error handling; anything reaching here is a bug, and a
                # bug must not silently end this device's polling: log it and keep the schedule.
                log.exception("%s: poll failed unexpectedly; polling goes on", self.device.name)
            next_tick += interval
            now = time.monotonic()
            if now > next_tick:
                missed = int((now - next_tick) // interval) + 1
                next_tick += missed * interval
                self.health.overruns += missed
                self._skipped += missed
                log.log(logging.DEBUG if self._overrunning else logging.WARNING,
                        "%s: poll took longer than its %gs interval; skipping %d poll(s)",
                        self.device.name, interval, missed)
                self._overrunning = True
            elif self._overrunning:
                self._overrunning = False
                log.info("%s: polls fit in their %gs interval again", self.device.name, interval)
            if not self._poll_waiters:   # asked for during that poll: poll again at once
                self.poll_now.clear()
            try:
                async with asyncio.timeout(max(next_tick - time.monotonic(), 0)):
                    await self.poll_now.wait()
                next_tick = time.monotonic()   # an on-demand poll restarts the schedule
            except TimeoutError:
                pass

    async def poll_soon(self) -> list[Reading]:
        """Ask for a poll now (or right after the one in progress) and return its readings.

        It is a regular poll of this loop, stored like any other and never concurrent with a
        scheduled one: the control socket uses it so the CLI needs no second connection.
        """
        waiter: asyncio.Future[list[Reading]] = asyncio.get_running_loop().create_future()
        self._poll_waiters.append(waiter)
        self.poll_now.set()
        return await waiter

    async def poll(self) -> list[Reading]:
        waiters, self._poll_waiters = self._poll_waiters, []   # those asked before it started
        readings, status, reason = await poll_once(self.device, self.source, self.clock)
        if self._skipped:
            # Says on the record, not only in the log, that polls were skipped before this one.
            last = readings[-1]
            readings.append(Reading(self.device.name, SKIPPED_METRIC, self._skipped, "",
                                    last.ts, last.flags))
            self._skipped = 0
        self._record(status, reason, readings)
        self.sink(readings)
        for waiter in waiters:
            if not waiter.done():   # its asker may have given up
                waiter.set_result(readings)
        return readings

    def _record(self, status: str, reason: str, readings: list[Reading]) -> None:
        h = self.health
        now = time.time()
        h.last_poll = now
        if status == "ok":
            if h.consecutive_failures:
                log.info("%s: answering again after %d failed poll(s)", self.device.name,
                         h.consecutive_failures)
            h.last_ok = now
            h.consecutive_failures = 0
        else:
            h.consecutive_failures += 1
            # Once per failure and per change of status; not per change of wording (a reason
            # may quote the bytes a device sent, which differ at every poll).
            if h.consecutive_failures == 1 or status != h.status:
                log.warning("%s: %s: %s", self.device.name, status, reason)
            else:
                log.debug("%s: still %s: %s", self.device.name, status, reason)
        h.status, h.reason = status, reason
        h.last_samples = [Sample(r.metric, r.value, r.unit) for r in readings]
