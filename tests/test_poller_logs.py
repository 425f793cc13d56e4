"""The journal a technician reads: one line per event, the device named, a failure said once and
its recovery once, however long it lasts or however its wording changes."""

from __future__ import annotations

import asyncio
import logging

from agent.clock import ClockGuard
from agent.config import DeviceConfig
from agent.errors import DeviceRefused, DeviceTimeout
from agent.runtime.poller import DevicePoller
from agent.readings import Sample
from fixtures.modbus import eventually, run


class ScriptedSource:
    """Fails or answers as the test says; ``delay`` makes each poll that long."""

    name = "ups"

    def __init__(self) -> None:
        self.failure: Exception | None = None
        self.delay = 0.0
        self.polls = 0

    async def read(self) -> list[Sample]:
        self.polls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failure is not None:
            raise self.failure
        return [Sample("battery.charge", 100, "%")]

    async def close(self) -> None:
        pass


def _sink(readings) -> None:
    pass


def poller_lines(caplog) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records
            if r.name == "agent.runtime.poller" and r.levelno >= logging.INFO]


def test_a_long_failure_is_one_line_and_its_recovery_another(caplog):
    caplog.set_level(logging.DEBUG, logger="agent.runtime.poller")
    source = ScriptedSource()
    poller = DevicePoller(DeviceConfig("ups", "modbus", 10, 1, None), source, _sink, ClockGuard())

    async def body():
        await poller.poll()
        for i in range(5):   # the wording changes at every poll (bytes quoted, counters...)
            source.failure = DeviceTimeout(f"timeout: no answer from unit 1 (attempt {i})")
            await poller.poll()
        source.failure = DeviceRefused("nothing listening at 10.0.0.5:502")
        await poller.poll()
        await poller.poll()
        source.failure = None
        await poller.poll()
        await poller.poll()
    run(body())
    assert poller_lines(caplog) == [
        ("WARNING", "ups: timeout: timeout: no answer from unit 1 (attempt 0)"),
        ("WARNING", "ups: refused: nothing listening at 10.0.0.5:502"),
        ("INFO", "ups: answering again after 7 failed poll(s)"),
    ]
    still = [r for r in caplog.records if r.levelno == logging.DEBUG and "still" in r.getMessage()]
    assert len(still) == 5, "the repeats stay available at debug level"
    assert all("\n" not in r.getMessage() for r in caplog.records)


def test_overruns_are_said_once_per_streak(caplog):
    caplog.set_level(logging.DEBUG, logger="agent.runtime.poller")
    source = ScriptedSource()
    source.delay = 0.12
    poller = DevicePoller(DeviceConfig("meter", "modbus", 0.05, 0.05, None), source, _sink,
                          ClockGuard())

    async def body():
        task = asyncio.create_task(poller.run())
        await eventually(lambda: source.polls >= 4, timeout=5, what="several slow polls")
        source.delay = 0
        polls = source.polls
        await eventually(lambda: source.polls >= polls + 3, timeout=5, what="polls on time")
        task.cancel()
    run(body())
    lines = poller_lines(caplog)
    warnings = [m for level, m in lines if level == "WARNING"]
    assert len(warnings) == 1 and warnings[0].startswith("meter: poll took longer than its 0.05s")
    assert ("INFO", "meter: polls fit in their 0.05s interval again") in lines
