"""Logging helpers shared by the daemon's parts.

``OnceLog``: a problem that repeats at every poll (a dead device, a quirk of a router, a vanished
systemd socket) is one line in the journal when it starts, debug lines while it lasts, and one
line when it ends -- Home Assistant's ``ModbusHub._log_error`` with its ``_in_error`` latch, per
key. A clinic PC's journal is small and read over a slow link: it must not flood.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable

_UNSET = object()


class OnceLog:
    """Per-key latch: ``problem`` logs at ``level`` the first time (or when ``change`` differs
    from the last one), at DEBUG while the problem lasts; ``ok`` logs at INFO when it ends."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._active: dict[Hashable, object] = {}

    def problem(self, key: Hashable, msg: str, *args: object, level: int = logging.WARNING,
                change: object = None, again: str | None = None, exc_info: bool = False) -> bool:
        """Log ``msg % args`` for the problem ``key``; True when it was logged at ``level``.

        ``change``: a new value (e.g. another status) is a new problem, said again at ``level``;
        leave it out for details that differ at every poll (bytes quoted, counters).
        ``again``: another format (same ``args``) for the DEBUG repeats.
        """
        new = self._active.get(key, _UNSET) != change
        self._active[key] = change
        if new:
            self.logger.log(level, msg, *args, exc_info=exc_info)
        else:
            self.logger.debug(again or msg, *args, exc_info=exc_info)
        return new

    def ok(self, key: Hashable, msg: str | None = None, *args: object) -> bool:
        """The problem ``key`` is over: True (and ``msg % args`` at INFO) if there was one."""
        if self._active.pop(key, _UNSET) is _UNSET:
            return False
        if msg is not None:
            self.logger.info(msg, *args)
        return True

    def active(self, key: Hashable) -> bool:
        """Whether ``key`` is a problem now."""
        return key in self._active
