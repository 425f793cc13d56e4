"""Whatever arrives on a site's topics, the ingest's entry point sets it aside with a reason or
accepts it; it never raises. Bounded: a few hundred examples, no stores (pure classification)."""

from __future__ import annotations

import json
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.publish.wire import WireError, decode_batch, encode_batch
from agent.readings import StoredReading
from central.config import parse_config
from central.pg import BatchWork
from central.pipeline import Inbound, Pipeline

CFG = parse_config({"mqtt": {}, "victoriametrics": {}, "postgres": {"dsn": "postgresql://unused"},
                    "ingest": {"max_payload_bytes": 4096, "max_inflated_bytes": 16384}})
REASONS = {"too_large", "inflated_too_large", "truncated", "bad_compression", "not_json", "foreign",
           "bad_shape", "site_mismatch", "unknown_site", "foreign_topic", "bad_event"}
LEAVES = ["readings", "backlog", "events", "events/active", "summary", "status", "meta", "config/state", "cmd"]

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
                           max_leaves=20)


def valid_payload(n: int, compress: bool) -> bytes:
    rs = [StoredReading(1 + i, "ups", f"m{i}", i * 1.5, "", 1790000000.0, 0) for i in range(n)]
    return encode_batch(rs, site="SITE001", boot="b", compress=compress).payload


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "zjson", "mutated", "truncated"]))
    if kind == "bytes":
        return draw(st.binary(max_size=600))
    if kind in ("json", "zjson"):
        doc = draw(st.fixed_dictionaries({"v": st.sampled_from([1, 2, "1"]), "site": st.sampled_from(["SITE001", 5]),
                                          "boot": st.text(max_size=3), "g": json_values, "e": json_values,
                                          "units": json_values, "state": st.sampled_from(["online", "x"]),
                                          "day": st.text(max_size=10), "active": json_values}))
        raw = json.dumps(doc).encode()
        return zlib.compress(raw) if kind == "zjson" else raw
    base = valid_payload(draw(st.integers(1, 40)), draw(st.booleans()))
    if kind == "truncated":
        return base[:draw(st.integers(0, len(base)))]
    pos = draw(st.integers(0, len(base) - 1))
    return base[:pos] + bytes([draw(st.integers(0, 255))]) + base[pos + 1:]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=payloads(), leaf=st.sampled_from(LEAVES), site=st.sampled_from(["SITE001", "SITE002", "bad site"]))
def test_any_payload_is_accepted_or_set_aside_with_a_known_reason(payload: bytes, leaf: str, site: str) -> None:
    pipe = Pipeline.__new__(Pipeline)
    Pipeline.__init__(pipe, CFG, None, None)   # type: ignore[arg-type]  # classification needs no store
    work = BatchWork()
    batches: list = []
    pipe._classify(Inbound(f"clinics/{site}/{leaf}", payload, 1, 1), work, batches)
    assert {a.reason for a in work.set_aside} <= REASONS
    for s, _, b in batches:       # accepted readings: exactly what the strict decoder says
        assert s == b.site == site
        assert decode_batch(payload, max_payload=4096, max_inflated=16384) == b


def test_a_zip_bomb_is_refused_without_inflating_it() -> None:
    bomb = zlib.compress(b"{" + b" " * 50_000_000 + b"}", 9)      # 50 MB from about 50 KB
    try:
        decode_batch(bomb, max_payload=len(bomb), max_inflated=4 << 20)
    except WireError as exc:
        assert exc.code == "inflated_too_large"
    else:
        raise AssertionError("a zip bomb was accepted")
