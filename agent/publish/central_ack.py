"""Release on the central acknowledgement (``buffer.release = "central"``): which readings the
broker took but the central ingest has not yet confirmed, when to send them again, and how far
the retained ack on ``PREFIX/SITE/ack`` lets the buffer be emptied.

    Forwarder --PUBACK(ranges)--> CentralRelease.sent()        (held: sent, awaiting the ack)
    PREFIX/SITE/ack --seq N-----> CentralRelease.on_ack(N) --> release up to R --> StoreWriter.ack
    Forwarder <--overdue()------- held longer than the timeout: sent again on the backlog lane

Kept in memory only, by choice. Persisting "sent" would put a write into every transaction for
a fact that is cheap to lose: after a restart every reading still in the buffer counts as unsent
and goes out again on the backlog lane (the ingest stores it once and acks it again). In steady
state that is the few seconds of readings the ack had not yet covered, plus those it covered
whose deletion was still waiting for the next poll's transaction (``StoreWriter`` merges
deletions into it); only after a long central outage is it the whole buffer, which the timeout
would resend anyway. The disk writes per minute (docs/benchmarks.md) stay those of broker mode.

What an ack may release, and what it may not:

* ``R = min(N, highest seq the broker acknowledged to this process)``: a reading is never
  released on an ack that arrived before anything of this run reached the broker.
* An ack above the highest seq the buffer ever assigned (``last_seq``) is *foreign*: the centre
  holds a numbering this buffer never made (an agent reinstalled with a fresh state directory
  under a site id the centre knows, a restored old state directory, a forged message). It
  releases nothing and is logged. A buffer replaced after corruption is not such a case: it
  continues numbering above its reservation (``<buffer>.seq``), so acks of the old file are
  below every seq it holds and release nothing that exists.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

BACKOFF_MAX = 16        # the timeout grows to at most this many times its setting
MERGE_FRACTION = 0.1    # adjacent ranges sent within this fraction of the timeout are one entry


@dataclass
class _Held:
    lo: int
    hi: int
    sent_at: float      # monotonic time of the broker's PUBACK (the oldest, when merged)


class CentralRelease:
    """Readings sent and awaiting the central ack, as disjoint inclusive seq ranges."""

    def __init__(self, *, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._held: list[_Held] = []    # sorted by lo, disjoint
        self._los: list[int] = []       # the lo of each entry, for bisect
        self.acked = 0                  # the latest central ack seen (it only grows)
        self.released = 0               # readings up to here are released (or never ours)
        self.sent_max = 0               # highest seq the broker acknowledged to this process
        self.resent_total = 0           # readings handed back for resending
        self.foreign_acks = 0
        self._backoff = 1               # doubles at each overdue round without ack progress
        self._progress_at_overdue = 0

    # -- what the forwarder reports ------------------------------------------------------------

    def sent(self, ranges: tuple[tuple[int, int], ...] | list[tuple[int, int]],
             now: float) -> int:
        """The broker acknowledged these ranges: hold them for the central ack. Returns the new
        release point (0: nothing new to release)."""
        for lo, hi in ranges:
            self.sent_max = max(self.sent_max, hi)
            lo = max(lo, self.released + 1)
            if lo <= hi:
                self._remove(lo, hi)
                self._insert(lo, hi, now)
        return self._advance()

    def on_ack(self, seq: int, last_seq: int) -> int:
        """The centre acknowledged everything up to ``seq``; ``last_seq`` is the newest seq the
        buffer ever assigned. Returns the new release point (0: nothing new)."""
        if seq > last_seq:
            self.foreign_acks += 1
            if self.foreign_acks == 1:
                log.error("the central ack says seq %d is stored, but this buffer never numbered "
                          "a reading above %d: the centre knows another numbering of this site "
                          "(agent reinstalled with a new state directory, or an old one "
                          "restored). Nothing is released on it; readings stay in the buffer "
                          "until its caps drop them. Ask the central team to check the site.",
                          seq, last_seq)
            return 0
        self.acked = max(self.acked, seq)
        return self._advance()

    def _advance(self) -> int:
        upto = min(self.acked, self.sent_max)
        if upto <= self.released:
            return 0
        self.released = upto
        self._remove(1, upto)
        return upto

    # -- what the forwarder asks ---------------------------------------------------------------

    def current_timeout(self) -> float:
        return self.timeout_s * self._backoff

    def overdue(self, now: float) -> list[tuple[int, int]]:
        """Ranges held longer than the timeout, taken out of the held set: the caller sends them
        again (as backlog) and reports them with ``sent`` once the broker has them. Without ack
        progress since the previous round the timeout doubles (a central ingest that is down
        does not make the clinic resend its whole buffer every few minutes), up to
        ``BACKOFF_MAX`` times; progress resets it."""
        limit = now - self.current_timeout()
        due = [(h.lo, h.hi) for h in self._held if h.sent_at <= limit]
        if not due:
            return []
        if self.released > self._progress_at_overdue:
            self._backoff = 1
        else:
            self._backoff = min(self._backoff * 2, BACKOFF_MAX)
        self._progress_at_overdue = self.released
        for lo, hi in due:
            self._remove(lo, hi)
            self.resent_total += hi - lo + 1
        return due

    def skip(self, after: int) -> int:
        """The cursor of a lane that sends unsent readings: past the released ones, and past a
        held range that contains ``after + 1``."""
        after = max(after, self.released)
        i = bisect.bisect_right(self._los, after + 1) - 1
        while 0 <= i < len(self._held) and self._held[i].lo <= after + 1 <= self._held[i].hi:
            after = self._held[i].hi
            i += 1
        return after

    def next_held_lo(self, after: int) -> int | None:
        """The first held seq above ``after``: a lane's fetch stops below it."""
        i = bisect.bisect_right(self._los, after)
        return self._held[i].lo if i < len(self._held) else None

    def held_ranges(self) -> list[tuple[int, int]]:
        """Sent and not yet released, and everything released (deleted with the writer's next
        transaction): the readings that are not waiting to be sent."""
        out = [(1, self.released)] if self.released else []
        out.extend((h.lo, h.hi) for h in self._held)
        return out

    def held_count(self) -> int:
        return sum(h.hi - h.lo + 1 for h in self._held)

    # -- the sorted set ------------------------------------------------------------------------

    def _insert(self, lo: int, hi: int, now: float) -> None:
        i = bisect.bisect_left(self._los, lo)
        merge = self.timeout_s * MERGE_FRACTION
        if i > 0:
            prev = self._held[i - 1]
            if prev.hi + 1 == lo and abs(now - prev.sent_at) <= merge:
                prev.hi = hi
                prev.sent_at = min(prev.sent_at, now)
                return
        self._held.insert(i, _Held(lo, hi, now))
        self._los.insert(i, lo)

    def _remove(self, lo: int, hi: int) -> None:
        """Take ``lo..hi`` out of the held set (splitting entries that straddle it)."""
        i = max(bisect.bisect_right(self._los, lo) - 1, 0)
        kept: list[_Held] = []
        j = i
        while j < len(self._held) and self._held[j].lo <= hi:
            h = self._held[j]
            if h.hi >= lo:
                if h.lo < lo:
                    kept.append(_Held(h.lo, lo - 1, h.sent_at))
                if h.hi > hi:
                    kept.append(_Held(hi + 1, h.hi, h.sent_at))
            else:
                kept.append(h)
            j += 1
        if j == i and not kept:
            return
        self._held[i:j] = kept
        self._los[i:j] = [h.lo for h in kept]
