"""Remote commands: a fixed, short list, signed like config pushes, checked by a pure function.

    bytes -> size -> well-formed -> trusted signature -> this site -> not expired
          -> short-lived (at most MAX_TTL_S) -> id not seen before -> known command, valid arguments
          -> CommandAccepted(id, action)          any step: Rejection(reason, detail)

The commands, and only these (no shell, no file paths, nothing that names a file):

* ``poll_now`` ``{"device": NAME}`` (optional): poll one device, or all, at once;
* ``diagnostics`` ``{}``: publish the agent's status snapshot on the diagnostics topic;
* ``resend`` ``{"first_seq": A, "last_seq": B}``: publish the readings of that range still in the
  buffer again, on the backlog topic (consumers de-duplicate by sequence number).

A command is valid for at most an hour and its id is remembered until it expires, so a captured
command cannot be replayed while it is still valid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from agent.config.devices import DEVICE_NAME_PATTERN
from agent.remote.checks import Ignored, Reason, Rejection, common_checks
from agent.remote.envelope import EnvelopeError, open_envelope

if TYPE_CHECKING:
    from agent.remote.envelope import PublicKey

MAX_TTL_S = 3600.0
MAX_RESEND = 100_000            # readings per resend command
COMMAND_ID_PATTERN = r"[A-Za-z0-9_-]{8,64}"
_MAX_SEQ = 2**63 - 1


@dataclass(frozen=True)
class PollNow:
    device: str | None = None


@dataclass(frozen=True)
class Diagnostics:
    pass


@dataclass(frozen=True)
class Resend:
    first_seq: int
    last_seq: int


Action = PollNow | Diagnostics | Resend
COMMAND_NAMES = {"poll_now": PollNow, "diagnostics": Diagnostics, "resend": Resend}


@dataclass(frozen=True)
class CommandAccepted:
    id: str
    name: str
    action: Action
    key_id: str
    not_after: float


@dataclass(frozen=True)
class CommandContext:
    site_id: str
    now: float
    trusted_keys: Mapping[str, PublicKey]
    max_bytes: int
    seen_ids: frozenset[str]       # ids of commands accepted and not yet expired
    devices: frozenset[str]        # devices polled right now


def check_command(data: bytes, ctx: CommandContext) -> CommandAccepted | Rejection | Ignored:
    """Run every check in order; the first that fails decides the rejection."""
    if not data:
        return Ignored("empty message")
    checked = common_checks(data, kind="command", site_id=ctx.site_id, now=ctx.now,
                            max_bytes=ctx.max_bytes, trusted_keys=ctx.trusted_keys)
    if isinstance(checked, Rejection):
        if checked.reason in (Reason.TOO_LARGE, Reason.MALFORMED):
            return checked
        # Echo the id it claims (only an id-shaped string), so the sender can match the refusal.
        return replace(checked, command_id=_claimed_id(data))
    env = checked
    body = env.payload.body
    cid, name, args = body.get("id"), body.get("command"), body.get("args", {})
    if set(body) - {"id", "command", "args"} or not isinstance(cid, str) \
            or not re.fullmatch(COMMAND_ID_PATTERN, cid) or not isinstance(name, str) \
            or not isinstance(args, dict):
        return Rejection(Reason.MALFORMED, "payload: a command carries an id (8-64 letters, "
                         "digits, '_', '-'), a command name and an args table",
                         key_id=env.key_id)
    if env.payload.not_after - ctx.now > MAX_TTL_S:
        return Rejection(Reason.TOO_LONG_LIVED,
                         f"valid for {env.payload.not_after - ctx.now:.0f} s; "
                         f"commands may be valid for at most {MAX_TTL_S:.0f} s", key_id=env.key_id,
                         command_id=cid)
    if cid in ctx.seen_ids:
        return Rejection(Reason.REPLAY, f"command {cid} was already carried out", key_id=env.key_id,
                         command_id=cid)
    if name not in COMMAND_NAMES:
        return Rejection(Reason.UNKNOWN_COMMAND, f"{name[:40]!r} is not one of "
                         f"{', '.join(COMMAND_NAMES)}", key_id=env.key_id, command_id=cid)
    action = _action(name, args, ctx)
    if isinstance(action, str):
        return Rejection(Reason.BAD_ARGUMENTS, f"{name}: {action}", key_id=env.key_id,
                         command_id=cid)
    return CommandAccepted(cid, name, action, env.key_id, env.payload.not_after)


def _claimed_id(data: bytes) -> str | None:
    try:
        cid = open_envelope(data).payload.body.get("id")
    except EnvelopeError:
        return None
    return cid if isinstance(cid, str) and re.fullmatch(COMMAND_ID_PATTERN, cid) else None


def _action(name: str, args: dict[str, Any], ctx: CommandContext) -> Action | str:
    """The typed action, or what is wrong with the arguments."""
    allowed = {"poll_now": {"device"}, "diagnostics": set(),
               "resend": {"first_seq", "last_seq"}}[name]
    unknown = sorted(str(k)[:40] for k in args if k not in allowed)
    if unknown:
        return (f"unknown argument(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(allowed)) or 'none'}")
    if name == "poll_now":
        device = args.get("device")
        if device is None:
            return PollNow()
        if not isinstance(device, str) or not re.fullmatch(DEVICE_NAME_PATTERN, device):
            return "device must be a device name"
        if device not in ctx.devices:
            return f"no device named {device!r} is polled here"
        return PollNow(device)
    if name == "diagnostics":
        return Diagnostics()
    first, last = args.get("first_seq"), args.get("last_seq")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= _MAX_SEQ
               for v in (first, last)):
        return "first_seq and last_seq must be sequence numbers (integers >= 1)"
    assert isinstance(first, int) and isinstance(last, int)   # checked just above
    if last < first or last - first >= MAX_RESEND:
        return f"expected first_seq <= last_seq and at most {MAX_RESEND} readings"
    return Resend(first, last)
