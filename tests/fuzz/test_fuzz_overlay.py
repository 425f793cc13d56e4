"""Fuzz: overlay pushes from the network. Any overlay text in a signed push (hostile TOML, random
text, lone surrogates that JSON can carry but UTF-8 cannot) is a typed decision within time and
memory; whatever the merge produces is written as TOML that reads back as the same document."""

from __future__ import annotations

import base64
import copy
import json
import math
import tomllib
from typing import Any

from hypothesis import given, strategies as st

from agent.errors import ConfigError
from agent.remote.checks import Ignored, Rejection
from agent.remote.envelope import DOMAIN, canonical_json, key_id, public_half
from agent.remote.fleet import overlay_payload
from agent.remote.overlay import apply_overlay, parse_overlay, to_toml
from agent.remote.push import Accepted, check_push
from fuzz_budget import bounded, fuzz_settings
from test_remote_checks import NOW, ctx, local, op  # noqa: F401 - fixtures
from toml_cases import config_texts

OVERLAY_LINES = ["[buffer]", "backlog_kbps = 200", "[[devices]]", 'name = "pc"', 'name = "ups"',
                 "timeout_s = 2", "kind = \"host\"", "[overlay]", 'remove = ["devices.pc"]',
                 'remove = ["buffer.backlog_kbps", "mqtt"]', "[events.mains_lost]",
                 "raise_after_s = 10", "[mqtt]", "keepalive_s = 30", "[[devices.registers]]",
                 'remove = ["devices.pc.interval_s", "x.y.z.w"]', "[devices]", "devices = 1"]

overlay_texts = st.one_of(
    st.lists(st.sampled_from(OVERLAY_LINES), max_size=12).map("\n".join),
    config_texts(),
    st.binary(max_size=300).map(lambda b: b.decode("utf-8", "replace")),
    st.text(max_size=200),
)

keys = st.text(min_size=1, max_size=8)
scalars = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1), st.text(max_size=12),
                    st.floats(allow_nan=False))
toml_docs = st.dictionaries(keys, st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=12), max_size=6)


def signed_overlay(signer: Any, text_json: str, version: int = 11,
                   field: str = "overlay") -> bytes:
    """A push signed by a trusted key whose overlay is ``text_json``, a JSON string literal as it
    arrives (it may hold escapes no UTF-8 encoder accepts, such as a lone surrogate)."""
    doc = overlay_payload("", sites=["SITE001"], version=version, valid_for_s=3600, now=NOW)
    doc[field] = doc.pop("overlay")
    body = canonical_json(doc).replace(f'"{field}":""'.encode(),
                                       f'"{field}":'.encode() + text_json.encode())
    sig = signer.key.sign(DOMAIN + body)
    return canonical_json({"v": 1, "key": key_id(public_half(signer.key)),
                           "payload": base64.b64encode(body).decode(),
                           "sig": base64.b64encode(sig).decode()})


@fuzz_settings(150)
@given(overlay_texts)
def test_any_overlay_text_merges_or_is_refused_with_problems(local, text):  # noqa: F811
    before = copy.deepcopy(local.doc)
    with bounded("overlay merge"):
        try:
            merged = apply_overlay(local.doc, parse_overlay(text))
        except ConfigError as exc:
            assert exc.problems and all(len(p) < 2000 for p in exc.problems)
            return
    assert local.doc == before, "the site's own document is never changed"
    tomllib.loads(merged)


@fuzz_settings(150)
@given(st.one_of(overlay_texts.map(lambda t: json.dumps(t)),
                 st.sampled_from(['"\\ud800"', '"[buffer]\\nbacklog_kbps = 1 # \\udfff"',
                                  '"a = \\"\\ud83d\\""',
                                  '"# \\udc80\\n[mqtt]\\nhost = \\"h\\"\\n"'])),
       st.sampled_from(["overlay", "config"]))
def test_a_signed_overlay_from_the_network_is_a_typed_decision(op, ctx, text_json,  # noqa: F811
                                                               field):
    # "config": a whole config with a lone surrogate in a comment passed the validator, then
    # raised UnicodeEncodeError when its hash was taken (found by this test).
    data = signed_overlay(op, text_json, field=field)
    with bounded("overlay push"):
        decision = check_push(data, ctx)
    assert isinstance(decision, (Accepted, Rejection, Ignored)), decision


@fuzz_settings(200)
@given(toml_docs)
def test_the_toml_writer_reads_back_as_the_same_document(doc):
    assert _same(tomllib.loads(to_toml(doc)), doc)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b
