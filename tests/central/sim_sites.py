"""Simulated clinics for rollout tests: the agent's real remote management, without pollers.

Each ``SimSite`` has its own local config file and state directory and runs the agent's own
``RemoteService`` (check_push, overlays, state files, commit-confirmed, config state) over its own
``MqttLink`` to the broker with its own account. Only the device polling is left out: applying a
config records it (``applied``). Many sites share one asyncio loop in a background thread, so a
test can drive ``clinic-central`` from its own thread meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from agent.config import AgentConfig, load_config
from agent.publish.mqtt_link import MqttLink
from agent.remote.service import RemoteService

T = TypeVar("T")


class SimSite:
    """The part of ``AgentControl`` that remote management uses."""

    def __init__(self, path: Path) -> None:
        self.config_path = str(path)
        self.local: AgentConfig = load_config(path)
        self.config: AgentConfig = self.local
        self.applied: list[AgentConfig] = []
        self.link: MqttLink | None = None
        self.service = RemoteService(self)   # type: ignore[arg-type]

    @property
    def site(self) -> str:
        return self.local.site_id

    async def start(self) -> None:
        self.config = await self.service.startup(self.local)
        cfg = self.config.mqtt
        self.link = MqttLink(cfg, cfg.brokers[0])
        await self.link.connect()
        await self.service.on_connected(self.link)

    async def stop(self) -> None:
        await self.service.close()
        if self.link is not None:
            await self.link.close()

    # -- AgentControl ----------------------------------------------------------------------------

    def device_names(self) -> frozenset[str]:
        return frozenset(d.name for d in self.config.devices)

    async def apply_config(self, cfg: AgentConfig) -> None:
        self.config = cfg
        self.applied.append(cfg)

    def broker_reached(self, cfg: AgentConfig) -> bool:
        # The simulated link does not reconnect: its settings must be the ones asked about.
        return self.link is not None and not self.link.lost.is_set() \
            and cfg.mqtt == self.link.cfg and cfg.site_id == self.site

    def link_status(self) -> None:
        return None

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> Any:
        return None if self.link is None else self.link.publish(topic, payload, retain=retain)

    def poll_now(self, device: str | None = None) -> list[str]:
        return sorted(self.device_names() if device is None else {device})


class SimFleet:
    """Sites on one event loop in a background thread."""

    def __init__(self, paths: list[Path]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sim-fleet", daemon=True)
        self.thread.start()
        self.sites = {s.site: s for s in self.call_all(paths)}

    def call_all(self, paths: list[Path]) -> list[SimSite]:
        async def make() -> list[SimSite]:
            sites = [SimSite(p) for p in paths]
            await asyncio.gather(*(s.start() for s in sites))
            return sites
        return self.run(make())

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def close(self) -> None:
        async def stop() -> None:
            await asyncio.gather(*(s.stop() for s in self.sites.values()),
                                 return_exceptions=True)
        try:
            self.run(stop(), timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
