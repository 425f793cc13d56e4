"""The optional ``[remote]`` table: signed config pushes and remote commands
(docs/remote-management.md).

It is set in the site's local file only: a push can never change it (see ``agent.remote.push``),
so a bad push cannot switch remote management off, swap the trusted keys or shorten the time the
agent gives a new config to reach the broker before it rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.config.fields import Table
from agent.i18n import text

DEFAULT_TRUSTED_KEYS_DIR = "/etc/clinic-agent/trusted-keys"


@dataclass(frozen=True)
class RemoteConfig:
    enabled: bool = True
    trusted_keys_dir: str = DEFAULT_TRUSTED_KEYS_DIR   # *.pub files (Ed25519, PEM); no private keys
    max_push_bytes: int = 256 * 1024
    confirm_timeout_s: float = 180.0                   # commit-confirmed: reach the broker, or
                                                       # roll back


def parse(t: Table) -> RemoteConfig:
    cfg = RemoteConfig(
        enabled=bool(t.bool("enabled", True)),
        trusted_keys_dir=t.str("trusted_keys_dir", DEFAULT_TRUSTED_KEYS_DIR, pattern=r".+",
                               what=text("cfg.what.directory")),
        max_push_bytes=t.int("max_push_bytes", 256 * 1024, min=1024, max=16 * 1024 * 1024),
        confirm_timeout_s=t.float("confirm_timeout_s", 180.0, min=1.0, max=86400),
    )
    t.finish()
    return cfg
