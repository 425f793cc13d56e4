"""The payloads the agent publishes, and the decoder the central side (and our tests) use.

A readings batch groups consecutive sequence numbers of one device poll, so each reading costs only
its metric name and value on the wire (see docs/mqtt.md for the contract):

    {"v": 1, "site": "DFSSA001234", "boot": "3f2a...", "g": [
        {"s": 1200, "d": "router", "t": 1795342337.81, "m": [["poll.status", "ok"], ...]},
        ...]}

The k-th pair of a group has sequence number ``s + k``. ``"f"`` (clock flags) appears on a group
only when not zero. With compression on, the JSON is zlib-deflated: a payload that starts with
``{`` is plain JSON, one that starts with byte 0x78 is zlib (MQTT 5 also says so in its
content type).
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from agent.readings import StoredReading

WIRE_VERSION = 1
CONTENT_JSON = "application/json"
CONTENT_ZLIB = "application/json+zlib"


@dataclass(frozen=True)
class Encoded:
    payload: bytes
    ranges: tuple[tuple[int, int], ...]   # inclusive seq ranges carried, for the store's ack
    count: int
    content_type: str


def encode_batch(readings: Sequence[StoredReading], *, site: str, boot: str,
                 compress: bool) -> Encoded:
    """Encode readings (ascending seq) into one payload."""
    groups: list[dict[str, Any]] = []
    ranges: list[list[int]] = []
    prev: StoredReading | None = None
    current: dict[str, Any] | None = None
    for r in readings:
        contiguous = prev is not None and r.seq == prev.seq + 1
        if not (contiguous and current is not None and prev is not None and r.device == prev.device
                and r.ts == prev.ts and r.flags == prev.flags):
            current = {"s": r.seq, "d": r.device, "t": _time(r.ts), "m": []}
            if r.flags:
                current["f"] = r.flags
            groups.append(current)
        current["m"].append([r.metric, _value(r.value)])
        if contiguous and ranges:
            ranges[-1][1] = r.seq
        else:
            ranges.append([r.seq, r.seq])
        prev = r
    doc = {"v": WIRE_VERSION, "site": site, "boot": boot, "g": groups}
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    spans = tuple((lo, hi) for lo, hi in ranges)
    if compress:
        return Encoded(zlib.compress(text, 9), spans, len(readings), CONTENT_ZLIB)
    return Encoded(text, spans, len(readings), CONTENT_JSON)


def decode_payload(payload: bytes) -> dict[str, Any]:
    """Inverse of the payload framing: zlib or plain JSON to a dict."""
    if payload[:1] == b"\x78":
        payload = zlib.decompress(payload)
    doc: dict[str, Any] = json.loads(payload)
    return doc


@dataclass(frozen=True)
class WireReading:
    seq: int
    device: str
    metric: str
    value: Any
    ts: float
    flags: int


def iter_readings(doc: dict[str, Any]) -> Iterator[WireReading]:
    """Flatten a decoded readings batch into one record per reading (what a consumer stores)."""
    for g in doc["g"]:
        for k, (metric, value) in enumerate(g["m"]):
            yield WireReading(g["s"] + k, g["d"], metric, value, g["t"], g.get("f", 0))


def _time(ts: float) -> float:
    # Millisecond resolution is plenty for minute-by-minute monitoring and saves bytes.
    return round(ts, 3)


def _value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None   # JSON has no NaN/inf; the source logs the bad value
    return v


# -- Strict decoding (the central ingest's entry point; one definition for both sides) ------------
#
# The ingest reads payloads from thousands of sites and from anyone else who can publish on the
# broker, so everything is checked before it is trusted: the size before and after inflating (a
# 1 KiB zlib bomb inflates to 1 MiB), that the stream is complete, that the JSON is ours, and the
# shape of every group. Each failure is a WireError with a short language-neutral code.

DEFAULT_MAX_PAYLOAD = 256 * 1024          # bytes on the wire
DEFAULT_MAX_INFLATED = 4 * 1024 * 1024    # bytes after zlib
MAX_SEQ = 2**63 - 1                        # seq: an SQLite INTEGER on the agent, a bigint centrally


class WireError(ValueError):
    """A payload that is not a document we accept. ``code`` is one of:

    ``too_large`` (on the wire), ``inflated_too_large`` (zlib output past the limit),
    ``truncated`` (zlib stream cut short), ``bad_compression``, ``not_json``, ``foreign`` (JSON,
    but not this contract: another version or another publisher), ``bad_shape`` (ours, but a field
    has the wrong type or range).
    """

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}")


@dataclass(frozen=True)
class WireGroup:
    """One group of a readings batch: consecutive seqs of one poll; ``metrics[k]`` has seq
    ``seq + k``."""

    seq: int
    device: str
    ts: float
    flags: int
    metrics: tuple[tuple[str, Any], ...]

    @property
    def last_seq(self) -> int:
        return self.seq + len(self.metrics) - 1


@dataclass(frozen=True)
class ReadingsBatch:
    site: str
    boot: str
    groups: tuple[WireGroup, ...]

    @property
    def count(self) -> int:
        return sum(len(g.metrics) for g in self.groups)

    def readings(self) -> Iterator[WireReading]:
        for g in self.groups:
            for k, (metric, value) in enumerate(g.metrics):
                yield WireReading(g.seq + k, g.device, metric, value, g.ts, g.flags)


def inflate(payload: bytes, *, max_payload: int = DEFAULT_MAX_PAYLOAD,
            max_inflated: int = DEFAULT_MAX_INFLATED) -> bytes:
    """The JSON bytes of a payload (plain or zlib), refusing oversized, bomb and truncated input."""
    if len(payload) > max_payload:
        raise WireError("too_large", f"{len(payload)} bytes on the wire, limit {max_payload}")
    if payload[:1] != b"\x78":
        return payload
    d = zlib.decompressobj()
    try:
        out = d.decompress(payload, max_inflated + 1)
    except zlib.error as exc:
        raise WireError("bad_compression", str(exc)) from exc
    if len(out) > max_inflated or d.unconsumed_tail:
        raise WireError("inflated_too_large", f"inflates past {max_inflated} bytes")
    if not d.eof:
        raise WireError("truncated", "zlib stream ends early")
    if d.unused_data:
        raise WireError("bad_compression", f"{len(d.unused_data)} bytes after the zlib stream")
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_document(payload: bytes, *, max_payload: int = DEFAULT_MAX_PAYLOAD,
                   max_inflated: int = DEFAULT_MAX_INFLATED) -> dict[str, Any]:
    """A payload (plain or zlib JSON) to a JSON object, strictly: WireError on anything else."""
    text = inflate(payload, max_payload=max_payload, max_inflated=max_inflated)
    try:
        doc = json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:   # UnicodeDecodeError is a ValueError
        raise WireError("not_json", str(exc)[:200]) from exc
    if not isinstance(doc, dict):
        raise WireError("foreign", f"a JSON {type(doc).__name__}, not an object")
    return doc


def _is_int(x: Any) -> TypeGuard[int]:
    return type(x) is int


def _is_number(x: Any) -> TypeGuard[float]:
    return (type(x) is int and -MAX_SEQ <= x <= MAX_SEQ) or (type(x) is float and math.isfinite(x))


def decode_batch(payload: bytes, *, max_payload: int = DEFAULT_MAX_PAYLOAD,
                 max_inflated: int = DEFAULT_MAX_INFLATED) -> ReadingsBatch:
    """Strict inverse of ``encode_batch``: a ReadingsBatch, or WireError saying what is wrong.

    Sequence numbers must rise from group to group (the encoder writes them so); values are
    numbers, strings, booleans or null.
    """
    doc = parse_document(payload, max_payload=max_payload, max_inflated=max_inflated)
    if doc.get("v") != WIRE_VERSION or "g" not in doc:
        raise WireError("foreign", f"not a readings batch of version {WIRE_VERSION}")
    site, boot, raw_groups = doc.get("site"), doc.get("boot"), doc["g"]
    if not isinstance(site, str) or not site or not isinstance(boot, str):
        raise WireError("bad_shape", "site and boot must be strings")
    if not isinstance(raw_groups, list):
        raise WireError("bad_shape", "g must be a list")
    groups: list[WireGroup] = []
    next_seq = 1
    for i, g in enumerate(raw_groups):
        if not isinstance(g, dict):
            raise WireError("bad_shape", f"g[{i}] is not an object")
        s, d, t, f, m = g.get("s"), g.get("d"), g.get("t"), g.get("f", 0), g.get("m")
        if not _is_int(s) or s < next_seq:
            raise WireError("bad_shape", f"g[{i}].s must be an integer >= {next_seq}")
        if not isinstance(d, str) or not d:
            raise WireError("bad_shape", f"g[{i}].d must be a non-empty string")
        if not _is_number(t) or not _is_int(f) or f < 0:
            raise WireError("bad_shape", f"g[{i}].t must be a number and f a non-negative integer")
        if not isinstance(m, list) or not m or s + len(m) - 1 > MAX_SEQ:
            raise WireError("bad_shape", f"g[{i}].m must be a non-empty list")
        pairs: list[tuple[str, Any]] = []
        for k, pair in enumerate(m):
            if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str or not pair[0]:
                raise WireError("bad_shape", f"g[{i}].m[{k}] must be [name, value]")
            v = pair[1]
            if not (v is None or type(v) is str or type(v) is bool or _is_number(v)):
                raise WireError("bad_shape",
                                f"g[{i}].m[{k}] has a value of type {type(v).__name__}")
            pairs.append((pair[0], v))
        groups.append(WireGroup(s, d, float(t), f, tuple(pairs)))
        next_seq = s + len(m)
    return ReadingsBatch(site, boot, tuple(groups))


# -- End-to-end acknowledgement (centre -> agent, retained on Topics.ack) -------------------------

def encode_ack(seq: int) -> bytes:
    """The central ack: every reading with a seq <= ``seq`` is durably stored (or known lost)."""
    return json.dumps({"v": WIRE_VERSION, "seq": seq}, separators=(",", ":")).encode()


def decode_ack(payload: bytes) -> int:
    """The seq of a central ack; WireError when the payload is not one."""
    doc = parse_document(payload, max_payload=1024, max_inflated=1024)
    seq = doc.get("seq")
    if doc.get("v") != WIRE_VERSION or not _is_int(seq) or not 0 <= seq <= MAX_SEQ:
        raise WireError("foreign", "not a central ack of version 1")
    return seq
