"""The agent's control socket: a fixed list of requests, permission-restricted, never in the way.

Runs ``ControlServer`` in-process against real ``DevicePoller``s (with a source the test
controls) so on-demand polls can be checked for what matters: they are the poller's own, never
concurrent with a scheduled one, and a request made during a poll gets the next one.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from types import SimpleNamespace

import pytest

from agent.clock import ClockGuard
from agent.config import DeviceConfig
from agent.control.server import ControlClient, ControlServer, NotRunning
from agent.runtime.poller import DevicePoller
from agent.readings import Reading, Sample
from agent.control.api import PollOutcome, UnknownDevice
from agent.status import AgentStatus, BufferStatus, DeviceStatus
from fixtures.modbus import eventually, run


class CountingSource:
    """Answers one sample per poll, counting polls; ``gate`` (when set) holds a poll open."""

    name = "ups"

    def __init__(self) -> None:
        self.polls = 0
        self.running = 0
        self.most_at_once = 0
        self.gate: asyncio.Event | None = None

    async def read(self) -> list[Sample]:
        self.polls += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            return [Sample("battery.charge", self.polls, "%")]
        finally:
            self.running -= 1

    async def close(self) -> None:
        pass


class StubAgent:
    """An ``AgentControl`` over real pollers, without store or broker: what the server sees."""

    def __init__(self, cfg: object) -> None:
        self.config = cfg
        self.config_path = "/etc/clinic-agent/agent.toml"
        self.pollers: dict[str, DevicePoller] = {}
        self.tasks: list[asyncio.Task] = []
        self.committed: list[Reading] = []
        self._observers: list = []
        self.control = ControlServer(self)   # type: ignore[arg-type]

    def sink(self, readings: list[Reading]) -> None:
        for observer in self._observers:
            observer(readings)
        self.committed.extend(readings)

    def watch_readings(self, observer):
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    async def buffer_status(self) -> BufferStatus:
        return BufferStatus(depth=len(self.committed), first_seq=1, last_seq=len(self.committed),
                            oldest_ts=1.0, file_bytes=4096)

    async def status(self) -> AgentStatus:
        return AgentStatus(
            pid=os.getpid(), site_id="TEST001", boot_id="0" * 16, written_at=0.0, broker=None,
            buffer=await self.buffer_status(), remote={},
            devices={n: DeviceStatus(status=p.health.status, reason=p.health.reason,
                                     last_poll=p.health.last_poll, last_ok=p.health.last_ok,
                                     kind=p.device.kind, interval_s=p.device.interval_s,
                                     consecutive_failures=p.health.consecutive_failures)
                     for n, p in self.pollers.items()})

    async def poll_and_wait(self, device: str | None = None) -> list[PollOutcome]:
        pollers = [p for n, p in self.pollers.items() if device in (None, n)]
        if not pollers:
            raise UnknownDevice(f"no device named {device!r} is polled; devices: "
                                f"{', '.join(self.pollers)}")
        return [PollOutcome(p.device, await p.poll_soon()) for p in pollers]


def device(interval: float = 3600.0) -> DeviceConfig:
    return DeviceConfig(name="ups", kind="modbus", interval_s=interval, timeout_s=1.0, settings=None)


async def started(tmp_path, source: CountingSource, *, interval: float = 3600.0):
    cfg = SimpleNamespace(state_dir=str(tmp_path), control_socket="",
                          buffer=SimpleNamespace(path=str(tmp_path / "buffer.sqlite")), devices=())
    agent = StubAgent(cfg)
    poller = DevicePoller(device(interval), source, agent.sink, ClockGuard())
    agent.pollers["ups"] = poller
    agent.tasks.append(asyncio.create_task(poller.run()))
    await agent.control.start()
    await eventually(lambda: source.polls == 1, what="the first scheduled poll")
    return agent


async def stopped(agent: StubAgent) -> None:
    await agent.control.close()
    for task in agent.tasks:
        task.cancel()


async def ask(path: str, *lines: bytes) -> list[dict]:
    """Send raw request lines; read one answer line per request."""
    reader, writer = await asyncio.open_unix_connection(path)
    answers = []
    for line in lines:
        writer.write(line)
        await writer.drain()
        answers.append(json.loads(await reader.readline()))
    writer.close()
    return answers


def test_the_socket_is_group_only_and_answers_only_its_fixed_requests(tmp_path):
    async def body():
        agent = await started(tmp_path, CountingSource())
        path = str(tmp_path / "control.sock")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        status, nonsense, unknown, config, bad_device = await ask(
            path, b'{"op": "status"}\n', b"not json\n", b'{"op": "set_config"}\n',
            b'{"op": "poll_once", "device": 3}\n', b'{"op": "poll_once", "device": "nosuch"}\n')
        assert status["ok"] and status["result"]["site_id"] == "TEST001"
        assert status["result"]["devices"]["ups"]["kind"] == "modbus"
        assert nonsense == {"ok": False, "error": "bad_request", "message": "not a JSON object"}
        assert unknown["error"] == "unknown_op" and "status, poll_once, tail, buffer" in unknown["message"]
        assert config["error"] == "bad_request"
        assert bad_device["error"] == "unknown_device" and "ups" in bad_device["message"]
        [too_long] = await ask(path, b'{"op": "status", "x": "' + b"a" * 70_000 + b'"}\n')
        assert too_long["error"] == "bad_request"
        [buffer] = await ask(path, b'{"op": "buffer"}\n')
        assert buffer["result"]["depth"] == len(agent.committed)
        await stopped(agent)
        assert not os.path.exists(path), "closing removes the socket"
    run(body())


def test_poll_once_is_the_pollers_own_next_poll_never_a_concurrent_one(tmp_path):
    async def body():
        source = CountingSource()
        agent = await started(tmp_path, source)
        path = str(tmp_path / "control.sock")
        [answer] = await ask(path, b'{"op": "poll_once", "device": "ups"}\n')
        [ups] = answer["result"]
        assert ups["status"] == "ok" and source.polls == 2
        assert {"metric": "battery.charge", "value": 2, "unit": "%"} in ups["readings"]
        assert [r.value for r in agent.committed if r.metric == "battery.charge"] == [1, 2], \
            "stored like any other poll"

        # Asked while a poll is running: the answer is the poll after it, not the running one.
        source.gate = asyncio.Event()
        poller = agent.pollers["ups"]
        poller.poll_now.set()
        await eventually(lambda: source.running == 1, what="a poll to be in progress")
        asking = asyncio.ensure_future(ask(path, b'{"op": "poll_once"}\n'))
        await asyncio.sleep(0.05)
        source.gate.set()
        [answer] = await asking
        assert answer["result"][0]["readings"][0]["value"] == 4
        assert source.most_at_once == 1, "never two polls of one device at once"
        await stopped(agent)
    run(body())


def test_tail_streams_polls_and_a_slow_or_gone_watcher_never_blocks_the_agent(tmp_path):
    async def body():
        source = CountingSource()
        agent = await started(tmp_path, source, interval=0.05)
        path = str(tmp_path / "control.sock")
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(b'{"op": "tail", "devices": ["ups"]}\n')
        assert json.loads(await reader.readline()) == {"ok": True, "result": "streaming"}
        seen = [json.loads(await reader.readline())["reading"] for _ in range(6)]
        assert {r["device"] for r in seen} == {"ups"}
        assert {"battery.charge", "poll.status", "poll.duration_s"} <= {r["metric"] for r in seen}
        writer.close()
        await eventually(lambda: not agent.control._tails, what="the watcher to be forgotten")
        polls = source.polls
        await eventually(lambda: source.polls > polls + 3, what="polls to go on")
        await stopped(agent)
    run(body())


def test_a_stale_socket_is_replaced_and_a_live_one_is_left_alone(tmp_path):
    async def body():
        path = tmp_path / "control.sock"
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(str(path))
        stale.close()   # a killed agent leaves its socket file behind
        agent = await started(tmp_path, CountingSource())
        [status] = await ask(str(path), b'{"op": "status"}\n')
        assert status["ok"]

        second = await started(tmp_path, CountingSource())
        assert second.control.path is None, "a second agent does not steal the first one's socket"
        [status] = await ask(str(path), b'{"op": "status"}\n')
        assert status["ok"]
        await stopped(second)
        assert path.exists(), "and closing it does not remove the first one's socket"
        await stopped(agent)
    run(body())


def test_the_client_tells_not_running_from_no_permission(tmp_path):
    assert ControlClient.connect(str(tmp_path / "none.sock")) is None
    with pytest.raises(NotRunning):
        ControlClient(str(tmp_path / "none.sock"))


def test_the_socket_path_is_a_config_key_defaulting_to_the_state_dir():
    from agent.config import parse_config
    from agent.control.server import socket_path
    from agent.errors import ConfigError
    base = {"site_id": "TEST001", "state_dir": "/var/lib/clinic-agent",
            "mqtt": {"host": "127.0.0.1", "tls": False}}
    assert socket_path(parse_config(base)) == "/var/lib/clinic-agent/control.sock"
    moved = parse_config({**base, "control_socket": "/run/clinic-agent/control.sock"})
    assert socket_path(moved) == "/run/clinic-agent/control.sock"
    with pytest.raises(ConfigError) as err:
        parse_config({**base, "control_socket": "control.sock"})
    assert err.value.problems[0].startswith("control_socket: expected an absolute path")
