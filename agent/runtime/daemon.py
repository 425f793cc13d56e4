"""The running agent: wires sources, store and forwarder together and supervises them.

    DevicePoller (one task per device) --commit--> ReadingStore (SQLite, one thread)
                                                        |
    AgentMonitor (buffer/link health as readings) ------+
                                                        v
                                  Forwarder (one task) --> MqttLink --> broker

Signals: SIGTERM/SIGINT stop after the transaction in progress; SIGHUP reloads the config file.
``apply_config`` is the one way the running config changes (reload now, remote pushes later):
pollers whose device entry did not change keep running untouched.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from agent.clock import ClockGuard
from agent.config import AgentConfig, load_config
from agent.control.server import ControlServer
from agent.errors import ConfigError, StoreError
from agent.publish.forwarder import Forwarder
from agent.runtime.poller import DevicePoller
from agent.readings import Reading
from agent.remote.service import RemoteService
from agent.runtime.sdnotify import Notifier, watchdog_loop
from agent.sources.factory import SourceFactory
from agent.store.outbox import AsyncStore, ReadingStore

log = logging.getLogger(__name__)

AGENT_DEVICE = "agent"          # the agent's own health readings use this device name
PENDING_MAX = 20_000            # readings held in memory while the disk refuses writes


class Agent:
    """One clinic agent. ``await Agent(cfg, config_path=...).run()`` until stopped."""

    def __init__(self, cfg: AgentConfig, *, config_path: str | None = None,
                 notifier: Notifier | None = None) -> None:
        self.cfg = cfg
        # systemd (Type=notify): readiness and the watchdog; a no-op outside systemd.
        self.notifier = notifier if notifier is not None else Notifier.from_env()
        self.config_path = config_path
        self.boot_id = uuid.uuid4().hex[:16]
        self.clock = ClockGuard()
        self.factory = SourceFactory(state_dir=cfg.state_dir)
        self.pollers: dict[str, tuple[DevicePoller, asyncio.Task]] = {}
        self.stopping = asyncio.Event()
        self._pending: list[Reading] = []
        self._store_failing = False
        self._dropped_in_memory = 0
        self.store: AsyncStore | None = None
        self.forwarder: Forwarder | None = None
        self._forwarder_task: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
        self.remote = RemoteService(self)    # signed config pushes and remote commands
        self.control = ControlServer(self)   # the technician CLI's way in (agent.control)

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> None:
        # Blocking helpers (psutil, file writes, DNS) share two threads: each extra thread costs
        # memory (its own malloc arena) and the work is tiny.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="io"))
        # First, so that a slow buffer recovery at start-up is not mistaken for a hang.
        watchdog = asyncio.create_task(watchdog_loop(self.notifier), name="watchdog")
        Path(self.cfg.state_dir).mkdir(parents=True, exist_ok=True)
        self.cfg = await self.remote.startup(self.cfg)   # a pushed config may be in effect
        raw = await asyncio.to_thread(
            ReadingStore.open, self.cfg.buffer.path, max_bytes=int(self.cfg.buffer.max_mb * (1 << 20)),
            max_age_s=self.cfg.buffer.max_age_days * 86400)
        self.store = AsyncStore(raw)
        if raw.recovered_from is not None:
            await self.sink([self._agent_reading(
                "alarm.buffer_replaced",
                f"buffer file was unreadable; moved to {raw.recovered_from.name}")])
        self.forwarder = Forwarder(self.cfg, self.store, boot_id=self.boot_id,
                                   on_connected=self.remote.on_connected)
        self._forwarder_task = asyncio.create_task(self.forwarder.run(), name="forwarder")
        for device in self.cfg.devices:
            self._start_poller(device)
        monitor = asyncio.create_task(self._monitor(), name="monitor")
        await self.control.start()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop)
        loop.add_signal_handler(signal.SIGINT, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        log.info("agent started: site %s, %d device(s), buffer %s (%d readings waiting)",
                 self.cfg.site_id, len(self.pollers), self.cfg.buffer.path, raw.depth())
        self.notifier.ready(f"polling {len(self.pollers)} device(s)")
        try:
            await self.stopping.wait()
        finally:
            log.info("stopping")
            self.notifier.stopping()
            await self.control.close()
            for name in list(self.pollers):
                await self._stop_poller(name)
            await self.remote.close()
            monitor.cancel()
            await _cancel(self._forwarder_task)
            await self.factory.close()
            await self.store.close()
            watchdog.cancel()
            log.info("stopped")

    def stop(self) -> None:
        self.stopping.set()

    def _on_sighup(self) -> None:
        # Keep a reference: the event loop holds only a weak one to a running task.
        task = asyncio.ensure_future(self._reload_logged())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except Exception:   # a failed reload must say why, and never stop the agent
            log.exception("reload failed; the running config is kept")

    async def reload(self) -> None:
        """SIGHUP: re-read the config file; a bad file is reported and the running config kept."""
        if not self.config_path:
            return
        self.notifier.reloading()
        try:
            cfg = await asyncio.to_thread(load_config, self.config_path)
        except ConfigError as exc:
            log.error("reload refused, keeping the running config: %s: %s", exc.source,
                      "; ".join(exc.problems))   # one line per event in the journal
            self.notifier.ready()
            return
        cfg = await self.remote.on_reload(cfg)   # the local file, or a push in effect
        try:
            await self.apply_config(cfg)
        finally:
            self.notifier.ready(f"polling {len(self.pollers)} device(s)")

    async def apply_config(self, cfg: AgentConfig) -> None:
        """Switch to ``cfg`` without a restart; unchanged devices keep polling untouched."""
        old = self.cfg
        self.cfg = cfg
        old_devices = {d.name: d for d in old.devices}
        new_devices = {d.name: d for d in cfg.devices}
        for name, dev in old_devices.items():
            if new_devices.get(name) != dev:
                await self._stop_poller(name)
        for name, dev in new_devices.items():
            if old_devices.get(name) != dev:
                self._start_poller(dev)
        if (old.mqtt, old.site_id, old.buffer) != (cfg.mqtt, cfg.site_id, cfg.buffer):
            await _cancel(self._forwarder_task)
            self.store.store.max_bytes = int(cfg.buffer.max_mb * (1 << 20))
            self.store.store.max_age_s = cfg.buffer.max_age_days * 86400
            self.forwarder = Forwarder(cfg, self.store, boot_id=self.boot_id,
                                       on_connected=self.remote.on_connected)
            self._forwarder_task = asyncio.create_task(self.forwarder.run(), name="forwarder")
        log.info("configuration applied: %d device(s)", len(self.pollers))

    # -- pollers -------------------------------------------------------------------------------

    def _start_poller(self, device) -> None:
        if not device.enabled:
            return
        source = self.factory.build(device)
        poller = DevicePoller(device, source, self.sink, self.clock)
        task = asyncio.create_task(poller.run(), name=f"poll:{device.name}")
        self.pollers[device.name] = (poller, task)

    async def _stop_poller(self, name: str) -> None:
        entry = self.pollers.pop(name, None)
        if entry is None:
            return
        poller, task = entry
        await _cancel(task)
        try:
            await poller.source.close()
        except Exception:   # closing a broken connection must not stop the agent
            log.debug("%s: error while closing", name, exc_info=True)

    async def poll_now(self, device: str | None = None) -> None:
        for name, (poller, _) in self.pollers.items():
            if device is None or name == device:
                poller.poll_now.set()

    # -- the store sink ------------------------------------------------------------------------

    async def sink(self, readings: list[Reading]) -> None:
        """Commit one poll. If the disk refuses, hold readings in memory (bounded) and retry."""
        self.control.readings(readings)   # `clinic-agent tail` watchers
        batch = self._pending + readings if self._pending else readings
        try:
            await self.store.commit(batch)
        except StoreError as exc:
            if not self._store_failing:
                log.error("cannot write the buffer (%s); holding readings in memory", exc)
            self._store_failing = True
            overflow = len(batch) - PENDING_MAX
            if overflow > 0:
                self._dropped_in_memory += overflow
                batch = batch[overflow:]
            self._pending = batch
            return
        if self._store_failing:
            log.info("buffer writable again; %d held readings stored", len(batch))
        self._store_failing = False
        self._pending = []
        if self.forwarder is not None:
            self.forwarder.notify()

    # -- the agent's own health ----------------------------------------------------------------

    def _agent_reading(self, metric: str, value, unit: str = "") -> Reading:
        wall, flags = self.clock.stamp()
        return Reading(AGENT_DEVICE, metric, value, unit, wall, flags)

    async def _monitor(self) -> None:
        while True:
            try:
                await self.store.call(self.store.store.mark)
                # Drops are counted by the store and published in buffer.dropped_total.
                await self.store.call(self.store.store.enforce_bounds)
                await self.sink(await self.health_readings())
                snapshot = await self.status_snapshot()
                await asyncio.to_thread(_write_json_atomic,
                                        Path(self.cfg.state_dir) / "status.json", snapshot)
            except Exception:
                log.exception("agent health check failed")
            await asyncio.sleep(self.cfg.status_interval_s)

    async def health_readings(self) -> list[Reading]:
        stats = await self.store.stats()
        wall, flags = self.clock.stamp()
        link = self.forwarder.state if self.forwarder else None
        age = round(wall - stats.oldest_ts, 1) if stats.oldest_ts is not None else 0.0
        values = [
            ("buffer.depth", stats.depth, ""),
            ("buffer.oldest_age_s", age, "s"),
            ("buffer.bytes", stats.file_bytes, "B"),
            ("buffer.dropped_total", stats.dropped_total + self._dropped_in_memory, ""),
            ("mqtt.connected", bool(link and link.connected), ""),
            ("mqtt.rejected_total", link.rejected_total if link else 0, ""),
            ("clock.suspect", bool(flags & 1), ""),
            ("clock.steps_total", self.clock.steps_seen, ""),
        ]
        return [Reading(AGENT_DEVICE, m, v, u, wall, flags) for m, v, u in values]

    async def status_snapshot(self) -> dict:
        """What ``clinic-agent status`` shows; also written to ``status.json`` in the state dir."""
        stats = await self.store.stats()
        link = self.forwarder.state if self.forwarder else None
        return {
            "pid": os.getpid(),
            "site_id": self.cfg.site_id,
            "boot_id": self.boot_id,
            "written_at": time.time(),
            "broker": asdict(link) if link else None,
            "buffer": asdict(stats),
            "devices": {
                name: {"status": p.health.status, "reason": p.health.reason,
                       "last_poll": p.health.last_poll, "last_ok": p.health.last_ok,
                       "overruns": p.health.overruns}
                for name, (p, _) in self.pollers.items()},
            "remote": self.remote.summary(),   # config in effect: pushed version or local file
        }


def _write_json_atomic(path: Path, doc: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    os.replace(tmp, path)


async def _cancel(task: asyncio.Task | None) -> None:
    if task is None or task.done():
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception:
        log.exception("task %s failed while stopping", task.get_name())
