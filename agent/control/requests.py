"""One control request off the socket: bounded in bytes, nesting, integer size and time.

Whoever can open the control socket (root and the agent's group) can send anything. Every
request line is read and parsed within the limits below (docs/limits.md), and anything else
becomes ``BadRequest`` with a code the server sends back as ``{"ok": false, "error": CODE,
"message": TEXT}`` before it reads the next line or closes the connection::

    bytes --read_request--> one line (<= MAX_REQUEST_BYTES, within IDLE_TIMEOUT_S)
          --parse_request--> {"op": ...} (JSON object, depth <= MAX_DEPTH, integers <= 20 digits)
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

MAX_REQUEST_BYTES = 8 * 1024    # a request is one short line; the longest is a tail's device list
MAX_DEPTH = 4                   # {"op": ..., "devices": [...]} is depth 2
MAX_INT_DIGITS = 20             # no request needs a number; a 5,000-digit one costs CPU to convert
IDLE_TIMEOUT_S = 60.0           # a connection that sends nothing for this long is closed
MAX_CLIENTS = 16                # connections served at once; more are answered "busy" and closed
WRITE_TIMEOUT_S = 30.0          # a client that stops reading its answers is dropped

OPS = ("status", "poll_once", "tail", "buffer", "summary", "export", "events")


class BadRequest(Exception):
    """A request refused before it reached the agent: ``code`` goes on the wire, with
    ``message``."""

    def __init__(self, code: str, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fatal = fatal        # the connection cannot go on (its byte stream is out of step)


async def read_request(reader: asyncio.StreamReader) -> bytes | None:
    """The next request line, or None when the client hung up. The reader's ``limit`` must be
    ``MAX_REQUEST_BYTES``. Raises a fatal ``BadRequest`` for a line too long or a silent client."""
    try:
        async with asyncio.timeout(IDLE_TIMEOUT_S):
            line = await reader.readline()
    except TimeoutError:
        raise BadRequest("idle", f"no request for {IDLE_TIMEOUT_S:g} s; closing the connection",
                         fatal=True) from None
    except ValueError:   # asyncio's LimitOverrunError: no newline within the limit
        raise BadRequest("bad_request", f"request too long (more than {MAX_REQUEST_BYTES} bytes)",
                         fatal=True) from None
    return line or None


def parse_request(line: bytes) -> dict[str, Any]:
    """The request object in ``line``. Raises ``BadRequest`` (bad_request or unknown_op)."""
    try:
        request = json.loads(line, parse_int=_small_int, parse_constant=_no_constant)
    except RecursionError:
        raise BadRequest("bad_request", f"nested deeper than {MAX_DEPTH} levels") from None
    except _TooManyDigits as exc:
        raise BadRequest("bad_request", str(exc)) from None
    except (UnicodeDecodeError, ValueError):   # json.JSONDecodeError is a ValueError
        raise BadRequest("bad_request", "not a JSON object") from None
    if not isinstance(request, dict):
        raise BadRequest("bad_request", "not a JSON object")
    if _depth(request) > MAX_DEPTH:
        raise BadRequest("bad_request", f"nested deeper than {MAX_DEPTH} levels")
    op = request.get("op")
    if not isinstance(op, str) or op not in OPS:
        raise BadRequest("unknown_op", f"op must be one of {', '.join(OPS)}")
    device = request.get("device")
    devices = request.get("devices")
    if device is not None and not isinstance(device, str):
        raise BadRequest("bad_request", "device must be a string")
    if devices is not None and not (isinstance(devices, list)
                                    and all(isinstance(d, str) for d in devices)):
        raise BadRequest("bad_request", "devices must be a list of names")
    for key in ("from", "to", "since"):
        value = request.get(key)
        if value is not None and not (type(value) in (int, float) and math.isfinite(value)):
            raise BadRequest("bad_request", f"{key} must be a time (seconds since 1970) or null")
    if type(request.get("rejected", False)) is not bool:
        raise BadRequest("bad_request", "rejected must be true or false")
    return request


class _TooManyDigits(ValueError):
    pass


def _small_int(text: str) -> int:
    # Called by json before int(): a 4,300-digit number would raise ValueError from int() anyway,
    # but one of 4,000 digits would be converted (quadratic CPU) for nothing.
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _TooManyDigits(f"integer of more than {MAX_INT_DIGITS} digits")
    return int(text)


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0). Bounded by the line length."""
    depth, level = 0, [value]
    while level:
        depth += 1
        level = [child for v in level if isinstance(v, (dict, list))
                 for child in (v.values() if isinstance(v, dict) else v)]
        if not any(isinstance(v, (dict, list)) for v in level):
            return depth
    return depth
