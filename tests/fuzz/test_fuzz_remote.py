"""Fuzz: envelopes and commands from the broker. Any bytes on config/set or cmd, forged or signed
with hostile contents, are a typed decision (accepted, rejection, ignored) within time and memory,
and never change what the site's local file says."""

from __future__ import annotations

import copy

from hypothesis import given, strategies as st

from agent.remote.checks import Ignored, Rejection
from agent.remote.commands import CommandAccepted, check_command
from agent.remote.fleet import command_payload
from agent.remote.push import Accepted, check_push
from agent.remote.envelope import seal
from fuzz_budget import bounded, fuzz_settings
from test_remote_checks import NOW, _apply, _mutations, cctx, ctx, local, op  # noqa: F401 - fixtures
from toml_cases import config_texts

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=10)


@fuzz_settings(150)
@given(st.one_of(
    _mutations().map(lambda m: ("mutated", m)),
    config_texts().map(lambda t: ("signed config", t)),
    st.tuples(st.sampled_from(["poll_now", "diagnostics", "resend", "reboot"]),
              st.dictionaries(st.sampled_from(["device", "first_seq", "last_seq", "x"]),
                              json_values, max_size=3)).map(lambda c: ("signed command", c)),
))
def test_any_message_is_a_typed_decision(op, ctx, cctx, case):  # noqa: F811 - fixtures
    kind, body = case
    if kind == "mutated":
        data = _apply(body, op.push("[mqtt]\nhost = \"h\"\n", version=11, now=NOW), op.key)
    elif kind == "signed config":
        data = op.push(body, version=11, now=NOW)
    else:
        data = seal(command_payload(body[0], body[1], sites=["SITE001"], now=NOW), op.key)
    before = copy.deepcopy(ctx.local.doc)
    with bounded("remote message"):
        push = check_push(data, ctx)
        command = check_command(data, cctx)
    assert isinstance(push, (Accepted, Rejection, Ignored))
    assert isinstance(command, (CommandAccepted, Rejection, Ignored))
    assert ctx.local.doc == before, "the local config must never change"
    if isinstance(push, Rejection):
        assert len(push.problems) <= 200 and all(len(p) < 2000 for p in push.problems)
