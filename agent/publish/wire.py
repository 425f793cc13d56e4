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
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

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
        if not (contiguous and current is not None and r.device == prev.device
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
    if compress:
        return Encoded(zlib.compress(text, 9), tuple(map(tuple, ranges)), len(readings), CONTENT_ZLIB)
    return Encoded(text, tuple(map(tuple, ranges)), len(readings), CONTENT_JSON)


def decode_payload(payload: bytes) -> dict[str, Any]:
    """Inverse of the payload framing: zlib or plain JSON to a dict."""
    if payload[:1] == b"\x78":
        payload = zlib.decompress(payload)
    return json.loads(payload)


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
