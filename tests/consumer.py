"""What the central side does with the agent's messages: validate, flatten, de-duplicate by seq."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import jsonschema

from agent.publish.wire import WireReading, decode_payload, iter_readings

SCHEMAS = Path(__file__).resolve().parent.parent / "agent" / "schemas"


@lru_cache(maxsize=None)
def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def validate(name: str, doc: dict) -> None:
    jsonschema.validate(doc, schema(name))


def readings_from(messages, *, validate_schema: bool = True) -> list[tuple[str, WireReading]]:
    """Every reading in readings/backlog messages, in arrival order, as (lane, reading)."""
    out = []
    for m in messages:
        lane = m.topic.rsplit("/", 1)[-1]
        if lane not in ("readings", "backlog"):
            continue
        doc = decode_payload(m.payload)
        if validate_schema:
            validate("readings", doc)
        out.extend((lane, r) for r in iter_readings(doc))
    return out


def unique_by_seq(readings) -> dict[int, WireReading]:
    """De-duplicate as a consumer would: one reading per sequence number."""
    seen: dict[int, WireReading] = {}
    for _, r in readings:
        prior = seen.setdefault(r.seq, r)
        assert prior == r, f"seq {r.seq} carried two different readings: {prior} and {r}"
    return seen


def latest(readings, device: str, metric: str):
    """The newest value of one metric (by seq)."""
    best = None
    for _, r in readings:
        if r.device == device and r.metric == metric and (best is None or r.seq > best.seq):
            best = r
    return best
