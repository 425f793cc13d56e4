"""Config pushes and remote commands, checked by pure functions: bytes in, decision out.

No broker here: each rejection reason, the order of the checks, what a push inherits from the
site's local file, and a fuzz of both handlers with random and mutated envelopes.
"""

from __future__ import annotations

import base64
import copy
import json
import tomllib
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from agent.config import parse_config
from agent.errors import ConfigError
from agent.remote.checks import Ignored, Reason, Rejection
from agent.remote.commands import (CommandAccepted, CommandContext, Diagnostics, PollNow, Resend,
                                   check_command)
from agent.remote.envelope import canonical_json, load_trusted_keys, seal
from agent.remote.fleet import config_payload
from agent.remote.push import Accepted, LocalBasis, PushContext, check_push
from remote_support import Operator, pushed_config, site_config, stranger_key

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def op(tmp_path_factory):
    return Operator(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def local(op):
    text = site_config(state_dir="/var/lib/clinic-agent", port=1883, password="site-secret",
                       keys_dir=op.keys_dir, confirm_timeout_s=30)
    return LocalBasis(tomllib.loads(text), None, "agent.toml", text)


@pytest.fixture(scope="module")
def ctx(op, local):
    keys, problems = load_trusted_keys(op.keys_dir)
    assert not problems and op.key_id in keys
    return PushContext(site_id="SITE001", now=NOW, trusted_keys=keys, max_bytes=64 * 1024,
                       highest_version=10, handled=frozenset(), local=local, confirm_timeout_s=30)


GOOD = pushed_config(port=1883, interval=5)


def rejected(decision, reason: Reason) -> Rejection:
    assert isinstance(decision, Rejection), decision
    assert decision.reason is reason, decision
    return decision


# -- config pushes: acceptance ---------------------------------------------------------------------

def test_a_good_push_is_accepted_with_its_meta(op, ctx):
    data = op.push(GOOD, version=11, now=NOW)
    d = check_push(data, ctx)
    assert isinstance(d, Accepted)
    assert d.meta.version == 11 and d.meta.key_id == op.key_id and d.text == GOOD
    assert d.config.devices[0].interval_s == 5


def test_a_push_inherits_site_identity_state_dir_remote_and_credentials(op, ctx):
    d = check_push(op.push(GOOD, version=11, now=NOW), ctx)
    assert d.config.site_id == "SITE001"
    assert d.config.state_dir == "/var/lib/clinic-agent"
    assert d.config.remote.confirm_timeout_s == 30
    assert d.config.mqtt.username == "SITE001"
    assert d.config.mqtt.password.reveal() == "site-secret"


def test_secrets_come_from_the_sites_secrets_file(op, ctx, local):
    with_secrets = replace(local, secrets={"mqtt": {"password": "from-secrets"}})
    d = check_push(op.push(GOOD, version=11, now=NOW), replace(ctx, local=with_secrets))
    assert d.config.mqtt.password.reveal() == "from-secrets"


def test_one_push_can_address_many_sites(op, ctx):
    d = check_push(op.push(GOOD, sites=("SITE009", "SITE001", "SITE002"), version=11, now=NOW), ctx)
    assert isinstance(d, Accepted)


# -- config pushes: one test per rejection reason -------------------------------------------------

def test_too_large(op, ctx):
    big = GOOD + "#" * 70_000 + "\n"
    rej = rejected(check_push(op.push(big, version=11, now=NOW), ctx), Reason.TOO_LARGE)
    assert "at most 65536" in rej.detail


@pytest.mark.parametrize("data", [b"not json", b"[]", b'{"v":1}', b'{"v": NaN}', b"\xff\xfe", b"[" * 5000 + b"]" * 5000])
def test_malformed(ctx, data):
    rejected(check_push(data, ctx), Reason.MALFORMED)


def test_malformed_duplicate_fields_are_refused(op, ctx):
    env = json.loads(op.push(GOOD, version=11, now=NOW))
    text = json.dumps(env)[:-1] + ', "sig": "' + env["sig"] + '"}'
    rejected(check_push(text.encode(), ctx), Reason.MALFORMED)


def test_a_command_envelope_is_not_a_config_push(op, ctx):
    rej = rejected(check_push(op.command("diagnostics", now=NOW), ctx), Reason.MALFORMED)
    assert "kind" in rej.detail


def test_bad_signature_unknown_key(ctx):
    data = seal(config_payload(GOOD, sites=["SITE001"], version=11, valid_for_s=60, now=NOW),
                stranger_key())
    rej = rejected(check_push(data, ctx), Reason.BAD_SIGNATURE)
    assert "not among this site's 1 trusted key" in rej.detail


def test_bad_signature_content_changed_after_signing(op, ctx):
    env = json.loads(op.push(GOOD, version=11, now=NOW))
    payload = json.loads(base64.b64decode(env["payload"]))
    payload["config"] = payload["config"].replace("interval_s = 5", "interval_s = 1")
    env["payload"] = base64.b64encode(canonical_json(payload)).decode()
    rej = rejected(check_push(json.dumps(env).encode(), ctx), Reason.BAD_SIGNATURE)
    assert "does not match" in rej.detail


def test_wrong_site(op, ctx):
    rej = rejected(check_push(op.push(GOOD, sites=("SITE002",), version=11, now=NOW), ctx),
                   Reason.WRONG_SITE)
    assert "SITE002" in rej.detail and "SITE001" in rej.detail


def test_expired(op, ctx):
    data = op.push(GOOD, version=11, valid_for_s=60, now=NOW - 120)
    rej = rejected(check_push(data, ctx), Reason.EXPIRED)
    assert "valid until" in rej.detail


@pytest.mark.parametrize("version", [1, 10])
def test_replay_of_an_older_or_the_applied_version(op, ctx, version):
    rej = rejected(check_push(op.push(GOOD, version=version, now=NOW), ctx), Reason.REPLAY)
    assert rej.version == version and "not newer than version 10" in rej.detail


def test_invalid_config_reports_parse_config_problems_by_key_path(op, ctx):
    bad = GOOD.replace("port = 1883", 'port = "1883a"').replace('kind = "host"', 'kind = "hots"')
    rej = rejected(check_push(op.push(bad, version=11, now=NOW), ctx), Reason.INVALID_CONFIG)
    assert any(p.startswith("mqtt.port: expected an integer") for p in rej.problems), rej.problems
    assert any(p.startswith("devices[0].kind: expected one of") for p in rej.problems), rej.problems


def test_invalid_config_same_problems_as_the_local_file(op, ctx, local):
    bad_doc = dict(local.doc, mqtt={**local.doc["mqtt"], "keepalive_s": "often"})
    with pytest.raises(ConfigError) as local_error:
        parse_config(bad_doc)
    bad = GOOD.replace("keepalive_s = 5", 'keepalive_s = "often"')
    rej = rejected(check_push(op.push(bad, version=11, now=NOW), ctx), Reason.INVALID_CONFIG)
    assert list(rej.problems) == local_error.value.problems


def test_invalid_config_toml_syntax(op, ctx):
    rej = rejected(check_push(op.push("[mqtt\nhost=", version=11, now=NOW), ctx), Reason.INVALID_CONFIG)
    assert rej.problems[0] == "line 1: the section name is not closed with ]; write [mqtt]"


@pytest.mark.parametrize("line, word", [
    ('site_id = "SITE002"', "site_id"),
    ('state_dir = "/tmp/elsewhere"', "state_dir"),
    ('secrets_file = "/tmp/mine.toml"', "secrets_file"),
    # The agent removes a stale socket at its path at start: a push must not aim it at the buffer.
    ('control_socket = "/var/lib/clinic-agent/buffer.sqlite"', "control_socket"),
])
def test_a_push_cannot_change_what_only_the_site_sets(op, ctx, line, word):
    rej = rejected(check_push(op.push(line + "\n" + GOOD, version=11, now=NOW), ctx),
                   Reason.INVALID_CONFIG)
    assert any(p.startswith(f"{word}: set in the site's local file only") for p in rej.problems)


def test_a_push_cannot_move_the_buffer_file(op, ctx, local):
    text = GOOD + '\n[buffer]\npath = "/tmp/elsewhere.sqlite"\nmax_mb = 50\n'
    rej = rejected(check_push(op.push(text, version=11, now=NOW), ctx), Reason.INVALID_CONFIG)
    assert rej.problems == ("buffer.path: set in the site's local file only; a push cannot change it",)
    site_buffer = dict(local.doc, buffer={"path": "/data/buffer.sqlite"})
    accepted = check_push(op.push(GOOD, version=11, now=NOW), replace(ctx, local=replace(local, doc=site_buffer)))
    assert accepted.config.buffer.path == "/data/buffer.sqlite"


def test_a_push_cannot_change_the_remote_table(op, ctx):
    text = GOOD + '\n[remote]\ntrusted_keys_dir = "/tmp/evil"\n'
    rej = rejected(check_push(op.push(text, version=11, now=NOW), ctx), Reason.INVALID_CONFIG)
    assert any(p.startswith("[remote]: set in the site's local file only") for p in rej.problems)


def test_a_push_never_carries_credentials_and_never_echoes_them(op, ctx):
    text = GOOD.replace("[mqtt]\n", '[mqtt]\nusername = "x"\npassword = "hunter2"\n')
    rej = rejected(check_push(op.push(text, version=11, now=NOW), ctx), Reason.INVALID_CONFIG)
    assert any(p.startswith("mqtt.password: credentials are never pushed") for p in rej.problems)
    assert "hunter2" not in json.dumps(rej.to_dict())


def test_a_connect_timeout_longer_than_the_confirm_window_is_refused(op, ctx):
    text = GOOD.replace("connect_timeout_s = 1", "connect_timeout_s = 60")
    rej = rejected(check_push(op.push(text, version=11, now=NOW), ctx), Reason.INVALID_CONFIG)
    assert "would always be rolled back" in rej.problems[0]


# -- config pushes: order and idempotence ---------------------------------------------------------

def test_checks_run_in_the_documented_order(op, ctx):
    """Each envelope fails several checks; the first in the order is the one reported."""
    stranger = stranger_key()
    old_bad = "site_id = 1\n"
    cases = [
        (seal(config_payload(old_bad + "#" * 70_000, sites=["X9"], version=1, valid_for_s=-1, now=NOW),
              stranger), Reason.TOO_LARGE),
        (b'{"v": 2}', Reason.MALFORMED),
        (seal(config_payload(old_bad, sites=["X9"], version=1, valid_for_s=-1, now=NOW), stranger),
         Reason.BAD_SIGNATURE),
        (op.push(old_bad, sites=("X9",), version=1, valid_for_s=-1, now=NOW), Reason.WRONG_SITE),
        (op.push(old_bad, version=1, valid_for_s=-1, now=NOW), Reason.EXPIRED),
        (op.push(old_bad, version=1, now=NOW), Reason.REPLAY),
        (op.push(old_bad, version=11, now=NOW), Reason.INVALID_CONFIG),
    ]
    assert [check_push(data, ctx).reason for data, _ in cases] == [r for _, r in cases]


def test_a_redelivered_envelope_is_ignored_not_reported_again(op, ctx):
    data = op.push(GOOD, version=11, valid_for_s=60, now=NOW - 120)   # expired by now
    first = check_push(data, ctx)
    assert isinstance(first, Rejection)
    from agent.remote.envelope import sha256_hex
    assert isinstance(check_push(data, replace(ctx, handled=frozenset({sha256_hex(data)}))), Ignored)


def test_an_empty_retained_message_is_ignored(ctx):
    assert isinstance(check_push(b"", ctx), Ignored)


# -- commands --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cctx(ctx):
    return CommandContext(site_id="SITE001", now=NOW, trusted_keys=ctx.trusted_keys,
                          max_bytes=16 * 1024, seen_ids=frozenset(), devices=frozenset({"pc", "ups"}))


@pytest.mark.parametrize("name, args, action", [
    ("poll_now", {}, PollNow()),
    ("poll_now", {"device": "ups"}, PollNow("ups")),
    ("diagnostics", {}, Diagnostics()),
    ("resend", {"first_seq": 5, "last_seq": 9}, Resend(5, 9)),
])
def test_each_command_is_accepted_with_typed_arguments(op, cctx, name, args, action):
    d = check_command(op.command(name, args, now=NOW), cctx)
    assert isinstance(d, CommandAccepted) and d.action == action and d.name == name


@pytest.mark.parametrize("name, args, reason", [
    ("shell", {"cmd": "rm -rf /"}, Reason.UNKNOWN_COMMAND),
    ("poll_now", {"device": "../../etc/passwd"}, Reason.BAD_ARGUMENTS),
    ("poll_now", {"device": "nosuch"}, Reason.BAD_ARGUMENTS),
    ("poll_now", {"path": "/etc/shadow"}, Reason.BAD_ARGUMENTS),
    ("diagnostics", {"file": "/etc/shadow"}, Reason.BAD_ARGUMENTS),
    ("resend", {"first_seq": 9, "last_seq": 5}, Reason.BAD_ARGUMENTS),
    ("resend", {"first_seq": 1, "last_seq": 10_000_000}, Reason.BAD_ARGUMENTS),
    ("resend", {"first_seq": True, "last_seq": 2}, Reason.BAD_ARGUMENTS),
])
def test_anything_off_the_short_list_is_refused(op, cctx, name, args, reason):
    d = check_command(op.command(name, args, now=NOW), cctx)
    assert isinstance(d, Rejection) and d.reason is reason, d
    assert d.command_id


def test_a_command_is_refused_twice(op, cctx):
    data = op.command("poll_now", now=NOW)
    d = check_command(data, cctx)
    assert isinstance(d, CommandAccepted)
    again = check_command(data, replace(cctx, seen_ids=frozenset({d.id})))
    assert isinstance(again, Rejection) and again.reason is Reason.REPLAY


def test_commands_must_be_short_lived(op, cctx):
    from agent.remote.fleet import command_payload
    payload = command_payload("poll_now", {}, sites=["SITE001"], now=NOW)
    payload["not_after"] = NOW + 86400
    d = check_command(seal(payload, op.key), cctx)
    assert isinstance(d, Rejection) and d.reason is Reason.TOO_LONG_LIVED


@pytest.mark.parametrize("make, reason", [
    (lambda op: op.command("poll_now", sites=("SITE002",), now=NOW), Reason.WRONG_SITE),
    (lambda op: op.command("poll_now", valid_for_s=10, now=NOW - 60), Reason.EXPIRED),
    (lambda op: op.push(GOOD, version=11, now=NOW), Reason.MALFORMED),
    (lambda op: b"x" * 20_000, Reason.TOO_LARGE),
])
def test_commands_share_the_envelope_checks(op, cctx, make, reason):
    d = check_command(make(op), cctx)
    assert isinstance(d, Rejection) and d.reason is reason, d


def test_a_command_signed_by_a_stranger_is_refused(cctx):
    from agent.remote.fleet import command_payload
    data = seal(command_payload("diagnostics", {}, sites=["SITE001"], now=NOW), stranger_key())
    d = check_command(data, cctx)
    assert isinstance(d, Rejection) and d.reason is Reason.BAD_SIGNATURE


# -- fuzz ------------------------------------------------------------------------------------------

def _mutations():
    """Random bytes; valid envelopes with bytes flipped, cut or spliced; JSON fields replaced."""
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=10)
    return st.one_of(
        st.binary(max_size=2000),
        st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
        st.tuples(st.just("cut"), st.integers(0, 10_000)),
        st.tuples(st.just("splice"), st.integers(0, 10_000), st.binary(max_size=40)),
        st.tuples(st.just("outer"), st.sampled_from(["v", "key", "payload", "sig", "extra"]), json_values),
        st.tuples(st.just("inner"), st.sampled_from(["kind", "sites", "version", "config", "not_after",
                                                     "issued_at", "id", "command", "args", "extra"]),
                  json_values),
    )


def _apply(mutation, valid: bytes, key) -> bytes:
    if isinstance(mutation, bytes):
        return mutation
    kind = mutation[0]
    if kind == "flip":
        i = mutation[1] % len(valid)
        return valid[:i] + bytes([valid[i] ^ mutation[2]]) + valid[i + 1:]
    if kind == "cut":
        return valid[:mutation[1] % len(valid)]
    if kind == "splice":
        i = mutation[1] % len(valid)
        return valid[:i] + mutation[2] + valid[i:]
    env = json.loads(valid)
    if kind == "outer":
        env[mutation[1]] = mutation[2]
        return json.dumps(env).encode()
    # Inner: change the payload, then either keep the old signature or re-sign with our key.
    payload = json.loads(base64.b64decode(env["payload"]))
    payload[mutation[1]] = mutation[2]
    return seal(payload, key) if mutation[1] != "extra" else json.dumps(
        {**env, "payload": base64.b64encode(json.dumps(payload).encode()).decode()}).encode()


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutation=_mutations(), which=st.sampled_from(["push", "command"]))
def test_fuzz_push_and_command_handlers_never_crash_and_never_accept_a_forgery(op, ctx, cctx, mutation, which):
    valid = op.push(GOOD, version=11, now=NOW) if which == "push" else op.command(
        "resend", {"first_seq": 1, "last_seq": 2}, now=NOW)
    data = _apply(mutation, valid, op.key)
    before = copy.deepcopy(ctx.local.doc)
    push = check_push(data, ctx)
    command = check_command(data, cctx)
    assert ctx.local.doc == before, "the local config must never change"
    assert isinstance(push, (Accepted, Rejection, Ignored))
    assert isinstance(command, (CommandAccepted, Rejection, Ignored))
    # Only what our key signed can pass: an accepted push carries exactly a config we signed.
    if isinstance(push, Accepted):
        signed = json.loads(base64.b64decode(json.loads(data)["payload"]))
        assert push.text == signed["config"] and push.meta.key_id == op.key_id
        assert push.config.site_id == "SITE001"
    if isinstance(command, CommandAccepted):
        assert command.key_id == op.key_id


@pytest.mark.parametrize("name", ["a list nested 1000 deep", "a table header 1000 deep",
                                  "an integer of 5000 digits",
                                  "a hexadecimal integer of 20000 bits"])
def test_a_signed_push_of_pathological_toml_is_rejected_as_invalid_config(op, ctx, name):
    from test_config import PATHOLOGICAL, PATHOLOGICAL_PROBLEM
    rej = rejected(check_push(op.push(GOOD + PATHOLOGICAL[name], version=11, now=NOW), ctx),
                   Reason.INVALID_CONFIG)
    assert any(PATHOLOGICAL_PROBLEM[name] in p for p in rej.problems), rej.problems
    assert len(json.dumps(rej.to_dict())) < 2048, "the published rejection stays small"
