"""Signed bundles: one push signed as several envelopes of at most N sites, so a site downloads
(and the broker keeps, per site) an envelope listing N sites instead of the whole fleet.

Each envelope is an ordinary signed push (the site's own checks accept it unchanged); a bundle
file is bytes from the operator, refused whole unless its envelopes are one push.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
from helpers import wait_until
from remote_support import Operator, stranger_key
from test_remote_overlay import BACKLOG, NOW, modbus_ups, site

from agent.cli import main
from agent.remote.bundle import BundleError, chunks, parse_bundle, sign_bundle
from agent.remote.checks import Reason, Rejection
from agent.remote.envelope import open_envelope, seal
from agent.remote.fleet import command_payload, overlay_payload, revert_payload
from agent.remote.push import Accepted, check_push

FLEET = [f"DFSSA{i:06d}" for i in range(250)]
UPS = modbus_ups("127.0.0.1")


@pytest.fixture(scope="module")
def op(tmp_path_factory):
    return Operator(tmp_path_factory.mktemp("keys"))


def payload(sites=FLEET, *, version: int = 100, text: str = BACKLOG, now: float = NOW) -> dict:
    return overlay_payload(text, sites=sites, version=version, valid_for_s=3600, now=now)


def lines(*envelopes: bytes) -> bytes:
    return b"\n".join(envelopes) + b"\n"


# -- chunking --------------------------------------------------------------------------------------

def test_a_fleet_is_signed_as_envelopes_of_at_most_the_chunk_size_each_site_in_one(op):
    bundle = sign_bundle(payload(), op.key, chunk_size=100)
    listed = [e.envelope.payload.sites for e in bundle.envelopes]
    assert [len(s) for s in listed] == [100, 100, 50]
    assert sorted(s for part in listed for s in part) == FLEET, "every site exactly once"
    assert listed[0][:2] == ("DFSSA000000", "DFSSA000001"), "in site-id order: regions together"
    # One push: everything but the sites is the same in each envelope.
    bodies = {json.dumps(dict(e.envelope.payload.body), sort_keys=True) for e in bundle.envelopes}
    assert len(bodies) == 1 and len({e.envelope.payload.not_after for e in bundle.envelopes}) == 1
    for site_id in ("DFSSA000000", "DFSSA000199", "DFSSA000249"):
        env = open_envelope(bundle.for_site(site_id))
        assert site_id in env.payload.sites and len(env.payload.sites) <= 100
    # Much less for each site to download than one envelope for all 250.
    whole = seal(payload(), op.key)
    assert bundle.largest < len(whole) / 2


def test_each_envelope_of_a_bundle_is_an_ordinary_push_its_sites_accept(op):
    sites = ["SITE001", "SITE002", "SITE003"]
    bundle = sign_bundle(payload(sites), op.key, chunk_size=2)
    assert len(bundle.envelopes) == 2
    for name in sites:
        assert isinstance(check_push(bundle.for_site(name), site(op, name, UPS)), Accepted)
    # The envelope of the other chunk does not list SITE003: the site refuses it.
    other = bundle.envelopes[0].raw
    decision = check_push(other, site(op, "SITE003", UPS))
    assert isinstance(decision, Rejection) and decision.reason is Reason.WRONG_SITE


@pytest.mark.parametrize("size", [0, -1, 10_001])
def test_a_chunk_size_out_of_range_is_refused(size):
    with pytest.raises(ValueError, match="chunk size"):
        chunks(FLEET, size)


def test_chunks_sort_and_drop_repeated_sites():
    assert chunks(["B", "A", "C", "A"], 2) == [["A", "B"], ["C"]]


# -- reading a bundle file -------------------------------------------------------------------------

def test_a_single_envelope_file_is_a_bundle_of_one(op):
    env = seal(payload(["SITE001", "SITE002"]), op.key)
    bundle = parse_bundle(env + b"\n")
    assert len(bundle.envelopes) == 1 and bundle.to_bytes() == env
    assert bundle.sha256 == open_envelope(env).sha256, "a rollout's canary choice unchanged"
    assert bundle.for_site("SITE002") == env


def test_blank_lines_and_crlf_are_ignored(op):
    bundle = sign_bundle(payload(FLEET[:5]), op.key, chunk_size=2)
    a, b, c = (e.raw for e in bundle.envelopes)
    again = parse_bundle(b"\r\n" + a + b"\r\n\r\n" + b + b"\r\n" + c + b"  \r\n\n")
    assert again.to_bytes() == bundle.to_bytes() and again.index == bundle.index


def test_a_bundle_whose_envelopes_are_not_one_push_is_refused_whole(op):
    a = seal(payload(FLEET[:2], version=100), op.key)
    cases = {
        "version 101, line 1 has 100": seal(payload(FLEET[2:4], version=101), op.key),
        "content differs": seal(payload(FLEET[2:4], text="[buffer]\nbacklog_kbps = 1\n"),
                                op.key),
        "with key": seal(payload(FLEET[2:4]), stranger_key()),
        "not_after differ": seal(payload(FLEET[2:4], now=NOW + 1), op.key),
        "site DFSSA000001 is listed in two": seal(payload(FLEET[1:3]), op.key),
        "a command envelope": seal(command_payload("poll_now", {}, sites=FLEET[2:4], now=NOW),
                                   op.key),
    }
    for problem, b in cases.items():
        with pytest.raises(BundleError, match=f"line 2: .*{problem}"):
            parse_bundle(lines(a, b), source="push.jsonl")
    revert = seal(revert_payload(99, sites=FLEET[2:4], version=100, valid_for_s=3600, now=NOW),
                  op.key)
    with pytest.raises(BundleError, match="content differs"):
        parse_bundle(lines(a, revert))


@pytest.mark.parametrize("data, problem", [
    (b"", "no envelope"),
    (b"\n \r\n", "no envelope"),
    (b"{}\n", "line 1: envelope: expected exactly the fields"),
    (b"\xff\n", "line 1: envelope: not UTF-8"),
])
def test_a_file_that_is_no_bundle_says_which_line_and_why(data, problem):
    with pytest.raises(BundleError, match=problem):
        parse_bundle(data)


def test_a_broken_line_after_good_ones_is_named(op):
    good = seal(payload(FLEET[:2]), op.key)
    outer = json.loads(good)
    outer["payload"] = base64.b64encode(b'{"kind": "config"}').decode()
    with pytest.raises(BundleError, match="line 3: payload: sites must be"):
        parse_bundle(lines(good, b"", json.dumps(outer).encode()))


def test_a_bundle_over_its_size_limit_is_refused_before_parsing(monkeypatch, op):
    import agent.remote.bundle as bundle_module
    env = seal(payload(FLEET[:2]), op.key)
    monkeypatch.setattr(bundle_module, "MAX_BUNDLE_BYTES", len(env) - 1)
    with pytest.raises(BundleError, match="more than a bundle may have"):
        parse_bundle(env)


# -- fleet sign / push -----------------------------------------------------------------------------

def test_fleet_sign_writes_one_envelope_per_chunk(op, tmp_path, capsys):
    sites_file = tmp_path / "sites.txt"
    sites_file.write_text("\n".join(FLEET[:5]) + "\n")
    ov = tmp_path / "ov.toml"
    ov.write_text(BACKLOG)
    out = tmp_path / "ov.jsonl"
    args = ["fleet", "sign", str(ov), "--overlay", "--key", str(op.key_path), "--sites-file",
            str(sites_file), "--version", "9", "-o", str(out)]
    assert main([*args, "--chunk-size", "2"]) == 0
    assert "3 envelope(s) of at most 2 site(s)" in capsys.readouterr().err
    data = out.read_bytes()
    assert data.count(b"\n") == 3
    bundle = parse_bundle(data)
    assert [len(e.envelope.payload.sites) for e in bundle.envelopes] == [2, 2, 1]
    assert bundle.sites == tuple(FLEET[:5]) and bundle.first.payload.body["version"] == 9
    # The default chunk (100) keeps a small site list in one envelope: the file of before.
    assert main(args) == 0
    assert open_envelope(out.read_bytes().strip()).payload.sites == tuple(FLEET[:5])
    assert main([*args, "--chunk-size", "0"]) == 2
    assert "--chunk-size must be 1 to" in capsys.readouterr().err


def test_fleet_push_sends_each_site_only_the_envelope_that_lists_it(op, secure_broker, tmp_path,
                                                                     capsys):
    from fixtures.secure_broker import OPERATOR
    from fixtures.secure_broker import SITES as BROKER_SITES
    signed = tmp_path / "push.jsonl"
    signed.write_bytes(sign_bundle(payload(list(BROKER_SITES), now=time.time()), op.key,
                                   chunk_size=1).to_bytes() + b"\n")
    pw = tmp_path / "operator.pw"
    pw.write_text(secure_broker.passwords[OPERATOR] + "\n")
    assert main(["fleet", "push", "--signed", str(signed), "--broker",
                 f"127.0.0.1:{secure_broker.port}", "--username", OPERATOR, "--password-file",
                 str(pw)]) == 0
    assert f"published to {len(BROKER_SITES)} site(s)" in capsys.readouterr().out
    for name in BROKER_SITES:
        c = secure_broker.client(name)
        try:
            topic = f"clinics/{name}/config/set"
            assert c.subscribe(topic) == [1]
            wait_until(lambda t=topic, c=c: c.on(t), timeout=10, what=f"{name}'s retained push")
            assert open_envelope(c.on(topic)[0].payload).payload.sites == (name,)
        finally:
            c.close()
