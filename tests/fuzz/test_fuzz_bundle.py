"""Fuzz: bundle files are bytes from the operator (``fleet push --signed``, ``clinic-central rollout
create --signed``). Any bytes, and any damage to a real bundle (lines lost, repeated, swapped,
spliced from another push, bytes flipped), are either a bundle that keeps every promise (each
site in exactly one envelope that lists it, all envelopes one push) or a ``BundleError``, within
time and memory."""

from __future__ import annotations

import json

from fuzz_budget import bounded, fuzz_settings
from hypothesis import given
from hypothesis import strategies as st
from remote_support import stranger_key

from agent.remote.bundle import Bundle, BundleError, parse_bundle, sign_bundle
from agent.remote.fleet import overlay_payload, revert_payload

NOW = 1_800_000_000.0
SITES = [f"SITE{i:03d}" for i in range(7)]
KEY, OTHER_KEY = stranger_key(), stranger_key()


def _lines(bundle: Bundle) -> list[bytes]:
    return [e.raw for e in bundle.envelopes]


GOOD = _lines(sign_bundle(overlay_payload("[buffer]\nbacklog_kbps = 200\n", sites=SITES,
                                          version=5, valid_for_s=3600, now=NOW), KEY, chunk_size=3))
# Envelopes a careless operator could mix in: another version, a revert, another key.
FOREIGN = [
    *_lines(sign_bundle(overlay_payload("[buffer]\nbacklog_kbps = 200\n", sites=SITES[:4],
                                        version=6, valid_for_s=3600, now=NOW), KEY, chunk_size=2)),
    *_lines(sign_bundle(revert_payload(4, sites=SITES[5:], version=5, valid_for_s=3600, now=NOW),
                        KEY, chunk_size=2)),
    *_lines(sign_bundle(overlay_payload("[buffer]\nbacklog_kbps = 200\n", sites=["SITE900"],
                                        version=5, valid_for_s=3600, now=NOW), OTHER_KEY)),
]


@st.composite
def damaged_bundles(draw: st.DrawFn) -> bytes:
    lines = list(draw(st.permutations(GOOD)))
    for _ in range(draw(st.integers(0, 4))):
        what = draw(st.sampled_from(["drop", "repeat", "foreign", "flip", "cut", "insert", "join"]))
        i = draw(st.integers(0, max(0, len(lines) - 1)))
        if not lines:
            lines.append(draw(st.sampled_from(GOOD)))
        elif what == "drop":
            del lines[i]
        elif what == "repeat":
            lines.insert(i, lines[i])
        elif what == "foreign":
            lines.insert(i, draw(st.sampled_from(FOREIGN)))
        elif what == "flip" and lines[i]:
            line = bytearray(lines[i])
            at = draw(st.integers(0, len(line) - 1))
            line[at] ^= draw(st.integers(1, 255))
            lines[i] = bytes(line)
        elif what == "cut":
            lines[i] = lines[i][:draw(st.integers(0, len(lines[i])))]
        elif what == "insert":
            lines.insert(i, draw(st.binary(max_size=40)))
        elif what == "join" and i + 1 < len(lines):
            lines[i:i + 2] = [lines[i] + draw(st.sampled_from([b"", b" ", b"\r"])) + lines[i + 1]]
    sep = draw(st.sampled_from([b"\n", b"\r\n", b"\n\n"]))
    return sep.join(lines) + draw(st.sampled_from([b"", b"\n", b"  \n"]))


def _check(data: bytes) -> None:
    with bounded("bundle"):
        try:
            bundle = parse_bundle(data)
        except BundleError as exc:
            assert 0 < len(str(exc)) < 2000
            return
    first = bundle.first
    seen: set[str] = set()
    for i, signed in enumerate(bundle.envelopes):
        env = signed.envelope
        assert env.key_id == first.key_id and env.payload.body == first.payload.body
        assert (env.payload.issued_at, env.payload.not_after) == (first.payload.issued_at,
                                                                  first.payload.not_after)
        for site in env.payload.sites:
            assert bundle.index[site] == i and bundle.for_site(site) == signed.raw
            assert site not in seen
            seen.add(site)
        json.loads(signed.raw)      # exactly one envelope a line
    assert seen == set(bundle.index)
    assert parse_bundle(bundle.to_bytes()).index == bundle.index, "what is stored reads back"


@fuzz_settings(200)
@given(damaged_bundles())
def test_a_damaged_bundle_is_one_push_or_a_typed_refusal(data: bytes) -> None:
    _check(data)


@fuzz_settings(150)
@given(st.one_of(st.binary(max_size=600),
                 st.lists(st.sampled_from([*GOOD, *FOREIGN, b"", b"{}", b"[]", b"\xff"]),
                          max_size=6).map(b"\n".join)))
def test_any_bytes_are_a_bundle_or_a_typed_refusal(data: bytes) -> None:
    _check(data)
