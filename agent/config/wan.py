"""Settings of a ``wan`` device: the clinic's internet link as the clinic sees it.

Parsed from a ``[[devices]]`` entry with ``kind = "wan"``::

    [[devices]]
    name = "wan"
    kind = "wan"
    interval_s = 30
    timeout_s = 3
    targets = ["broker.example.org:8883", "1.1.1.1:53"]   # host:port = TCP connect
    # targets = ["1.1.1.1"]   # no port: ICMP echo where the OS allows it,
    #                         # else TCP to icmp_fallback_port
    window = 20               # polls over which loss_pct is computed
    router = "router"         # optional: the snmp device whose WAN interface to report beside

The defaults reach two public DNS resolvers over TCP, which needs no privilege and passes
firewalls that drop ICMP; list the broker's host:port first to measure the path that matters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.config.fields import Table, show
from agent.i18n import text

DEFAULT_TARGETS = ("1.1.1.1:53", "9.9.9.9:53")
HOST_PATTERN = r"[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]"


@dataclass(frozen=True)
class WanTarget:
    """One place to reach: TCP ``host:port``, or ICMP echo to ``host`` when ``port`` is None."""

    text: str
    host: str
    port: int | None

    @property
    def key(self) -> str:
        """The target as a metric path segment: "1.1.1.1:53" -> "1_1_1_1_53"."""
        return re.sub(r"[^a-z0-9]+", "_", self.text.lower()).strip("_")


@dataclass(frozen=True)
class WanSettings:
    targets: tuple[WanTarget, ...] = ()
    window: int = 20
    router: str | None = None
    icmp_fallback_port: int = 443


def parse_target(text: str) -> WanTarget | None:
    """``host:port``, ``[v6]:port`` or a bare ``host``; None when it is neither."""
    m = re.fullmatch(rf"(?P<host>{HOST_PATTERN})(:(?P<port>\d{{1,5}}))?", text.strip())
    if not m:
        return None
    port = int(m["port"]) if m["port"] else None
    if port is not None and not 1 <= port <= 65535:
        return None
    return WanTarget(text.strip(), m["host"].strip("[]"), port)


def parse(t: Table) -> WanSettings:
    """Read the WAN keys of one ``[[devices]]`` table, recording every problem on ``t``."""
    texts = t.str_list("targets", DEFAULT_TARGETS) or ()
    targets: list[WanTarget] = []
    for i, written in enumerate(texts):
        target = parse_target(written)
        if target is None:
            t.problem(f"targets[{i}]", "cfg.expected", what=text("cfg.what.wan_target"),
                      got=show(written))
        elif target.key in {x.key for x in targets}:
            t.problem(f"targets[{i}]", "cfg.listed_twice", got=show(written))
        else:
            targets.append(target)
    if not texts:
        t.problem("targets", "cfg.wan.no_targets")
    window = t.int("window", 20, min=1, max=1000)
    router = t.str("router", None, pattern=r"[a-z0-9][a-z0-9_-]{0,31}",
                   what=text("cfg.what.device_name"))
    fallback = t.int("icmp_fallback_port", 443, min=1, max=65535)
    return WanSettings(targets=tuple(targets), window=window or 20, router=router,
                       icmp_fallback_port=fallback or 443)
