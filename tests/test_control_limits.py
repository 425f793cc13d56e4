"""The control socket against hostile or careless clients: every request is bounded and answered,
and the socket's path never costs a file that is not a socket (docs/limits.md)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from agent.control import requests as limits
from agent.control.server import ControlClient
from fixtures.modbus import eventually, run
from test_control import CountingSource, ask, started, stopped


@pytest.mark.parametrize("kind", ["regular file", "symlink to the buffer"])
def test_a_file_that_is_not_a_socket_at_the_socket_path_is_never_deleted(tmp_path, caplog, kind):
    buffer = tmp_path / "buffer.sqlite"
    buffer.write_bytes(b"SQLite format 3\x00 readings not yet sent")
    path = tmp_path / "control.sock"
    if kind == "regular file":
        path.write_bytes(b"readings not yet sent")
    else:
        path.symlink_to(buffer)
    before = path.read_bytes()

    async def body():
        with caplog.at_level(logging.ERROR, logger="agent.control.server"):
            agent = await started(tmp_path, CountingSource())
        assert agent.control.path is None, "the agent runs on without a control socket"
        await stopped(agent)

    run(body())
    assert path.is_symlink() == (kind != "regular file")
    assert path.read_bytes() == before and buffer.exists()
    assert any("is not a socket" in r.getMessage() and "left alone" in r.getMessage()
               for r in caplog.records)


async def one_answer(path: str, line: bytes) -> dict:
    """Send one raw line; the answer, or fail if the agent closes without one."""
    reader, writer = await asyncio.open_unix_connection(path, limit=1 << 20)
    writer.write(line)
    await writer.drain()
    answer = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert answer, "the agent closed the connection without an answer"
    return json.loads(answer)


@pytest.mark.parametrize("line, message", [
    (b"[" * 3000 + b"]" * 3000 + b"\n", "nested deeper than 4 levels"),      # RecursionError
    (b'{"op": "status", "x": [[[[[1]]]]]}\n', "nested deeper than 4 levels"),
    (b'{"op": "status", "x": ' + b"9" * 5000 + b"}\n", "integer of more than 20 digits"),
    (b'{"op": "status", "x": ' + b"9" * 4000 + b"}\n", "integer of more than 20 digits"),
    (b'{"op": "status", "x": NaN}\n', "not a JSON object"),
    (b'{"op": ["status"]}\n', "op must be one of"),
    (b'{"op": "status", "error": "echo me"}\n', None),                 # once echoed as the answer
    (b"\xff\xfe{}\n", "not a JSON object"),
])
def test_every_malformed_request_gets_a_typed_answer_and_the_connection_goes_on(tmp_path, line,
                                                                                message):
    async def body():
        agent = await started(tmp_path, CountingSource())
        path = str(tmp_path / "control.sock")
        answer = await one_answer(path, line)
        if message is None:
            assert answer["ok"] is True
        else:
            assert answer["ok"] is False and answer["error"] in ("bad_request", "unknown_op")
            assert message in answer["message"]
        bad, status = await ask(path, line, b'{"op": "status"}\n')
        assert bad == answer and status["ok"], "the same connection still answers"
        await stopped(agent)
    run(body())


def test_a_request_longer_than_the_limit_is_answered_then_the_connection_closed(tmp_path):
    async def body():
        agent = await started(tmp_path, CountingSource())
        path = str(tmp_path / "control.sock")
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(b'{"op": "status", "x": "' + b"a" * limits.MAX_REQUEST_BYTES + b'"}\n')
        answer = json.loads(await asyncio.wait_for(reader.readline(), 5))
        assert answer["error"] == "bad_request" and "request too long" in answer["message"]
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        await stopped(agent)
    run(body())


def test_a_silent_connection_is_closed_after_the_idle_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "IDLE_TIMEOUT_S", 0.3)

    async def body():
        agent = await started(tmp_path, CountingSource())
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "control.sock"))
        answer = json.loads(await asyncio.wait_for(reader.readline(), 5))
        assert answer["error"] == "idle"
        assert await asyncio.wait_for(reader.read(), 5) == b""
        await eventually(lambda: not agent.control._clients, what="the connection to be let go")
        writer.close()
        await stopped(agent)
    run(body())


def test_the_cli_client_reconnects_after_the_agent_closed_its_idle_connection(tmp_path,
                                                                            monkeypatch):
    monkeypatch.setattr(limits, "IDLE_TIMEOUT_S", 0.3)

    async def body():
        agent = await started(tmp_path, CountingSource())
        client = ControlClient(str(tmp_path / "control.sock"), timeout=5)
        try:
            first = await asyncio.to_thread(client.request, "status")
            await eventually(lambda: not agent.control._clients, what="the idle close")
            second = await asyncio.to_thread(client.request, "status")   # e.g. doctor, later
        finally:
            client.close()
        assert first["site_id"] == second["site_id"] == "TEST001"
        await stopped(agent)
    run(body())


def test_connections_beyond_the_cap_are_answered_busy_and_closed(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_CLIENTS", 3)

    async def body():
        agent = await started(tmp_path, CountingSource())
        path = str(tmp_path / "control.sock")
        held = []
        for _ in range(3):
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b'{"op": "status"}\n')
            assert json.loads(await reader.readline())["ok"]
            held.append(writer)
        answer = await one_answer(path, b'{"op": "status"}\n')
        assert answer["error"] == "busy" and "3 connections" in answer["message"]
        held.pop().close()
        await eventually(lambda: len(agent.control._clients) < 3, what="a slot to free up")
        assert (await one_answer(path, b'{"op": "status"}\n'))["ok"]
        for writer in held:
            writer.close()
        await stopped(agent)
    run(body())

