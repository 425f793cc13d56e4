"""A flood on the agent's subscriptions: bounded queue, bounded work, rate-limited replies.

In process, against ``RemoteService`` with a link that records publishes (the real broker case is
tests/test_remote_agent.py::test_a_flood_of_refused_commands_...).
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from types import SimpleNamespace

from helpers import run
from agent.config import parse_config
from agent.remote import service as service_mod
from agent.remote.envelope import seal
from agent.remote.fleet import command_payload
from agent.remote.inbox import Inbox
from agent.remote.ratelimit import RateLimiter
from agent.remote.service import RemoteService
from remote_support import Operator, site_config, stranger_key
from test_remote_service import FakeLink

FLOOD = 5000


def service_for(tmp_path) -> tuple[RemoteService, FakeLink, Operator]:
    op = Operator(tmp_path)
    cfg = parse_config(tomllib.loads(site_config(state_dir=tmp_path / "state", port=1883,
                                                 keys_dir=op.keys_dir)))
    link = FakeLink()
    polled: list[str | None] = []

    def poll_now(device):
        polled.append(device)
        return ["pc"] if device in (None, "pc") else []
    agent = SimpleNamespace(config=cfg, config_path=None, device_names=lambda: frozenset({"pc"}),
                            poll_now=poll_now, polled=polled,
                            publish=lambda topic, payload, retain=False: link.publish(
                                topic, payload, retain=retain))
    return RemoteService(agent), link, op


def results(link: FakeLink) -> list[dict]:
    return [json.loads(p) for t, p, _ in link.published if t.endswith("/cmd/result")]


def test_a_flood_of_refused_commands_is_bounded_in_tasks_queue_and_replies(tmp_path):
    service, link, op = service_for(tmp_path)
    forged = seal(command_payload("poll_now", {}, sites=["SITE001"]), stranger_key())

    async def scenario():
        before = len(asyncio.all_tasks())
        for _ in range(FLOOD):                  # as fast as paho could hand them over
            service._command_received("clinics/SITE001/cmd", forged)
        tasks_during_flood = len(asyncio.all_tasks()) - before
        queued = service._commands.queued
        await asyncio.wait_for(_drained(service), 30)
        # A genuine command after the flood is still carried out.
        genuine = command_payload("poll_now", {"device": "pc"}, sites=["SITE001"])
        service._command_received("clinics/SITE001/cmd", seal(genuine, op.key))
        await asyncio.wait_for(_answered(link, genuine["id"]), 10)
        await service.close()
        return tasks_during_flood, queued

    tasks_during_flood, queued = run(scenario())
    assert tasks_during_flood <= service_mod.COMMAND_WORKERS, "no task per message"
    assert queued <= service_mod.COMMAND_QUEUE
    refused = [r for r in results(link) if r["ok"] is False]
    assert refused and all(r["reason"] == "bad_signature" for r in refused)
    assert len(refused) <= service_mod.REPLY_BURST + 1, "replies to refused commands are limited"
    assert service._commands.dropped >= FLOOD - service_mod.COMMAND_QUEUE - \
        service_mod.COMMAND_WORKERS
    assert service.agent.polled == ["pc"]


async def _drained(service: RemoteService) -> None:
    while service._commands.queued:
        await asyncio.sleep(0.01)


async def _answered(link: FakeLink, command_id: str) -> None:
    while not any(r.get("id") == command_id and r["ok"] for r in results(link)):
        await asyncio.sleep(0.01)


def test_a_failing_handler_does_not_stop_the_inbox():
    handled: list[bytes] = []

    async def handler(payload: bytes) -> None:
        if payload == b"boom":
            raise RuntimeError("a bug")
        handled.append(payload)

    async def scenario():
        inbox = Inbox(handler, name="test", capacity=4, max_queued_bytes=100)
        assert inbox.offer(b"boom") and inbox.offer(b"next")
        while len(handled) < 1:
            await asyncio.sleep(0.01)
        # By bytes: one message of any size is taken when the queue is empty, not a second.
        big = b"x" * 200
        while inbox.queued:
            await asyncio.sleep(0.01)
        first, second = inbox.offer(big), inbox.offer(big)
        await inbox.close()
        return first, second, inbox.dropped
    first, second, dropped = run(scenario())
    assert handled[0] == b"next"
    assert (first, second, dropped) == (True, False, 1)


def test_the_rate_limiter_allows_a_burst_then_one_per_period():
    now = [0.0]
    limiter = RateLimiter(burst=3, every_s=10, clock=lambda: now[0])
    assert [limiter.allow() for _ in range(5)] == [True, True, True, False, False]
    now[0] = 10.0
    assert [limiter.allow(), limiter.allow()] == [True, False]
    now[0] = 1000.0
    assert sum(limiter.allow() for _ in range(10)) == 3
    assert limiter.suppressed == 10
