"""WAN source: can the clinic reach the internet, how fast, how reliably, and what the router says.

One poll:

    every target at once: TCP connect (host:port), or ICMP echo (bare host) where the OS lets an
    unprivileged process ping, else TCP to ``icmp_fallback_port``
      -> up/latency per target; loss over the last ``window`` polls per target
      -> wan.up = any target reached; with ``router``, that device's latest view of its WAN
         interface beside it (from the factory's ``LatestSamples``) and a one-word diagnosis

Metrics::

    wan.up                        True when at least one target answered this poll
    wan.latency_ms          ms    the fastest answer this poll (absent when none answered)
    wan.loss_pct            %     failed probes over the window, all targets together
    target.<key>.up               this target answered
    target.<key>.latency_ms ms    TCP handshake or echo round trip
    target.<key>.loss_pct   %     failed probes of this target over the window
    router.wan_up                 the router's if.wan.oper_up from its latest poll (only when fresh)
    router.wan_name               the router's WAN interface
    wan.diagnosis                 ok | router_wan_down (the router's WAN link is down) |
                                  upstream (the router's WAN is up, nothing beyond answers) |
                                  router_unreachable (no fresh poll of the router) | down

Why the router's view is read here rather than joined centrally: the two facts mean something
only together and at the same moment ("our link is up but the internet is not" is an ISP call,
"the router's WAN is down" is a cable, modem or SIM), the clinic's technician sees the diagnosis
in ``clinic-agent status`` without the central side, and it costs no extra request: the router
is polled by its own source anyway. The sources stay independent: they share only the
snapshot registry, and a router that stopped answering ages out of it instead of looking up.

A target that refuses the connection counts as not reached: the path may be fine, but what the
clinic needs from that target is not. Failing to reach every target is a measurement
(``wan.up`` false), not a failed poll.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import itertools
import logging
import os
import socket
import struct
import time
from collections.abc import Callable

from agent.config import DeviceConfig
from agent.config.wan import WanSettings, WanTarget
from agent.logs import OnceLog
from agent.readings import Sample
from agent.sources.latest import LatestSamples

log = logging.getLogger(__name__)

ROUTER_WAN_UP = "if.wan.oper_up"
ROUTER_WAN_NAME = "if.wan.name"
_ICMP_ECHO_REQUEST = 8
_ICMP_ECHO_REPLY = 0
_ICMP_NOT_PERMITTED = (errno.EACCES, errno.EPERM, errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT,
                       errno.EAFNOSUPPORT)


class IcmpNotPermitted(Exception):
    """This process may not open an unprivileged ICMP socket (net.ipv4.ping_group_range)."""


def icmp_checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


async def tcp_probe(host: str, port: int, timeout_s: float) -> float | None:
    """Milliseconds to complete a TCP handshake with host:port, or None if it did not."""
    start = time.perf_counter()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (TimeoutError, OSError):
        return None
    elapsed = (time.perf_counter() - start) * 1000
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    except (TimeoutError, OSError):
        pass
    return elapsed


_sequence = itertools.count(1)


async def icmp_probe(host: str, timeout_s: float) -> float | None:
    """Milliseconds for an ICMP echo round trip to ``host`` (IPv4), or None without an answer.

    Uses the unprivileged "ping socket" (SOCK_DGRAM, IPPROTO_ICMP); raises ``IcmpNotPermitted``
    where the kernel does not allow this process one, so the caller can fall back to TCP.
    """
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    except OSError as exc:
        if exc.errno in _ICMP_NOT_PERMITTED:
            raise IcmpNotPermitted(os.strerror(exc.errno or 0)) from exc
        raise
    loop = asyncio.get_running_loop()
    with sock:
        sock.setblocking(False)
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, None, family=socket.AF_INET, type=socket.SOCK_DGRAM),
                timeout_s)
        except (TimeoutError, OSError):
            return None
        address = infos[0][4][0]
        seq = next(_sequence) & 0xFFFF
        payload = b"clinic-edge-agent"
        header = struct.pack("!BBHHH", _ICMP_ECHO_REQUEST, 0, 0, 0, seq)
        packet = struct.pack("!BBHHH", _ICMP_ECHO_REQUEST, 0, icmp_checksum(header + payload), 0,
                             seq) + payload
        start = time.perf_counter()
        deadline = start + timeout_s
        try:
            await loop.sock_sendto(sock, packet, (address, 0))
            while True:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    return None
                reply = await asyncio.wait_for(loop.sock_recv(sock, 2048), remaining)
                # The kernel strips the IP header and rewrites the identifier on ping sockets.
                if len(reply) >= 8 and reply[0] == _ICMP_ECHO_REPLY and \
                        struct.unpack("!H", reply[6:8])[0] == seq:
                    return (time.perf_counter() - start) * 1000
        except (TimeoutError, OSError):
            return None


class WanSource:
    """Measures the clinic's internet link; see the module docstring for metrics."""

    def __init__(self, device: DeviceConfig[WanSettings], *, latest: LatestSamples | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = device.name
        self.device = device
        self.settings: WanSettings = device.settings
        self._latest = latest
        self._clock = clock
        self._history: dict[str, collections.deque[bool]] = {
            t.key: collections.deque(maxlen=self.settings.window) for t in self.settings.targets}
        self._icmp_permitted: bool | None = None      # None: not tried yet
        self._log = OnceLog(log)

    async def read(self) -> list[Sample]:
        """Probe every target once, concurrently. Never raises for an unreachable target."""
        targets = self.settings.targets
        latencies = await asyncio.gather(*(self._probe(t) for t in targets))
        samples: list[Sample] = []
        reached: list[float] = []
        failures = probes = 0
        for target, latency in zip(targets, latencies, strict=True):
            history = self._history[target.key]
            history.append(latency is not None)
            failures += history.count(False)
            probes += len(history)
            prefix = f"target.{target.key}."
            samples.append(Sample(prefix + "up", latency is not None))
            if latency is not None:
                reached.append(latency)
                samples.append(Sample(prefix + "latency_ms", round(latency, 1), "ms"))
            samples.append(Sample(prefix + "loss_pct",
                                  round(100 * history.count(False) / len(history), 1), "%"))
        up = bool(reached)
        head = [Sample("wan.up", up)]
        if reached:
            head.append(Sample("wan.latency_ms", round(min(reached), 1), "ms"))
        head.append(Sample("wan.loss_pct", round(100 * failures / probes, 1) if probes else 0.0,
                           "%"))
        return head + samples + self._router_view(up)

    async def close(self) -> None:
        """Nothing stays open between polls."""

    # -- probes ------------------------------------------------------------------------------

    async def _probe(self, target: WanTarget) -> float | None:
        timeout = self.device.timeout_s
        if target.port is not None:
            return await tcp_probe(target.host, target.port, timeout)
        if self._icmp_permitted is not False:
            try:
                latency = await icmp_probe(target.host, timeout)
                self._icmp_permitted = True
                return latency
            except IcmpNotPermitted as exc:
                self._icmp_permitted = False
                log.info("%s: this process may not send ICMP echo (%s; see sysctl "
                         "net.ipv4.ping_group_range); using TCP port %d instead", self.name, exc,
                         self.settings.icmp_fallback_port)
        return await tcp_probe(target.host, self.settings.icmp_fallback_port, timeout)

    # -- the router's view -------------------------------------------------------------------

    def _router_view(self, up: bool) -> list[Sample]:
        router = self.settings.router
        if router is None:
            return [Sample("wan.diagnosis", "ok" if up else "down")]
        snap = self._latest.get(router) if self._latest is not None else None
        samples: list[Sample] = []
        wan_up = snap.value(ROUTER_WAN_UP) if snap is not None else None
        if snap is not None and isinstance(wan_up, bool):
            samples.append(Sample("router.wan_up", wan_up))
            name = snap.value(ROUTER_WAN_NAME)
            if isinstance(name, str):
                samples.append(Sample("router.wan_name", name))
        elif snap is not None:
            self._once("router-no-wan", "%s: the latest poll of %s has no %s (no WAN recognised "
                       "there; set its wan_interface)", router, ROUTER_WAN_UP)
        elif self._latest is None or self._latest.age_s(router) is None:
            self._once("router-none", "%s: no readings from %r yet (is it an snmp device of this "
                       "config?)", router)
        if up:
            diagnosis = "ok"
        elif isinstance(wan_up, bool):
            diagnosis = "upstream" if wan_up else "router_wan_down"
        elif self._latest is not None and self._latest.age_s(router) is not None:
            diagnosis = "router_unreachable"
        else:
            diagnosis = "down"
        return samples + [Sample("wan.diagnosis", diagnosis)]

    def _once(self, key: str, message: str, *args: object) -> None:
        self._log.problem(key, message, self.name, *args)
