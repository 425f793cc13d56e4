"""Owns the agent's long-running tasks by name, restarts the ones that die, and proves progress.

    Supervisor.start("forwarder", run_forwarder, stall_s=...)   # run_forwarder(heartbeat)
        |-- the child dies  -> logged with its traceback, counted, restarted after a backoff
        |-- too many deaths -> "crash loop": the agent is unhealthy (systemd restarts it)
        '-- the child stops beating for stall_s -> unhealthy (a hang, not a death)

``healthy()`` is what the systemd watchdog asks before each ping: the loop turning is not
enough, every child must be alive and have proved progress recently (Erlang/OTP's one_for_one
with a restart intensity, and Telegraf's recovery of a panicking input, in one small class).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

RESTART_INITIAL_S = 1.0
RESTART_MAX_S = 60.0
INTENSITY_RESTARTS = 5          # more deaths than this within the window is a crash loop
INTENSITY_WINDOW_S = 300.0


class Heartbeat:
    """A child calls ``beat()`` whenever it makes progress (or is idle on purpose)."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last = time.monotonic()

    def beat(self) -> None:
        self.last = time.monotonic()

    async def sleep(self, seconds: float, *, every: float = 5.0) -> None:
        """Sleep while staying visibly alive (a long backoff is not a hang)."""
        deadline = time.monotonic() + seconds
        while True:
            self.beat()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, every))


ChildMain = Callable[[Heartbeat], Awaitable[None]]


@dataclass
class Child:
    name: str
    main: ChildMain
    stall_s: float
    heartbeat: Heartbeat = field(default_factory=Heartbeat)
    task: asyncio.Task[None] | None = None
    restarts: int = 0
    deaths: deque[float] = field(default_factory=lambda: deque(maxlen=INTENSITY_RESTARTS + 1))
    last_error: str = ""
    crash_loop: bool = False


@dataclass(frozen=True)
class TaskStatus:
    """One supervised task, as the status document shows it."""

    name: str
    alive: bool
    restarts: int
    last_error: str
    idle_s: float


class Supervisor:
    """One-for-one supervision of named asyncio tasks."""

    def __init__(self) -> None:
        self._children: dict[str, Child] = {}
        self._closing = False

    def start(self, name: str, main: ChildMain, *, stall_s: float) -> None:
        """Run ``main(heartbeat)`` as task ``name``; it must beat at least every ``stall_s``."""
        if name in self._children:
            raise ValueError(f"a task named {name!r} is already supervised")
        child = Child(name, main, stall_s)
        self._children[name] = child
        child.task = asyncio.create_task(self._keep(child), name=name)

    async def stop(self, name: str) -> None:
        """Stop task ``name`` (and forget it): a planned stop, not a death."""
        child = self._children.pop(name, None)
        if child is not None and child.task is not None:
            child.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await child.task

    async def close(self) -> None:
        self._closing = True
        for name in list(self._children):
            await self.stop(name)

    def __contains__(self, name: str) -> bool:
        return name in self._children

    @property
    def restarts_total(self) -> int:
        return sum(c.restarts for c in self._children.values())

    def healthy(self) -> tuple[bool, str]:
        """(True, "") when every child is alive and beat within its ``stall_s``."""
        now = time.monotonic()
        for c in self._children.values():
            if c.crash_loop:
                return False, f"task {c.name} keeps failing ({c.last_error})"
            if c.task is None or c.task.done():
                return False, f"task {c.name} is not running"
            if now - c.heartbeat.last > c.stall_s:
                return False, f"task {c.name} made no progress for {now - c.heartbeat.last:.0f}s"
        return True, ""

    def statuses(self) -> list[TaskStatus]:
        now = time.monotonic()
        return [TaskStatus(c.name, c.task is not None and not c.task.done(), c.restarts,
                           c.last_error, round(now - c.heartbeat.last, 1))
                for c in self._children.values()]

    async def _keep(self, child: Child) -> None:
        backoff = RESTART_INITIAL_S
        while True:
            child.heartbeat.beat()
            started = time.monotonic()
            try:
                await child.main(child.heartbeat)
                error = "returned"   # a child runs until cancelled; returning is a fault too
                log.error("task %s ended by itself; restarting it", child.name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:   # the point of a supervisor: log, count, restart
                error = f"{exc.__class__.__name__}: {exc}"
                log.exception("task %s failed; restarting it in %.0f s", child.name, backoff)
            child.last_error = error
            child.restarts += 1
            now = time.monotonic()
            child.deaths.append(now)
            if (len(child.deaths) > INTENSITY_RESTARTS
                    and now - child.deaths[0] < INTENSITY_WINDOW_S):
                if not child.crash_loop:
                    log.critical("task %s failed %d times in %.0f s; the agent reports itself "
                                 "unhealthy so that systemd restarts it", child.name,
                                 len(child.deaths), now - child.deaths[0])
                child.crash_loop = True
            if now - started > INTENSITY_WINDOW_S:
                backoff = RESTART_INITIAL_S   # it had been running fine for a while
            await child.heartbeat.sleep(backoff)
            backoff = min(backoff * 2, RESTART_MAX_S)
