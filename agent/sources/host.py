"""The mini-PC itself (psutil): CPU, memory, disk of the state directory, uptime, temperatures."""

from __future__ import annotations

import asyncio
import logging
import os
import time

import psutil

from agent.config import DeviceConfig
from agent.config.host import HostSettings
from agent.errors import SourceError
from agent.i18n import text
from agent.readings import Sample

log = logging.getLogger(__name__)


class HostSource:
    """Reads the agent's own machine. Every value is local; nothing here can time out."""

    def __init__(self, device: DeviceConfig[HostSettings], *, state_dir: str) -> None:
        self.name = device.name
        self.settings = device.settings
        self.disk_paths = tuple(self.settings.disk_paths) or (state_dir,)
        self._process = psutil.Process(os.getpid())
        # primes the counter: the first real value is the next poll's
        psutil.cpu_percent(interval=None)

    async def read(self) -> list[Sample]:
        # psutil reads /proc and /sys: quick, but still file I/O, so off the event loop.
        return await asyncio.to_thread(self._read)

    def _read(self) -> list[Sample]:
        try:
            mem = psutil.virtual_memory()
            samples = [
                Sample("cpu.percent", psutil.cpu_percent(interval=None), "%"),
                Sample("cpu.load1", round(os.getloadavg()[0], 2), ""),
                Sample("mem.percent", mem.percent, "%"),
                Sample("mem.available_bytes", mem.available, "B"),
                Sample("uptime_s", round(time.time() - psutil.boot_time()), "s"),
                Sample("agent.rss_bytes", self._process.memory_info().rss, "B"),
            ]
        except (OSError, psutil.Error) as exc:
            raise SourceError(text("src.host.stats", error=str(exc))) from exc
        for i, path in enumerate(self.disk_paths):
            key = "disk" if i == 0 else f"disk{i}"
            try:
                usage = psutil.disk_usage(path)
            except OSError as exc:
                log.debug("%s: disk usage of %s unavailable: %s", self.name, path, exc)
                continue
            samples.append(Sample(f"{key}.percent", usage.percent, "%"))
            samples.append(Sample(f"{key}.free_bytes", usage.free, "B"))
        if self.settings.temperatures:
            samples.extend(self._temperatures())
        return samples

    def _temperatures(self) -> list[Sample]:
        try:
            sensors = psutil.sensors_temperatures()
        except (AttributeError, OSError):
            return []
        out = []
        for chip, entries in sorted(sensors.items()):
            values = [e.current for e in entries if e.current is not None]
            if values:
                name = "".join(c if c.isalnum() else "_" for c in chip.lower())
                out.append(Sample(f"temp.{name}_c", round(max(values), 1), "C"))
        return out

    async def close(self) -> None:
        return None
