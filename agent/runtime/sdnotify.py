"""Talking to systemd (``Type=notify``): readiness, the watchdog, status text. No dependency.

systemd passes ``NOTIFY_SOCKET`` (a datagram socket path, or ``@name`` in the abstract namespace)
and, with ``WatchdogSec=``, ``WATCHDOG_USEC``. Outside systemd both are absent and every call here
is a no-op, so the agent runs the same from a shell.

    Agent.run()  --READY=1 / STOPPING=1 / RELOADING=1 / STATUS=-->  NOTIFY_SOCKET  --> systemd
    watchdog_loop (a task on the agent's event loop) --WATCHDOG=1 every WATCHDOG_USEC/2-->

The watchdog ping is sent *from the event loop*: if the loop hangs (a blocking call, a deadlock),
the pings stop and systemd kills and restarts the agent after ``WatchdogSec``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

from agent.logs import OnceLog

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify messages; never raises (a missing systemd must not stop the agent)."""

    def __init__(self, address: str | None, *, watchdog_usec: int = 0) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None
        self._log = OnceLog(log)   # a vanished socket would otherwise log every ping

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """The notifier systemd asked for through the environment (disabled when there is none).

        ``WATCHDOG_PID``, when set, names the process the watchdog is meant for: any other
        process (a child that inherited the environment) gets no watchdog.
        """
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        usec = 0
        try:
            usec = max(0, int(env.get("WATCHDOG_USEC", "0")))
        except ValueError:
            log.warning("ignoring WATCHDOG_USEC=%r: not a number", env.get("WATCHDOG_USEC"))
        pid = env.get("WATCHDOG_PID")
        if pid and pid != str(os.getpid()):
            usec = 0
        return cls(address, watchdog_usec=usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to ping: half the watchdog timeout, as sd_watchdog_enabled(3) advises."""
        return self.watchdog_usec / 2e6 if self.watchdog_usec and self.enabled else None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` lines as one datagram. True if it was sent."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                # Never block the event loop on a full socket: a lost ping is better than a hang.
                self._sock.setblocking(False)
            addr = "\0" + self.address[1:] if self.address.startswith("@") else self.address
            self._sock.sendto("\n".join(assignments).encode(), addr)
        except OSError as exc:
            self._log.problem("notify", "cannot notify systemd at %s: %s", self.address, exc)
            return False
        self._log.ok("notify", "notifying systemd works again")
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> bool:
        # MONOTONIC_USEC lets systemd (253+, Type=notify-reload) match this to the reload request.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        """One line shown by ``systemctl status`` (newlines would end the message)."""
        return self.notify("STATUS=" + " ".join(text.splitlines()))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


async def watchdog_loop(notifier: Notifier, interval_s: float | None = None, *,
                        healthy: Callable[[], tuple[bool, str]] | None = None) -> None:
    """Ping ``WATCHDOG=1`` every ``interval_s`` (default: half of ``WATCHDOG_USEC``) until
    cancelled.

    Runs as a task on the loop it guards, so it pings only while that loop is responsive; and,
    with ``healthy`` (the supervisor's check), only while every task is alive and making
    progress: a hung forwarder or writer gets the agent restarted, not only a hung loop.
    Returns at once when systemd set no watchdog.
    """
    interval = interval_s if interval_s is not None else notifier.watchdog_interval_s
    if not interval or not notifier.enabled:
        return
    withheld = False
    while True:
        ok, why = healthy() if healthy is not None else (True, "")
        if ok:
            if withheld:
                log.info("all tasks are making progress again; watchdog pings resumed")
            withheld = False
            notifier.watchdog()
        elif not withheld:
            log.error("%s; withholding the watchdog ping so that systemd restarts the agent", why)
            notifier.status(why)
            withheld = True
        await asyncio.sleep(interval)
