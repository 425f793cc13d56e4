"""When to try the broker again: a pure schedule (no I/O, no clock of its own), driven by the
forwarder with what happened and when (docs/fleet.md, "Reconnection").

Three rules, so that 3,180 clinics whose broker comes back neither wait minutes nor storm it:

* **Exponential backoff with full jitter** (AWS style): the wait before the next attempt is
  ``uniform(0, min(cap, BASE_S * 2**n))``. Full jitter spreads a fleet that lost its broker at
  the same instant over the whole interval, unlike paho's own doubling (no randomness) or
  tenacity's ``wait_exponential_jitter`` (the exponential part is the same for everyone).
  Two counters: ``broker_failures`` (the broker was reached and refused, failed the TLS
  handshake, or dropped us within ``STABLE_S``) grows the wait that protects the broker and is
  reset *only* by a connection that stayed up ``STABLE_S``; ``path_failures`` (nothing listening,
  no route) paces the attempts while the path is down, where the probe below does the real work.
* **A rate floor**: never more than ``ATTEMPTS_PER_MINUTE`` connections that reach the broker in
  any ``RATE_WINDOW_S``. EMQX's flapping detection bans a client id for 5 minutes after 15
  connections in a minute (``flapping_detect``: max_count 15, window_time 1m, ban_time 5m);
  12 leaves a margin. Attempts that never reached the port (refused, no route, DNS) are not
  counted: the broker never saw them.
* **A reachability probe**: while waiting, a plain TCP connect to the broker's port (no TLS, no
  MQTT) every ``PROBE_INTERVAL_S`` (jittered) while the port is known down. The first probe that
  succeeds after one that failed (the path came back) ends the wait; the real connect follows
  after ``uniform(0, CONNECT_JITTER_S)`` so a fleet does not handshake in lockstep. While the
  port is known up (the broker itself fails us) the probe runs every ``PROBE_UP_INTERVAL_S``
  only to notice the broker going away; a successful probe then never shortens the backoff.
  A probe costs one SYN (and a RST or SYN-ACK/FIN): about 5 MB a day if the path stays down.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

BASE_S = 1.0                # the first backoff interval
STABLE_S = 30.0             # a connection that lasted this long resets the broker backoff
ATTEMPTS_PER_MINUTE = 12    # connections reaching the broker in any RATE_WINDOW_S (EMQX bans at 15)
RATE_WINDOW_S = 60.0
PROBE_INTERVAL_S = 1.0      # while the port is down or unknown: notice its return within ~1 s
PROBE_UP_INTERVAL_S = 10.0  # while the port is up but the broker fails us
PROBE_TIMEOUT_S = 1.0       # a probe that gets no SYN-ACK in this long counts as down
CONNECT_JITTER_S = 1.0      # after the probe saw the path come back
_MAX_EXPONENT = 30          # 2**30 s is far beyond any cap; keeps the float finite

Failure = Literal["path", "broker", "unknown"]
PathState = Literal["unknown", "down", "up"]


@dataclass
class ReconnectPolicy:
    """The schedule of one agent's connection attempts. Times are ``time.monotonic()`` seconds,
    passed in by the caller (tests pass their own); ``rng`` makes the jitter reproducible."""

    cap_s: float = 300.0                  # [mqtt] reconnect_max_s
    base_s: float = BASE_S
    stable_s: float = STABLE_S
    max_attempts: int = ATTEMPTS_PER_MINUTE
    window_s: float = RATE_WINDOW_S
    rng: random.Random = field(default_factory=random.Random)
    broker_failures: int = 0
    path_failures: int = 0
    path: PathState = "unknown"
    _reached: deque[float] = field(default_factory=deque)   # attempts that reached the broker

    # -- what happened ------------------------------------------------------------------------

    def connected(self, now: float) -> None:
        """A connection came up (CONNACK success). Does not reset the backoff: see ``lost``."""
        self._reached.append(now)
        self.path_failures = 0
        self.path = "up"

    def lost(self, now: float, connected_at: float) -> None:
        """The connection that came up at ``connected_at`` ended: only one that lasted
        ``stable_s`` resets the broker backoff (a broker that accepts then drops us is failing)."""
        if now - connected_at >= self.stable_s:
            self.broker_failures = 0
        else:
            self.broker_failures += 1
        self.path = "unknown"

    def failed(self, now: float, where: Failure) -> None:
        """An attempt failed: ``path`` never reached the port (refused, no route, DNS), ``broker``
        reached it (TLS, CONNACK refusal, closed during the handshake), ``unknown`` timed out."""
        if where == "path":
            self.path_failures += 1
            self.path = "down"
            return
        self.broker_failures += 1
        if where == "broker":
            self._reached.append(now)
            self.path_failures = 0
            self.path = "up"
        else:
            self.path = "unknown"   # the next probe tells which

    def probed(self, ok: bool) -> bool:
        """A probe's outcome; True when it shows the path came back (the wait should end)."""
        if not ok:
            self.path = "down"
            return False
        came_back = self.path == "down"
        self.path = "up"
        return came_back

    # -- what to do ---------------------------------------------------------------------------

    def ceiling_s(self, failures: int) -> float:
        """The upper bound of the jittered wait after ``failures`` consecutive failures."""
        return min(self.cap_s, self.base_s * 2.0 ** min(failures, _MAX_EXPONENT))

    def backoff_s(self) -> float:
        """The wait before the next attempt unless a probe ends it (full jitter)."""
        failures = self.path_failures if self.path == "down" else self.broker_failures
        return self.rng.uniform(0.0, self.ceiling_s(failures))

    def rate_wait_s(self, now: float) -> float:
        """Seconds until an attempt keeps within ``max_attempts`` per ``window_s`` (0: now)."""
        while self._reached and now - self._reached[0] >= self.window_s:
            self._reached.popleft()
        if len(self._reached) < self.max_attempts:
            return 0.0
        # a millisecond more: the oldest attempt has then surely left the window
        return self._reached[-self.max_attempts] + self.window_s - now + 0.001

    def probe_interval_s(self) -> float:
        """The next probe, jittered +-50 % so the probes of a fleet do not line up either."""
        base = PROBE_UP_INTERVAL_S if self.path == "up" else PROBE_INTERVAL_S
        return self.rng.uniform(0.5 * base, 1.5 * base)

    def connect_jitter_s(self) -> float:
        """The pause between a probe that found the path back and the real connect."""
        return self.rng.uniform(0.0, CONNECT_JITTER_S)

    def reached_in_window(self, now: float) -> int:
        """Attempts that reached the broker in the last ``window_s`` (status, tests)."""
        self.rate_wait_s(now)
        return len(self._reached)
