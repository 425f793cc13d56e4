"""The checks that config pushes and remote commands share, and the typed outcome of a refusal.

Each check returns ``None`` (passed) or a ``Rejection``; callers stop at the first rejection, so
the reason reported is always the first check that failed, in this order:

    size limit -> well-formed -> signed by a trusted key -> addressed to this site -> not expired

(then the kind-specific checks: version and schema for pushes, replay and arguments for commands).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from agent.remote.envelope import Envelope, EnvelopeError, Malformed, open_envelope, verify

if TYPE_CHECKING:
    from agent.remote.envelope import PublicKey


class Reason(StrEnum):
    """Why an envelope was refused: the word published on the config state / command result
    topic."""

    TOO_LARGE = "too_large"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    WRONG_SITE = "wrong_site"
    EXPIRED = "expired"
    REPLAY = "replay"                  # version not newer than the applied one / command id seen
    INVALID_CONFIG = "invalid_config"  # the config fails the same validation as the local file
    TOO_LONG_LIVED = "too_long_lived"  # a command valid for longer than commands may be
    UNKNOWN_COMMAND = "unknown_command"
    BAD_ARGUMENTS = "bad_arguments"
    NOT_IN_EFFECT = "not_in_effect"    # a revert of a push that is not the one in effect here


@dataclass(frozen=True)
class Rejection:
    """An envelope refused; nothing was changed. ``problems`` lists config errors by key path."""

    reason: Reason
    detail: str
    problems: tuple[str, ...] = ()
    key_id: str | None = None       # set once the signature checked out
    version: int | None = None      # config pushes, once the envelope was readable
    command_id: str | None = None   # commands, once the envelope was readable

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"reason": str(self.reason), "detail": self.detail}
        if self.problems:
            doc["problems"] = list(self.problems)
        for name in ("key_id", "version", "command_id"):
            if getattr(self, name) is not None:
                doc[name] = getattr(self, name)
        return doc


@dataclass(frozen=True)
class Ignored:
    """Not an error and not worth a report: a retained message being cleared, or seen before."""

    why: str


def common_checks(data: bytes, *, kind: str, site_id: str, now: float, max_bytes: int,
                  trusted_keys: Mapping[str, PublicKey]) -> Envelope | Rejection:
    """Size, well-formed, signature, site, expiry. Returns the verified envelope or the
    rejection."""
    if len(data) > max_bytes:
        return Rejection(Reason.TOO_LARGE,
                         f"{len(data)} bytes; this site accepts at most {max_bytes}")
    try:
        env = open_envelope(data)
        if env.payload.kind != kind:
            raise Malformed(
                f"payload: kind is {env.payload.kind!r}, expected {kind!r} on this topic")
    except EnvelopeError as exc:
        return Rejection(Reason.MALFORMED, str(exc))
    try:
        verify(env, trusted_keys)
    except EnvelopeError as exc:
        return Rejection(Reason.BAD_SIGNATURE, str(exc))
    if site_id not in env.payload.sites:
        shown = ", ".join(env.payload.sites[:5]) + (" ..." if len(env.payload.sites) > 5 else "")
        return Rejection(Reason.WRONG_SITE, f"addressed to {shown}, not to {site_id}",
                         key_id=env.key_id)
    if now > env.payload.not_after:
        return Rejection(Reason.EXPIRED, f"valid until {iso(env.payload.not_after)}; this site's "
                         f"clock says {iso(now)}", key_id=env.key_id)
    return env


def iso(ts: float) -> str:
    """A UTC time the way operators read it in reports."""
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
    except (OverflowError, OSError, ValueError):
        return f"{ts:g} (out of range)"
