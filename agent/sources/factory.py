"""Builds the source for a configured device through its kind (``agent.kinds``), sharing what
must be shared (one Modbus bus, one lock; the latest samples the WAN check reads)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent.config import DeviceConfig
from agent.kinds import kind_of
from agent.sources import Source
from agent.sources.latest import LatestSamples

if TYPE_CHECKING:
    from agent.sources.modbus import BusPool


class SourceFactory:
    """Creates sources; owns resources shared between devices (Modbus buses) and closes them."""

    def __init__(self, *, state_dir: str) -> None:
        self._state_dir = state_dir
        self._buses: BusPool | None = None
        # Each device's latest samples, so the WAN check can put the router's view beside its own.
        self._latest = LatestSamples()

    @property
    def state_dir(self) -> str:
        return self._state_dir

    @property
    def latest(self) -> LatestSamples:
        return self._latest

    def modbus_buses(self) -> BusPool:
        """The pool of Modbus buses, created with the first Modbus device."""
        if self._buses is None:
            from agent.sources.modbus import BusPool
            self._buses = BusPool()
        return self._buses

    def build(self, device: DeviceConfig[Any]) -> Source:
        kind = kind_of(device.kind)
        if kind is None:
            raise ValueError(f"unknown device kind {device.kind!r}")
        return kind.build(device, self)

    async def close(self) -> None:
        if self._buses is not None:
            await self._buses.close()
