"""Polls one device on its own schedule and hands each poll's readings to the store.

Every poll, successful or not, also records the device's status (``poll.status``: ok, timeout,
refused, bad_answer, error), the reason in plain words when it is not ok (``poll.reason``, English)
with its language-neutral code (``poll.reason_code``: catalogue id and arguments) and how long it
took (``poll.duration_s``). A poll still running when the next is due makes that next poll
be skipped (said once in the log and counted in ``poll.overruns``), so a slow device never piles up
requests; a poll that hangs past its hard deadline is cancelled and recorded as a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.clock import ClockGuard
from agent.config import DeviceConfig
from agent.errors import SourceError
from agent.i18n import Text, text
from agent.logs import OnceLog
from agent.readings import (
    DURATION_METRIC,
    REASON_CODE_METRIC,
    REASON_METRIC,
    SKIPPED_METRIC,
    STATUS_METRIC,
    Reading,
    Sample,
    encode_reason_code,
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
    reason_code: Text | None = None      # the reason as a catalogue code (None when ok)
    last_poll: float | None = None
    last_ok: float | None = None
    overruns: int = 0
    consecutive_failures: int = 0
    last_samples: list[Sample] = field(default_factory=list)


@dataclass(frozen=True)
class PollOutcome:
    """One poll: its readings (samples, then poll.*), status, reason and the reason's code."""

    readings: list[Reading]
    status: str
    reason: str
    reason_code: Text | None = None


async def poll_once(device: DeviceConfig[Any], source: Source, clock: ClockGuard) -> PollOutcome:
    """Poll ``source`` once. Never raises ``SourceError``: a failure becomes the status readings."""
    wall, flags = clock.stamp()
    start = time.monotonic()
    samples: list[Sample] = []
    status, reason, code = "ok", "", None
    try:
        async with asyncio.timeout(hard_deadline(device)):   # no extra task, unlike wait_for
            samples = await source.read()
    except SourceError as exc:
        status, reason, code = exc.status, exc.reason, exc.code
    except TimeoutError:
        status = "timeout"
        code = text("src.poll.abandoned", s=f"{hard_deadline(device):g}")
        reason = str(code)
    except Exception as exc:  # a bug in a source must not stop the other devices
        log.exception("%s: unexpected error while polling", device.name)
        status = "error"
        code = text("src.poll.internal", error=f"{exc.__class__.__name__}: {exc}")
        reason = str(code)
    duration = time.monotonic() - start
    readings = [Reading(device.name, s.metric, s.value, s.unit, wall, flags) for s in samples]
    readings.append(Reading(device.name, STATUS_METRIC, status, "", wall, flags))
    if reason:
        # poll.reason right after poll.status: readers pair them by sequence number.
        readings.append(Reading(device.name, REASON_METRIC, reason, "", wall, flags))
        if code is not None:
            readings.append(Reading(device.name, REASON_CODE_METRIC, encode_reason_code(code), "",
                                    wall, flags))
    readings.append(Reading(device.name, DURATION_METRIC, round(duration, 4), "s", wall, flags))
    return PollOutcome(readings, status, reason, code)


def hard_deadline(device: DeviceConfig[Any]) -> float:
    # Sources enforce their own per-request timeouts; this catches one that hangs anyway.
    return max(device.interval_s * 3, device.timeout_s * 4)


class DevicePoller:
    """One device's loop: poll, commit, wait for the next tick (skipping ticks it overran)."""

    def __init__(
        self, device: DeviceConfig[Any], source: Source, sink: Sink, clock: ClockGuard
    ) -> None:
        self.device = device
        self.source = source
        self.sink = sink
        self.clock = clock
        self.health = DeviceHealth()
        self.poll_now = asyncio.Event()
        self._skipped = 0
        # A failure, or a streak of overruns, is said once when it starts and once when it ends.
        self._log = OnceLog(log)
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
                self._log.problem("overrun", "%s: poll took longer than its %gs interval; "
                                  "skipping %d poll(s)", self.device.name, interval, missed)
            else:
                self._log.ok("overrun", "%s: polls fit in their %gs interval again",
                             self.device.name, interval)
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
        outcome = await poll_once(self.device, self.source, self.clock)
        readings = outcome.readings
        if self._skipped:
            # Says on the record, not only in the log, that polls were skipped before this one.
            last = readings[-1]
            readings.append(Reading(self.device.name, SKIPPED_METRIC, self._skipped, "",
                                    last.ts, last.flags))
            self._skipped = 0
        self._record(outcome)
        self.sink(readings)
        for waiter in waiters:
            if not waiter.done():   # its asker may have given up
                waiter.set_result(readings)
        return readings

    def _record(self, outcome: PollOutcome) -> None:
        status, reason = outcome.status, outcome.reason
        h = self.health
        now = time.time()
        h.last_poll = now
        if status == "ok":
            self._log.ok("poll", "%s: answering again after %d failed poll(s)", self.device.name,
                         h.consecutive_failures)
            h.last_ok = now
            h.consecutive_failures = 0
        else:
            h.consecutive_failures += 1
            # Once per failure and per change of status; not per change of wording (a reason
            # may quote the bytes a device sent, which differ at every poll).
            self._log.problem("poll", "%s: %s: %s", self.device.name, status, reason,
                              change=status, again="%s: still %s: %s")
        h.status, h.reason, h.reason_code = status, reason, outcome.reason_code
        h.last_samples = [Sample(r.metric, r.value, r.unit) for r in outcome.readings]
