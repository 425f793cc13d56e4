"""What the Modbus simulators share: a background-thread harness and laying a register image over
an answer.

Tests and benchmarks start a simulator in-process, so they can reach into it (set values, count
requests) while it serves.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Awaitable, Callable, Mapping


class ServerThread:
    """``start(serve)`` runs ``serve(ready)`` until ``stop(signal)``; ``serve`` sets ``ready`` once
    it listens."""

    def __init__(self, name: str, what: str) -> None:
        self.name = name
        self.what = what                     # for error messages: "simulator", ...
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, serve: Callable[[threading.Event], Awaitable[None]], timeout: float = 10.0) -> None:
        """Serve in the background; return once it listens, or raise why it could not."""
        if self._thread is not None:
            raise RuntimeError(f"{self.what} already running")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(serve(ready))
            except BaseException as exc:      # reported to start()'s caller
                failure.append(exc)
                ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError(f"{self.what} did not start in time")
        if failure:
            self._thread.join()
            self._thread = None
            raise RuntimeError(f"{self.what} failed to start: {failure[0]}") from failure[0]

    def stop(self, signal: Callable[[], None], timeout: float = 10.0) -> None:
        """Call ``signal`` in the server's loop (it should make ``serve`` return) and wait."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(signal)
            except RuntimeError:      # the loop ended on its own
                pass
        thread.join(timeout)
        self._thread = None


def overlay(registers: list[int], start: int, image: Mapping[int, int | bool], *, bits: bool) -> None:
    """Write ``image`` (address -> word, or -> bit for coils/discretes) into the answer pymodbus
    is building for a read that begins at ``start``."""
    if bits:
        # ``start`` counts 16-bit words holding the bits, bit 0 being the lowest address.
        for addr, bit in image.items():
            i = addr // 16 - start
            if 0 <= i < len(registers):
                mask = 1 << (addr % 16)
                registers[i] = (registers[i] | mask) if bit else (registers[i] & ~mask)
    else:
        for addr, word in image.items():
            i = addr - start
            if 0 <= i < len(registers):
                registers[i] = word
