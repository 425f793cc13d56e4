"""Builds the source for a configured device, sharing what must be shared (one Modbus bus, one
lock)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.config import DeviceConfig
from agent.sources import Source
from agent.sources.latest import LatestSamples

if TYPE_CHECKING:
    from agent.sources.modbus import BusPool


class SourceFactory:
    """Creates sources; owns resources shared between devices (Modbus buses) and closes them."""

    def __init__(self, *, state_dir: str) -> None:
        self.state_dir = state_dir
        self._buses: BusPool | None = None
        # Each device's latest samples, so the WAN check can put the router's view beside its own.
        self.latest = LatestSamples()

    def build(self, device: DeviceConfig) -> Source:
        if device.kind == "host":
            from agent.sources.host import HostSource
            return HostSource(device, state_dir=self.state_dir)
        if device.kind == "snmp":
            from agent.sources.snmp import SnmpSource
            return SnmpSource(device, latest=self.latest)
        if device.kind == "wan":
            from agent.sources.wan import WanSource
            return WanSource(device, latest=self.latest)
        if device.kind == "modbus":
            from agent.sources.modbus import BusPool, ModbusSource
            if self._buses is None:
                self._buses = BusPool()
            return ModbusSource(device, self._buses)
        raise ValueError(f"unknown device kind {device.kind!r}")

    async def close(self) -> None:
        if self._buses is not None:
            await self._buses.close()
