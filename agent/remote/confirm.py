"""Commit-confirmed: a pushed config must reach the broker in time, or the previous one returns.

Like a router's ``commit confirmed``: the agent applies the push, then waits at most
``[remote] confirm_timeout_s`` for a connection to the broker *made with the new config*. If none
comes, the new config is what cut the site off (wrong broker address, port, TLS file ...), so the
agent goes back to the last-known-good config by itself; the report goes out once it is connected
again. A site is never left unreachable by a push.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def wait_for_broker(reached: Callable[[], bool], wake: asyncio.Event,
                          timeout_s: float) -> bool:
    """True as soon as ``reached()``; False after ``timeout_s``. ``wake`` is set on every change
    worth a look (a connection made), so nothing here polls."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        wake.clear()          # cleared before looking, so a wake-up in between is not lost
        if reached():
            return True
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        try:
            await asyncio.wait_for(wake.wait(), remaining)
        except TimeoutError:
            return reached()


async def commit_confirmed(*, apply: Callable[[], Awaitable[None]],
                           revert: Callable[[str | None], Awaitable[None]],
                           reached: Callable[[], bool], wake: asyncio.Event,
                           timeout_s: float) -> bool:
    """Apply, wait for the broker, revert if it never answered. Returns whether it was confirmed.

    ``revert`` gets why when applying itself failed, ``None`` when the broker was not reached.
    """
    try:
        await apply()
    except Exception as exc:   # whatever broke half-way, the old config must come back
        await revert(f"could not apply it: {exc.__class__.__name__}: {exc}")
        return False
    if await wait_for_broker(reached, wake, timeout_s):
        return True
    await revert(None)
    return False
