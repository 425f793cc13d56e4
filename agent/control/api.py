"""What the control socket and remote management may ask of the running agent, and nothing else.

``agent.runtime.daemon.Agent`` implements it; ``ControlServer`` and ``RemoteService`` receive an
``AgentControl``, never the agent itself, so neither can reach around the pipeline: a resend
goes through the forwarder's budget, a poll is one of the device's own, a config change goes
through ``apply_config``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from agent.errors import AgentError

if TYPE_CHECKING:
    from agent.config import AgentConfig, DeviceConfig
    from agent.events.model import Active, Event
    from agent.publish.forwarder import ResendResult
    from agent.readings import Reading, StoredReading
    from agent.status import AgentStatus, BufferStatus, LinkStatus
    from agent.store.outbox import BufferSummary


class UnknownDevice(AgentError):
    """No device of that name is polled."""


class NotConnected(AgentError):
    """The agent has no connection to the broker right now."""


@dataclass(frozen=True)
class PollOutcome:
    """One device's poll asked for through the control interface."""

    device: DeviceConfig[Any]
    readings: list[Reading] | None   # None: the poll did not finish in time


ReadingObserver = Callable[["list[Reading]"], None]


class AgentControl(Protocol):
    @property
    def config(self) -> AgentConfig: ...

    @property
    def config_path(self) -> str | None: ...

    async def status(self) -> AgentStatus: ...

    async def buffer_status(self) -> BufferStatus: ...

    # The agent holds its buffer file exclusively: the CLI reads it through these while it runs.
    async def buffer_summary(self) -> BufferSummary: ...

    async def buffer_readings(self, start: float | None, end: float | None, *, rejected: bool,
                              after: int, limit: int) -> list[tuple[StoredReading, str]]:
        """Readings stamped in [start, end) with seq > ``after`` (``limit`` of them), oldest
        first, each with why it was set aside (``rejected``) or ""."""
        ...

    async def recent_events(self, since: float) -> tuple[list[Event], list[Active]]: ...

    def link_status(self) -> LinkStatus | None: ...

    def device_names(self) -> frozenset[str]: ...

    async def apply_config(self, cfg: AgentConfig) -> None: ...

    def poll_now(self, device: str | None = None) -> list[str]:
        """Ask for a poll of ``device`` (or all) without waiting; the names asked."""
        ...

    async def poll_and_wait(self, device: str | None = None) -> list[PollOutcome]:
        """Poll now (the device's own next poll, stored like any) and return the readings;
        raises ``UnknownDevice``."""
        ...

    def request_resend(self, first_seq: int, last_seq: int) -> asyncio.Future[ResendResult]:
        """Send buffered readings again within the backlog budget; raises ``NotConnected``."""
        ...

    def broker_reached(self, cfg: AgentConfig) -> bool:
        """Connected to the broker with ``cfg``'s MQTT settings (not an older connection)."""
        ...

    def publish(self, topic: str, payload: bytes, *,
                retain: bool = False) -> asyncio.Future[None] | None:
        """Publish on the current connection (QoS 1); None when not connected."""
        ...

    def watch_readings(self, observer: ReadingObserver) -> Callable[[], None]:
        """Call ``observer`` with every poll's readings; returns the function that stops it."""
        ...
