"""Fuzz: control requests. Any line on the control socket is a request or a typed refusal
(bad_request, unknown_op), within time and memory; a live server answers every one."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

from hypothesis import given, strategies as st

from agent.control.requests import MAX_REQUEST_BYTES, BadRequest, parse_request
from fixtures.modbus import run
from fuzz_budget import bounded, fuzz_settings
from test_control import CountingSource, started, stopped

json_docs = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12)

requests = st.one_of(
    st.binary(max_size=600),
    json_docs.map(lambda d: json.dumps(d).encode()),
    st.fixed_dictionaries({"op": st.sampled_from(["status", "buffer", "poll_once", "tail", "x"])},
                          optional={"device": json_docs, "devices": json_docs}).map(
        lambda d: json.dumps(d).encode()),
    st.tuples(st.integers(1, 4000), st.sampled_from([b"[", b'{"a":'])).map(
        lambda t: t[1] * t[0]),
    st.integers(1, 8000).map(lambda n: b'{"op": "status", "n": ' + b"9" * n + b"}"),
)


@fuzz_settings(400)
@given(requests)
def test_any_line_is_a_request_or_a_typed_refusal(line):
    line = line.replace(b"\n", b" ")[:MAX_REQUEST_BYTES]
    with bounded("control request"):
        try:
            request = parse_request(line)
        except BadRequest as exc:
            assert exc.code in ("bad_request", "unknown_op") and exc.message
            return
    assert request["op"] in ("status", "poll_once", "tail", "buffer")


@fuzz_settings(10)
@given(st.lists(requests.filter(lambda r: not r.startswith(b'{"op": "tail"')), min_size=1,
                max_size=5))
def test_a_live_server_answers_every_line_with_one_json_answer(lines):
    async def body(tmp: Path) -> list[dict]:
        agent = await started(tmp, CountingSource())
        reader, writer = await asyncio.open_unix_connection(str(tmp / "control.sock"))
        answers = []
        for line in lines:
            line = line.replace(b"\n", b" ")[:MAX_REQUEST_BYTES - 1]
            if b'"tail"' in line:
                continue         # a tail streams until the client hangs up
            writer.write(line + b"\n")
            await writer.drain()
            answers.append(json.loads(await asyncio.wait_for(reader.readline(), 5)))
        writer.close()
        await stopped(agent)
        return answers

    with tempfile.TemporaryDirectory() as tmp, bounded("control session", seconds=10, mib=64):
        answers = run(body(Path(tmp)))
    for answer in answers:
        assert answer["ok"] is True or answer["error"] in ("bad_request", "unknown_op",
                                                           "unknown_device")
