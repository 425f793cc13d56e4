"""One simulated clinic: the agent's own pipeline, built as agent.runtime.daemon builds it.

    DevicePoller x5 (SimSource) --submit--> StoreWriter --> ReadingStore (SQLite file, WAL, FULL)
                                                 ^  acks        | committed
                                                 '--- Forwarder -'--> MqttLink --> broker

The same classes, constructors and public methods as the daemon (``Forwarder(cfg, store, writer,
boot_id=...)``, ``StoreWriter(store, on_committed=...)``, ``DevicePoller(device, source, sink,
clock)``), under the agent's ``Supervisor``. Only the device sources are simulated, and the
store's worker thread may be shared (see ``PooledStore``). Left out: the control socket, remote
management, the agent's own health readings and the events engine (each clinic's agent has them;
they add little broker traffic).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agent.clock import ClockGuard
from agent.config import AgentConfig, parse_config
from agent.publish.forwarder import Forwarder
from agent.readings import DURATION_METRIC, STATUS_METRIC, Reading
from agent.runtime.poller import DevicePoller
from agent.runtime.supervisor import Supervisor
from agent.runtime.writer import StoreWriter
from agent.store.outbox import AsyncStore, ReadingStore
from fleetsim.devices import SimSource, backlog_polls, device_entries


class PooledStore(AsyncStore):
    """``AsyncStore`` on a thread shared with other clinics' stores.

    The agent gives each store its own thread; a thousand clinics in one process would be a
    thousand threads. Every call for one store still runs on one thread (the store is not
    thread-safe), in order: the pool is one single-thread executor per slot. This sets
    AsyncStore's ``_pool``: the one place the simulator reaches inside the agent's classes.
    """

    def __init__(self, store: ReadingStore, pool: ThreadPoolExecutor | None) -> None:
        super().__init__(store)
        if pool is not None:
            self._pool.shutdown(wait=False)   # never started a thread: threads start lazily
            self._pool = pool
            self._shared = True
        else:
            self._shared = False

    async def close(self) -> None:
        if not self._shared:
            await super().close()
            return
        await asyncio.get_running_loop().run_in_executor(self._pool, self._store.close)


def clinic_config(site: str, *, store_dir: Path, host: str, port: int, tls: bool,
                  ca_file: str | None, password: str, backlog_kbps: float,
                  interval_scale: float, extra_mqtt: dict[str, Any] | None = None,
                  release: str = "broker") -> AgentConfig:
    """The clinic's agent.toml, as a document through the agent's own parser."""
    state = store_dir / site
    mqtt: dict[str, Any] = {"host": host, "port": port, "tls": tls, "username": site,
                            "password": password, **(extra_mqtt or {})}
    if tls and ca_file:
        mqtt["ca_file"] = ca_file
    doc = {"site_id": site, "state_dir": str(state),
           "mqtt": mqtt,
           "buffer": {"path": str(state / "buffer.sqlite"), "backlog_kbps": backlog_kbps,
                      "release": release},
           "events": {"enabled": False},
           "devices": device_entries(interval_scale)}
    return parse_config(doc, source=f"fleet-sim {site}")


def for_site(template: AgentConfig, site: str, *, store_dir: Path,
             port: int | None = None) -> AgentConfig:
    """``template`` (parsed by ``clinic_config``) for another site: what its own agent.toml
    would give, without parsing the device profiles again for each of thousands of clinics
    (16 ms each: most of a worker's start-up)."""
    state = store_dir / site
    mqtt = dataclasses.replace(
        template.mqtt, username=site, client_id=f"clinic-agent-{site}",
        brokers=tuple(dataclasses.replace(b, port=port or b.port) for b in template.mqtt.brokers))
    return dataclasses.replace(
        template, site_id=site, state_dir=str(state), mqtt=mqtt,
        buffer=dataclasses.replace(template.buffer, path=str(state / "buffer.sqlite")),
        source=f"fleet-sim {site}")


class Clinic:
    def __init__(self, cfg: AgentConfig, *, seed: int, pool: ThreadPoolExecutor | None) -> None:
        self.cfg = cfg
        self.site = cfg.site_id
        self.seed = seed
        self.pool = pool
        self.boot_id = uuid.uuid4().hex[:16]
        self.store: PooledStore | None = None
        self.writer: StoreWriter | None = None
        self.forwarder: Forwarder | None = None
        self.supervisor = Supervisor()
        self.prefill_last_seq = 0
        self.prefilled = 0

    async def open(self, prefill_s: float = 0.0) -> None:
        """Open the clinic's buffer; with ``prefill_s``, store that much past polling in it first
        (the backlog of an outage that lasted that long)."""
        loop = asyncio.get_running_loop()
        Path(self.cfg.state_dir).mkdir(parents=True, exist_ok=True)
        buf = self.cfg.buffer
        store = await loop.run_in_executor(
            self.pool, lambda: ReadingStore.open(buf.path, max_bytes=int(buf.max_mb * (1 << 20)),
                                                 max_age_s=buf.max_age_days * 86400))
        if prefill_s > 0:
            readings = self._backlog(time.time() - prefill_s, time.time())
            first_last = await loop.run_in_executor(self.pool, store.commit, readings)
            self.prefill_last_seq = first_last[1]
            self.prefilled = len(readings)
        self.store = PooledStore(store, self.pool)

    def _backlog(self, start: float, end: float) -> list[Reading]:
        polls: list[tuple[float, str, list[Reading]]] = []
        for i, dev in enumerate(self.cfg.devices):
            for ts, samples in backlog_polls(dev.name, self.seed * 31 + i, start, end,
                                             dev.interval_s):
                rs = [Reading(dev.name, s.metric, s.value, s.unit, ts) for s in samples]
                rs.append(Reading(dev.name, STATUS_METRIC, "ok", "", ts))
                rs.append(Reading(dev.name, DURATION_METRIC, 0.012, "s", ts))
                polls.append((ts, dev.name, rs))
        polls.sort(key=lambda p: (p[0], p[1]))
        return [r for _, _, rs in polls for r in rs]

    def start(self, *, poll_phase_s: float) -> None:
        """Start the writer and the forwarder now, the pollers ``poll_phase_s`` later (clinics'
        clocks are spread: real clinics do not all poll in the same second)."""
        assert self.store is not None
        self.writer = StoreWriter(self.store, on_committed=self._committed)
        self.supervisor.start("writer", self.writer.run, stall_s=120)
        self.forwarder = Forwarder(self.cfg, self.store, self.writer, boot_id=self.boot_id)
        self.supervisor.start("forwarder", self.forwarder.run,
                              stall_s=self.forwarder.stall_limit_s())
        clock = ClockGuard()
        for i, device in enumerate(self.cfg.devices):
            poller = DevicePoller(device, SimSource(device.name, self.seed * 31 + i),
                                  self.writer.submit, clock)

            async def run(hb: Any, poller: DevicePoller = poller) -> None:
                await hb.sleep(poll_phase_s)
                await poller.run(hb)
            self.supervisor.start(f"poll:{device.name}", run,
                                  stall_s=poll_phase_s + poller.stall_limit_s())

    def _committed(self) -> None:
        if self.forwarder is not None:
            self.forwarder.notify()

    async def stop(self) -> None:
        await self.supervisor.close()
        if self.writer is not None:
            try:
                await self.writer.flush()
            except Exception:   # noqa: BLE001 - stopping: the store may be gone
                pass
        if self.store is not None:
            await self.store.close()

    def summary(self) -> dict[str, Any]:
        st = self.forwarder.state if self.forwarder is not None else None
        return {"site": self.site, "connected": bool(st and st.connected),
                "connects": st.connects if st else 0,
                "sent_readings": st.sent_readings if st else 0,
                "depth": self.store.depth() if self.store else 0,
                "prefill_last_seq": self.prefill_last_seq, "prefilled": self.prefilled,
                "restarts": self.supervisor.restarts_total}


def phase_for(seed: int, interval_s: float) -> float:
    return random.Random(seed).uniform(0, interval_s)
