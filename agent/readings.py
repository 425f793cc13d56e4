"""What a source produces and the store keeps.

A source returns ``Sample``s (metric, value, unit); the poller stamps them with the device name
and the poll's UTC time into ``Reading``s; the store gives each a sequence number on commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from agent.i18n import Text

Value = float | int | str | bool | None


@dataclass(frozen=True, slots=True)
class Sample:
    """One value read from a device. ``metric`` is dotted, e.g. ``if.wan.in_bps``."""

    metric: str
    value: Value
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Reading:
    """A sample with its device and the UTC time (epoch seconds) of the poll that read it."""

    device: str
    metric: str
    value: Value
    unit: str
    ts: float
    # Bit flags describing how far the timestamp can be trusted (see agent.clock).
    flags: int = 0


@dataclass(frozen=True, slots=True)
class StoredReading:
    """A reading as read back from the store, with its never-repeating sequence number."""

    seq: int
    device: str
    metric: str
    value: Value
    unit: str
    ts: float
    flags: int = 0


# Metrics every poll records about itself (status, why, how long it took).
STATUS_METRIC = "poll.status"
REASON_METRIC = "poll.reason"
# The reason as a language-neutral code with its arguments: compact JSON {"code": ..., "args": ...}
# (agent.catalogue.sources), rendered in the reader's language by the CLI and the central page.
REASON_CODE_METRIC = "poll.reason_code"
DURATION_METRIC = "poll.duration_s"
SKIPPED_METRIC = "poll.skipped"   # polls skipped because the previous one overran


def encode_reason_code(code: Text) -> str:
    """``poll.reason_code``'s value: the code and its arguments as compact JSON."""
    return json.dumps(code.to_doc(), separators=(",", ":"), ensure_ascii=False, default=str)


def decode_reason_code(value: object) -> dict[str, object] | None:
    """A ``poll.reason_code`` value back to its document ({"code", "args"}), or None."""
    if not isinstance(value, str):
        return None
    try:
        doc = json.loads(value)
    except ValueError:
        return None
    return doc if Text.from_doc(doc) is not None else None
