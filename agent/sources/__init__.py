"""Sources turn one device into samples. One file per kind of device, one small interface.

A source never owns timing (the poller does) and never catches its own failures into readings:
it raises a ``SourceError`` subclass with a plain-words reason and the poller records it.
"""

from __future__ import annotations

from typing import Protocol

from agent.readings import Sample


class Source(Protocol):
    """The interface every device source implements."""

    name: str

    async def read(self) -> list[Sample]:
        """Poll the device once. Raise ``agent.errors.SourceError`` (or a subclass) on failure."""

    async def close(self) -> None:
        """Release connections. Called when the device is removed or the agent stops."""
