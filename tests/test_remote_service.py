"""Pieces of remote management without a broker: resend from a real buffer, the commit-confirmed
wait, the fleet view's reading of what sites publish, and the state file's durability."""

from __future__ import annotations

import asyncio
import json
import time
import tomllib
from types import SimpleNamespace

import pytest

from helpers import run
from agent.config import parse_config
from agent.readings import Reading
from agent.remote.confirm import commit_confirmed, wait_for_broker
from agent.remote.fleet import FleetView, format_table
from agent.remote.service import RemoteService
from agent.remote.state import RemoteState, StateStore
from agent.store.outbox import AsyncStore, ReadingStore
from agent.publish.wire import decode_payload, encode_batch, iter_readings
from agent.readings import StoredReading
from remote_support import Operator, site_config


class FakeLink:
    """Records publishes; every one is acknowledged at once."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, bool]] = []

    def publish(self, topic, payload, *, retain=False, content_type=None):
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        self.published.append((topic, payload, retain))
        return fut


class ResendingAgent:
    """The part of ``AgentControl`` a resend command uses; the forwarder's answer is given."""

    def __init__(self, cfg, link: FakeLink) -> None:
        self.config = cfg
        self.config_path = None
        self.link = link
        self.asked: list[tuple[int, int]] = []

    def device_names(self):
        return frozenset({"pc"})

    def request_resend(self, first, last):
        from agent.publish.forwarder import ResendResult
        self.asked.append((first, last))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(ResendResult(first, last, resent=6, not_in_buffer=4))
        return fut

    def publish(self, topic, payload, *, retain=False):
        return self.link.publish(topic, payload, retain=retain)


def test_a_resend_command_goes_through_the_forwarder_and_its_outcome_is_published(tmp_path):
    op = Operator(tmp_path)
    cfg = parse_config(tomllib.loads(site_config(state_dir=tmp_path / "state", port=1883,
                                                 keys_dir=op.keys_dir)))
    link = FakeLink()
    agent = ResendingAgent(cfg, link)

    async def scenario():
        service = RemoteService(agent)
        await service._handle_command(op.command("resend", {"first_seq": 3, "last_seq": 12}))

    run(scenario())
    assert agent.asked == [(3, 12)], "the resend is the forwarder's (its budget), not a side path"
    assert not [t for t, _, _ in link.published if t.endswith("/backlog")]
    result = [json.loads(p) for t, p, _ in link.published if t == "clinics/SITE001/cmd/result"]
    assert result[-1]["ok"] is True
    assert result[-1]["result"] == {"first_seq": 3, "last_seq": 12, "resent": 6, "not_in_buffer": 4}


# -- commit-confirmed --------------------------------------------------------------------------

def test_confirmed_as_soon_as_the_broker_is_reached():
    async def scenario():
        wake, connected, reverted = asyncio.Event(), [], []

        async def apply():
            asyncio.get_running_loop().call_later(0.05, lambda: (connected.append(1), wake.set()))

        async def revert(why):
            reverted.append(why)
        start = time.monotonic()
        ok = await commit_confirmed(apply=apply, revert=revert, reached=lambda: bool(connected),
                                    wake=wake, timeout_s=10)
        return ok, reverted, time.monotonic() - start
    ok, reverted, took = run(scenario())
    assert ok and not reverted and took < 5


def test_reverted_when_the_broker_is_not_reached_in_time():
    async def scenario():
        wake, reverted = asyncio.Event(), []

        async def apply():
            wake.set()                     # woken, but still not connected: keep waiting

        async def revert(why):
            reverted.append(why)
        ok = await commit_confirmed(apply=apply, revert=revert, reached=lambda: False, wake=wake,
                                    timeout_s=0.2)
        return ok, reverted
    assert run(scenario()) == (False, [None])


def test_reverted_at_once_when_the_config_cannot_even_be_applied():
    async def scenario():
        reverted = []

        async def apply():
            raise OSError("serial port vanished")

        async def revert(why):
            reverted.append(why)
        ok = await commit_confirmed(apply=apply, revert=revert, reached=lambda: True,
                                    wake=asyncio.Event(), timeout_s=60)
        return ok, reverted
    assert run(scenario()) == (False, ["could not apply it: OSError: serial port vanished"])


def test_a_wake_up_between_looking_and_waiting_is_not_lost():
    async def scenario():
        wake, state = asyncio.Event(), {"n": 0}

        def reached():
            state["n"] += 1
            if state["n"] == 1:
                wake.set()                 # the connection comes right after the first look
                return False
            return True
        return await wait_for_broker(reached, wake, 5)
    assert run(scenario()) is True


# -- the fleet view ----------------------------------------------------------------------------

def _batch(site: str, rows: list[tuple[int, str, str, object]]) -> bytes:
    stored = [StoredReading(seq, dev, metric, value, "", 1.8e9) for seq, dev, metric, value in rows]
    return encode_batch(stored, site=site, boot="0123456789abcdef", compress=True).payload


def test_fleet_view_reports_each_site_from_what_it_publishes():
    view = FleetView("clinics")
    now = 1.8e9
    view.observe("clinics/A1/status", b'{"state":"online","boot":"x","version":"1","ts":1799999990}',
                 retained=True, now=now)
    view.observe("clinics/A1/config/state", json.dumps({
        "v": 1, "ts": 1799999980, "state": "applied", "config": {"source": "push", "version": 7},
        "event": {"type": "applied", "version": 7}}).encode(), retained=True, now=now)
    view.observe("clinics/A1/readings", _batch("A1", [
        (10, "agent", "buffer.depth", 42), (11, "ups", "poll.status", "timeout"),
        (12, "ups", "poll.reason", "no answer from 10.0.0.5:502"), (13, "router", "poll.status", "ok")]),
        retained=False, now=now)
    view.observe("clinics/A1/backlog", _batch("A1", [(2, "agent", "buffer.depth", 9000)]),
                 retained=False, now=now)   # older than seq 10: not the latest
    view.observe("clinics/B2/status", b'{"state":"offline","boot":"y","version":"1"}', retained=True, now=now)
    view.observe("clinics/B2/config/state", json.dumps({
        "v": 1, "ts": 1799990000, "state": "local", "config": {"source": "local"},
        "event": {"type": "rolled_back", "version": 8, "detail": "could not reach the broker"}}).encode(),
        retained=True, now=now)
    view.observe("clinics/C3/readings", b"garbage", retained=False, now=now)
    view.observe("clinics/_fleet/x/sync", b"sync", retained=False, now=now)

    rows = {r["site"]: r for r in view.rows()}
    a, b = rows["A1"], rows["B2"]
    assert (a["state"], a["config_version"], a["backlog"], a["last_seen"]) == ("online", 7, 42, now)
    assert a["problems"] == ["ups: timeout (no answer from 10.0.0.5:502)"]
    assert b["state"] == "offline" and b["config_source"] == "local" and b["backlog"] is None
    assert b["problems"] == ["config push v8 rolled back: could not reach the broker"]
    assert view.ignored == 1 and "_fleet" not in rows
    table = format_table(view.rows(), now=now)
    a_line = next(line for line in table.splitlines() if line.startswith("A1"))
    assert a_line.split()[:6] == ["A1", "online", "0s", "ago", "v7", "42"]
    # Something unreadable was published for C3: listed, as unknown, rather than hidden.
    assert rows["C3"]["state"] == "unknown"


def test_fleet_view_waits_only_for_online_sites_health():
    view = FleetView()
    view.observe("clinics/A1/status", b'{"state":"online","boot":"x","version":"1"}', retained=True, now=0)
    view.observe("clinics/B2/status", b'{"state":"offline","boot":"x","version":"1"}', retained=True, now=0)
    assert view.waiting_for_health()
    view.observe("clinics/A1/readings", _batch("A1", [(1, "agent", "buffer.depth", 0)]), retained=False, now=0)
    assert not view.waiting_for_health()


# -- the state file ----------------------------------------------------------------------------

def test_state_updates_are_atomic_and_unreferenced_configs_are_pruned(tmp_path):
    store = StateStore(tmp_path)
    store.write_config("remote/v1.toml", "a = 1\n")
    store.write_config("remote/v2.toml", "a = 2\n")
    store.update(lambda s: setattr(s, "active", {"version": 2, "file": "remote/v2.toml"}))
    assert not (tmp_path / "remote" / "v1.toml").exists()
    assert store.read_config("remote/v2.toml") == "a = 2\n"
    assert store.read_config("../../etc/passwd") is None
    assert not list(tmp_path.glob("**/*.tmp"))


def test_an_unreadable_state_file_is_kept_aside_not_silently_reset(tmp_path):
    (tmp_path / "remote_state.json").write_text("{not json")
    state = StateStore(tmp_path).load()
    assert state == RemoteState()
    assert list(tmp_path.glob("remote_state.json.bad-*"))


@pytest.mark.parametrize("doc", [[], {"highest_version": "9", "handled": "x", "bogus": 1,
                                      "commands_seen": ["c1"]}])
def test_a_state_file_of_the_wrong_shape_is_tolerated(tmp_path, doc):
    (tmp_path / "remote_state.json").write_text(json.dumps(doc))
    state = StateStore(tmp_path).load()
    assert state.highest_version == 0 and state.handled == [] and state.commands_seen == {}


def test_commands_are_remembered_until_they_expire_and_survive_a_reload(tmp_path):
    store = StateStore(tmp_path)
    store.update(lambda s: s.remember_command("old", not_after=100.0, now=50.0))
    store.update(lambda s: s.remember_command("new", not_after=300.0, now=200.0))
    doc = json.loads((tmp_path / "remote_state.json").read_text())
    assert doc["commands_seen"] == {"new": 300.0}
    doc["commands_seen"].update(bad="x", worse=True)          # hand-edited: ignored, not fatal
    (tmp_path / "remote_state.json").write_text(json.dumps(doc))
    assert StateStore(tmp_path).load().commands_seen == {"new": 300.0}   # "old" expired at 100
