"""Counter rates between polls: wraps, resets, reboots and discontinuities.

    CounterRates.rate(slot, counter) -> bit/s from the previous reading of the same counter, or
    None when no honest rate exists (first reading, renamed interface, another counter column,
    ifCounterDiscontinuityTime changed, a drop that is no wrap the link could carry)
    UptimeWatch.check(sysUpTime) -> whether the device rebooted (sysUpTime went backwards)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from agent.logs import OnceLog
from agent.sources.snmp_client import COUNTER32, COUNTER64, GAUGE, VarBind

log = logging.getLogger(__name__)

# Faster than any link a clinic could have; a counter "rate" above it is a counter reset.
ABSOLUTE_MAX_BPS = 1e12
# A wrap is believed only when the rate it implies fits the link (with slack for wrong speeds).
WRAP_SPEED_SLACK = 1.5
_TICKS_MODULUS = 2**32


def counter_rate(prev: int, cur: int, dt_s: float, *, bits: int,
                 link_bps: float | None = None) -> float | None:
    """Bit/s between two readings of an octet counter, or None when no honest rate exists.

    A negative delta is a wrap only if the wrapped delta is a rate the link could carry
    (``link_bps`` when known); otherwise the counter was reset (agent restart, interface
    re-created) and the poll gives no rate. A 64-bit counter practically never wraps, so a
    negative 64-bit delta always implies an absurd rate and is treated as a reset.
    """
    if dt_s <= 0 or prev < 0 or cur < 0:
        return None
    delta = cur - prev
    limit = ABSOLUTE_MAX_BPS
    if delta < 0:
        delta += 1 << bits
        if delta < 0:
            return None
        if link_bps:
            limit = min(limit, link_bps * WRAP_SPEED_SLACK)
    rate = delta * 8 / dt_s
    return rate if rate <= limit else None


def uptime_went_backwards(prev_ticks: int, cur_ticks: int, elapsed_s: float) -> bool:
    """True when sysUpTime went backwards for a reason other than its 497-day wrap (a reboot)."""
    if cur_ticks >= prev_ticks:
        return False
    expected = prev_ticks + elapsed_s * 100
    if expected >= _TICKS_MODULUS:
        slack = max(60 * 100, elapsed_s * 100 * 0.1)
        if abs((expected - _TICKS_MODULUS) - cur_ticks) <= slack:
            return False
    return True


def is_counter(entry: tuple[VarBind, float] | None) -> bool:
    """Whether a walked cell holds a usable octet counter."""
    if entry is None:
        return False
    vb = entry[0]
    return vb.kind in (COUNTER64, COUNTER32, GAUGE) and isinstance(vb.value, int) and vb.value >= 0


@dataclass(frozen=True)
class Counter:
    """One reading of an octet counter."""

    key: str          # interface key it belonged to; a renamed index starts over
    column: str       # "in64", "in32", ...: rates only between readings of the same counter
    value: int
    bits: int
    t: float
    discontinuity: int | None = None   # ifCounterDiscontinuityTime with this reading


class CounterRates:
    """The previous reading of each counter (per ifIndex and direction), and rates from it."""

    def __init__(self, device: str, once: OnceLog) -> None:
        self.device = device
        self._once = once
        self._counters: dict[tuple[int, str], Counter] = {}

    def clear(self) -> None:
        """Forget every reading (the device rebooted: its counters started over)."""
        self._counters.clear()

    def rate(self, slot: tuple[int, str], cur: Counter, link_bps: int | None,
             metric: str, name: str) -> float | None:
        prev = self._counters.get(slot)
        self._counters[slot] = cur
        if prev is None or prev.key != cur.key or prev.column != cur.column:
            return None
        if prev.discontinuity != cur.discontinuity and None not in (prev.discontinuity,
                                                                     cur.discontinuity):
            # RFC 2863: the counters of this interface may have been reset or re-created since
            # the last poll (a PPP session coming back, a module re-inserted): no rate.
            self._once.problem(f"discontinuity:{slot[0]}", "%s: %s counters were re-created "
                               "(ifCounterDiscontinuityTime changed); no rate this poll",
                               self.device, name, level=logging.INFO)
            return None
        rate = counter_rate(prev.value, cur.value, cur.t - prev.t, bits=cur.bits,
                            link_bps=float(link_bps) if link_bps else None)
        if rate is None:
            self._once.problem(f"reset:{metric}", "%s: %s counter went from %d to %d, which is "
                               "no wrap the link could carry: counter reset, no rate this poll",
                               self.device, metric, prev.value, cur.value, level=logging.INFO)
        return rate


class UptimeWatch:
    """Tells a reboot from sysUpTime going backwards (and not merely wrapping)."""

    def __init__(self) -> None:
        self._last: tuple[int, float] | None = None

    def check(self, ticks: int, t: float) -> bool:
        rebooted = False
        if self._last is not None:
            prev_ticks, prev_t = self._last
            rebooted = uptime_went_backwards(prev_ticks, ticks, t - prev_t)
        self._last = (ticks, t)
        return rebooted
