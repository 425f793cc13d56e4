"""The running agent: the composition root. Builds the pipeline and hands every long-running task
to the supervisor.

    DevicePoller (one task per device) --submit--+
    AgentMonitor (the agent's own health) -------+--> StoreWriter (one task) --> ReadingStore
                                                          ^   |  (SQLite outbox, own thread)
                                          acks, set-aside |   v committed
                                   Forwarder (one task) --+-- reads --> MqttLink --> broker

    Supervisor: owns every task above by name, restarts one that dies, tells the watchdog.
    ControlServer, RemoteService: reach the agent only through ``AgentControl``.

Signals: SIGTERM/SIGINT stop after the transaction in progress; SIGHUP reloads the config file.
``apply_config`` is the one way the running config changes (reload, remote pushes): pollers
whose device entry did not change keep running untouched.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agent import __version__
from agent.clock import ClockGuard
from agent.config import AgentConfig, DeviceConfig, load_config
from agent.control.api import NotConnected, PollOutcome, ReadingObserver, UnknownDevice
from agent.control.server import ControlServer
from agent.errors import ConfigError
from agent.events.engine import RestartEvidence
from agent.events.model import Active, Event
from agent.publish.forwarder import Forwarder, ResendResult
from agent.readings import Reading, StoredReading, Value
from agent.remote.service import RemoteService
from agent.runtime.poller import DevicePoller, hard_deadline
from agent.runtime.sdnotify import Notifier, watchdog_loop
from agent.runtime.supervisor import Heartbeat, Supervisor
from agent.runtime.writer import StoreWriter
from agent.sources.factory import SourceFactory
from agent.status import AgentStatus, BufferStatus, DeviceStatus, LinkStatus, Problem, TaskState
from agent.store.outbox import AsyncStore, BufferSummary

log = logging.getLogger(__name__)

AGENT_DEVICE = "agent"          # the agent's own health readings use this device name
FORWARDER = "forwarder"
WRITER = "writer"
MONITOR = "monitor"
STATUS_FILE_MAX_AGE_S = 300.0
HEALTH_LINGER_S = 15.0          # the agent's own readings wait for a device poll's transaction


class Agent:
    """One clinic agent. ``await Agent(cfg, config_path=...).run()`` until stopped.

    Implements ``agent.control.api.AgentControl`` for the control socket and remote management.
    """

    def __init__(self, cfg: AgentConfig, *, config_path: str | None = None,
                 notifier: Notifier | None = None) -> None:
        self.cfg = cfg
        # systemd (Type=notify): readiness and the watchdog; a no-op outside systemd.
        self.notifier = notifier if notifier is not None else Notifier.from_env()
        self._config_path = config_path
        self.boot_id = uuid.uuid4().hex[:16]
        self.started_at = time.time()
        self.clock = ClockGuard()
        self.factory = SourceFactory(state_dir=cfg.state_dir)
        self.supervisor = Supervisor()
        self.pollers: dict[str, DevicePoller] = {}
        self.stopping = asyncio.Event()
        self.store: AsyncStore | None = None
        self.writer: StoreWriter | None = None
        self.forwarder: Forwarder | None = None
        self._observers: list[ReadingObserver] = []
        self._status_key: object = None
        self._status_written = 0.0
        self._background: set[asyncio.Task[None]] = set()
        self.remote = RemoteService(self)    # signed config pushes and remote commands
        self.control = ControlServer(self)   # the technician CLI's way in

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> None:
        # Blocking helpers (psutil, file writes, DNS) share two threads: each extra thread costs
        # memory (its own malloc arena) and the work is tiny.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="io"))
        # First, so that a slow buffer recovery at start-up is not mistaken for a hang.
        watchdog = asyncio.create_task(watchdog_loop(self.notifier, healthy=self._healthy),
                                       name="watchdog")
        Path(self.cfg.state_dir).mkdir(parents=True, exist_ok=True)
        self.cfg = await self.remote.startup(self.cfg)   # a pushed config may be in effect
        self.store = await AsyncStore.open(
            self.cfg.buffer.path, max_bytes=_max_bytes(self.cfg), max_age_s=_max_age_s(self.cfg))
        if self.cfg.events.enabled:
            evidence = await asyncio.to_thread(RestartEvidence.from_host, os.environ)
            await self.store.attach_events(self.cfg.events, site=self.cfg.site_id,
                                           evidence=evidence)
        self.writer = StoreWriter(self.store, on_committed=self._committed,
                                  on_events=self._events_decided)
        self.supervisor.start(WRITER, self.writer.run, stall_s=120)
        if self.store.recovered_from is not None:
            self.sink([self._agent_reading(
                "alarm.buffer_replaced",
                f"buffer file was unreadable; moved to {self.store.recovered_from.name}")])
        self._start_forwarder()
        for device in self.cfg.devices:
            self._start_poller(device)
        self.supervisor.start(MONITOR, self._monitor, stall_s=self.cfg.status_interval_s * 2 + 60)
        await self.control.start()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop)
        loop.add_signal_handler(signal.SIGINT, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        log.info("agent started: site %s, %d device(s), buffer %s (%d readings waiting)",
                 self.cfg.site_id, len(self.pollers), self.cfg.buffer.path, self.store.depth())
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
            await self.supervisor.stop(MONITOR)
            await self.supervisor.stop(FORWARDER)
            await self.supervisor.stop(WRITER)
            await self.writer.flush()   # the polls of the last second, and the last acks
            await self.supervisor.close()
            await self.factory.close()
            await self.store.close()
            watchdog.cancel()
            log.info("stopped")

    def stop(self) -> None:
        self.stopping.set()

    def _healthy(self) -> tuple[bool, str]:
        return self.supervisor.healthy()

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
        if not self._config_path:
            return
        self.notifier.reloading()
        try:
            cfg = await asyncio.to_thread(load_config, self._config_path)
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
        if (old.events, old.devices) != (cfg.events, cfg.devices) and self.writer is not None:
            await self.writer.reconfigure_events(cfg.events, [d.name for d in cfg.devices])
        if (old.mqtt, old.site_id, old.buffer) != (cfg.mqtt, cfg.site_id, cfg.buffer):
            await self.supervisor.stop(FORWARDER)
            assert self.store is not None
            await self.store.set_limits(max_bytes=_max_bytes(cfg), max_age_s=_max_age_s(cfg))
            self._start_forwarder()
        log.info("configuration applied: %d device(s)", len(self.pollers))

    def _start_forwarder(self) -> None:
        assert self.store is not None and self.writer is not None
        self.forwarder = Forwarder(self.cfg, self.store, self.writer, boot_id=self.boot_id,
                                   on_connected=self.remote.on_connected)
        self.supervisor.start(FORWARDER, self.forwarder.run,
                              stall_s=self.forwarder.stall_limit_s())

    # -- pollers -------------------------------------------------------------------------------

    def _start_poller(self, device: DeviceConfig[Any]) -> None:
        if not device.enabled:
            return
        source = self.factory.build(device)
        poller = DevicePoller(device, source, self.sink, self.clock)
        self.pollers[device.name] = poller
        self.supervisor.start(f"poll:{device.name}", poller.run, stall_s=poller.stall_limit_s())

    async def _stop_poller(self, name: str) -> None:
        poller = self.pollers.pop(name, None)
        if poller is None:
            return
        await self.supervisor.stop(f"poll:{name}")
        try:
            await poller.source.close()
        except Exception:   # closing a broken connection must not stop the agent
            log.debug("%s: error while closing", name, exc_info=True)

    # -- the pipeline --------------------------------------------------------------------------

    def sink(self, readings: list[Reading], *, linger_s: float | None = None) -> None:
        """Every poll enters the pipeline here: watchers get a copy, the writer stores it."""
        for observer in list(self._observers):
            observer(readings)
        assert self.writer is not None
        self.writer.submit(readings, linger_s=linger_s)

    def _committed(self) -> None:
        if self.forwarder is not None:
            self.forwarder.notify()

    def _events_decided(self) -> None:
        if self.forwarder is not None:
            self.forwarder.notify_events()

    # -- AgentControl: what the control socket and remote management may ask ------------------

    @property
    def config(self) -> AgentConfig:
        return self.cfg

    @property
    def config_path(self) -> str | None:
        return self._config_path

    def device_names(self) -> frozenset[str]:
        return frozenset(self.pollers)

    def poll_now(self, device: str | None = None) -> list[str]:
        asked = [n for n in self.pollers if device in (None, n)]
        for name in asked:
            self.pollers[name].poll_now.set()
        return asked

    async def poll_and_wait(self, device: str | None = None) -> list[PollOutcome]:
        pollers = [p for name, p in self.pollers.items() if device in (None, name)]
        if not pollers:
            names = ", ".join(self.pollers) or "none"
            raise UnknownDevice(f"no device named {device!r} is polled; devices: {names}")

        async def one(poller: DevicePoller) -> PollOutcome:
            # The next poll of the device's own loop: one connection, one master on the bus.
            try:
                readings = await asyncio.wait_for(poller.poll_soon(),
                                                  hard_deadline(poller.device) * 2 + 5)
            except TimeoutError:
                return PollOutcome(poller.device, None)
            return PollOutcome(poller.device, readings)
        return list(await asyncio.gather(*(one(p) for p in pollers)))

    def request_resend(self, first_seq: int, last_seq: int) -> asyncio.Future[ResendResult]:
        if self.forwarder is None or not self.forwarder.state.connected:
            raise NotConnected("not connected to the broker")
        return self.forwarder.request_resend(first_seq, last_seq)

    def broker_reached(self, cfg: AgentConfig) -> bool:
        f = self.forwarder
        return (f is not None and f.state.connected and f.link is not None
                and not f.link.lost.is_set() and f.cfg.mqtt == cfg.mqtt
                and f.cfg.site_id == cfg.site_id)

    def publish(self, topic: str, payload: bytes, *,
                retain: bool = False) -> asyncio.Future[None] | None:
        f = self.forwarder
        if f is None or not f.state.connected or f.link is None:
            return None
        return f.link.publish(topic, payload, retain=retain)

    def watch_readings(self, observer: ReadingObserver) -> Callable[[], None]:
        self._observers.append(observer)
        return lambda: self._observers.remove(observer) if observer in self._observers else None

    def link_status(self) -> LinkStatus | None:
        return dataclasses.replace(self.forwarder.state) if self.forwarder else None

    async def buffer_status(self) -> BufferStatus:
        assert self.store is not None and self.writer is not None
        stats = await self.store.stats()
        held = self.writer.stats()
        return BufferStatus(**dataclasses.asdict(stats), held_in_memory=held.held,
                            dropped_in_memory=held.dropped_in_memory, path=self.cfg.buffer.path)

    async def buffer_summary(self) -> BufferSummary:
        assert self.store is not None
        return await self.store.summary()

    async def buffer_readings(self, start: float | None, end: float | None, *, rejected: bool,
                              after: int, limit: int) -> list[tuple[StoredReading, str]]:
        assert self.store is not None
        return await self.store.export_chunk(start, end, rejected=rejected, after=after,
                                             limit=limit)

    async def recent_events(self, since: float) -> tuple[list[Event], list[Active]]:
        assert self.store is not None
        return await self.store.recent_events(since)

    async def status(self) -> AgentStatus:
        """What ``clinic-agent status`` shows; also written to ``status.json`` in the state dir."""
        healthy, why = self.supervisor.healthy()
        devices = {}
        for name, p in self.pollers.items():
            h = p.health
            devices[name] = DeviceStatus(
                status=h.status, reason=h.reason,
                reason_code=h.reason_code.to_doc() if h.reason_code is not None else None,
                last_poll=h.last_poll, last_ok=h.last_ok,
                overruns=h.overruns, kind=p.device.kind, interval_s=p.device.interval_s,
                consecutive_failures=h.consecutive_failures)
        tasks = {t.name: TaskState(t.alive, t.restarts, t.last_error, t.idle_s)
                 for t in self.supervisor.statuses()}
        return AgentStatus(
            pid=os.getpid(), site_id=self.cfg.site_id, boot_id=self.boot_id,
            written_at=time.time(), broker=self.link_status(),
            buffer=await self.buffer_status(), devices=devices,
            remote=self.remote.summary(),   # config in effect: pushed version or local file
            started_at=self.started_at, version=__version__, config_path=self._config_path,
            state_dir=self.cfg.state_dir, buffer_path=self.cfg.buffer.path,
            disabled=[d.name for d in self.cfg.devices if not d.enabled],
            tail_dropped=self.control.tail_dropped, tasks=tasks, healthy=healthy,
            unhealthy_reason=why, problems=self.problems())

    def problems(self) -> list[Problem]:
        """The power and internet problems on now (the edge events' active set)."""
        if self.store is None:
            return []
        return [Problem(code=a.cond, device=a.dev, since=a.start, args=dict(a.values),
                        estimated=a.est, flapping=a.kind == "flapping")
                for a in self.store.active_events()]

    # -- the agent's own health ----------------------------------------------------------------

    def _agent_reading(self, metric: str, value: Value, unit: str = "") -> Reading:
        wall, flags = self.clock.stamp()
        return Reading(AGENT_DEVICE, metric, value, unit, wall, flags)

    async def _monitor(self, heartbeat: Heartbeat) -> None:
        assert self.writer is not None
        while True:
            heartbeat.beat()
            try:
                # Drops are counted by the store and published in buffer.dropped_total.
                await self.writer.maintain()
                # With the next device poll's transaction: no fsync of their own.
                self.sink(await self.health_readings(), linger_s=HEALTH_LINGER_S)
                status = await self.status()
                if self._status_file_due(status):
                    await asyncio.to_thread(_write_json_atomic,
                                            Path(self.cfg.state_dir) / "status.json",
                                            status.to_doc())
            except Exception:
                log.exception("agent health check failed")
            await asyncio.sleep(self.cfg.status_interval_s)

    def _status_file_due(self, status: AgentStatus) -> bool:
        """``status.json`` is rewritten when something a person reads in it changed (a device,
        the broker link, a problem), or every ``STATUS_FILE_MAX_AGE_S``: each rewrite costs the
        flash a file and a journal commit, and counters alone change every time."""
        key = (tuple((n, d.status) for n, d in sorted(status.devices.items())),
               bool(status.broker and status.broker.connected),
               status.broker.connects if status.broker else 0, status.healthy,
               (status.broker.last_error_code or {}).get("code") if status.broker else None,
               tuple((p.code, p.device) for p in status.problems))
        now = time.monotonic()
        if key == self._status_key and now - self._status_written < STATUS_FILE_MAX_AGE_S:
            return False
        self._status_key, self._status_written = key, now
        return True

    async def health_readings(self) -> list[Reading]:
        buffer = await self.buffer_status()
        wall, flags = self.clock.stamp()
        link = self.forwarder.state if self.forwarder else None
        age = round(wall - buffer.oldest_ts, 1) if buffer.oldest_ts is not None else 0.0
        depth, central = await self._unsent_depth(buffer.depth)
        values: list[tuple[str, Value, str]] = [
            ("buffer.depth", depth, ""),
            ("buffer.oldest_age_s", age, "s"),
            ("buffer.bytes", buffer.file_bytes, "B"),
            ("buffer.dropped_total", buffer.dropped_total + buffer.dropped_in_memory, ""),
            ("buffer.held_in_memory", buffer.held_in_memory, ""),
            ("mqtt.connected", bool(link and link.connected), ""),
            ("mqtt.rejected_total", link.rejected_total if link else 0, ""),
            ("clock.suspect", bool(flags & 1), ""),
            ("clock.steps_total", self.clock.steps_seen, ""),
            ("tasks.restarts_total", self.supervisor.restarts_total, ""),
        ]
        if central is not None:
            values.append(("buffer.awaiting_ack", central, ""))
        return [Reading(AGENT_DEVICE, m, v, u, wall, flags) for m, v, u in values]

    async def _unsent_depth(self, depth: int) -> tuple[int, int | None]:
        """``buffer.depth`` and, with release on the central ack, the readings sent and awaiting
        it. The centre finds loss below a depth of 0, so with that release depth counts only
        readings not yet sent; counting those awaiting the ack would make the ack and the
        agent wait for each other (docs/mqtt.md)."""
        held = self.forwarder.held_for_central() if self.forwarder is not None else None
        if held is None or self.store is None:
            return depth, None
        unsent = await self.store.depth_outside(held)
        return unsent, max(self.store.depth() - unsent, 0)


def _max_bytes(cfg: AgentConfig) -> int:
    return int(cfg.buffer.max_mb * (1 << 20))


def _max_age_s(cfg: AgentConfig) -> float:
    return cfg.buffer.max_age_days * 86400


def _write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    os.replace(tmp, path)
