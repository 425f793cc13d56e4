"""Pure parts of clinic-central: the strict decoder's typed errors, seq range arithmetic, the config."""

from __future__ import annotations

import json
import zlib

import pytest

from agent.errors import ConfigError
from agent.publish.topics import Topics, split_topic
from agent.publish.wire import WireError, decode_ack, decode_batch, encode_ack, encode_batch
from agent.readings import StoredReading
from central import seqranges
from central.cli import main
from central.config import parse_config


def batch(n=3, **kw):
    rs = [StoredReading(10 + i, "ups", f"m{i}", i, "", 1790000000.0, 0) for i in range(n)]
    return encode_batch(rs, site="S1", boot="b", **{"compress": True, **kw}).payload


@pytest.mark.parametrize("payload,code", [
    (b"x" * 300_000, "too_large"),
    (zlib.compress(b" " * 5_000_000), "inflated_too_large"),
    (batch()[:-4], "truncated"),
    (b"\x78\x00garbage", "bad_compression"),
    (b"{not json", "not_json"),
    (b"[1, 2]", "foreign"),
    (json.dumps({"v": 2, "g": []}).encode(), "foreign"),
    (json.dumps({"v": 1, "site": "S1", "boot": "b", "g": [{"s": 0, "d": "x", "t": 1, "m": [["a", 1]]}]}).encode(), "bad_shape"),
    (json.dumps({"v": 1, "site": "S1", "boot": "b", "g": [{"s": 5, "d": "x", "t": 1, "m": [["a", 1], ["b", 2]]},
                                                         {"s": 6, "d": "x", "t": 1, "m": [["c", 1]]}]}).encode(), "bad_shape"),
    (json.dumps({"v": 1, "site": "S1", "boot": "b", "g": [{"s": 1, "d": "x", "t": 1, "m": [["a", {"x": 1}]]}]}).encode(), "bad_shape"),
    (b'{"v": 1, "site": "S1", "boot": "b", "g": [{"s": 1, "d": "x", "t": NaN, "m": [["a", 1]]}]}', "not_json"),
], ids=["oversized", "zip-bomb", "truncated", "bad-zlib", "not-json", "json-array", "other-version",
        "seq-zero", "overlapping-seqs", "object-value", "nan"])
def test_the_strict_decoder_names_what_is_wrong(payload, code):
    with pytest.raises(WireError) as exc:
        decode_batch(payload)
    assert exc.value.code == code


def test_the_strict_decoder_reads_what_the_agent_encodes():
    b = decode_batch(batch(compress=False))
    assert (b.site, b.count, [r.seq for r in b.readings()]) == ("S1", 3, [10, 11, 12])
    assert decode_batch(batch()) == b


def test_the_ack_and_its_topic():
    assert decode_ack(encode_ack(42)) == 42
    assert Topics("clinics", "S1").ack == "clinics/S1/ack"
    assert split_topic("clinics/S1/events/active", "clinics") == ("S1", "events/active")
    assert split_topic("other/S1/readings", "clinics") is None
    with pytest.raises(WireError):
        decode_ack(b'{"v": 1, "seq": -1}')


def test_seq_ranges():
    have = [(1, 10), (20, 30)]
    assert seqranges.uncovered(5, 25, have) == [(11, 19)]
    assert seqranges.uncovered(31, 40, have) == [(31, 40)]
    assert seqranges.merge([(20, 30), (1, 10), (11, 12)]) == [(1, 12), (20, 30)]
    assert seqranges.watermark(have) == 10
    assert seqranges.watermark([(2, 5)]) == 0
    assert seqranges.holes(have, 25) == [(11, 19)]


def test_the_config_lists_every_problem_by_key_path(tmp_path, capsys):
    with pytest.raises(ConfigError) as exc:
        parse_config({"mqtt": {"port": "1883a", "group": "a/b"}, "victoriametrics": {"url": "ftp://x"},
                      "postgres": {}, "ingest": {"name_pattern": "(", "batch_max_readings": 0},
                      "inventory": {"sites": ["ok", "bad site"]}, "typo": 1})
    assert set(exc.value.problems) == {
        'mqtt.port: expected an integer 1-65535, got "1883a"',
        'mqtt.group: expected 1-32 letters, digits, _ -, got "a/b"',
        'victoriametrics.url: expected an http(s) URL, got "ftp://x"',
        "postgres.dsn: is required but missing",
        "ingest.name_pattern: not a regular expression: missing ), unterminated subpattern at position 0",
        "ingest.batch_max_readings: expected an integer 1-1000000, got 0",
        "inventory.sites: not valid site ids: bad site",
        "typo: is not a known setting (misspelt?); check its spelling against the example config, "
        "or delete the line"}
    bad = tmp_path / "central.toml"
    bad.write_text("[mqtt]\nport = 0\n")
    assert main(["validate", str(bad)]) == 2
    assert "mqtt.port: expected an integer 1-65535, got 0" in capsys.readouterr().err
