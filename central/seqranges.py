"""Arithmetic on sorted, disjoint, inclusive ranges of sequence numbers: ``[(lo, hi), ...]``.

A site's stored readings are a handful of ranges: everything up to the acknowledged seq, plus
islands while live readings run ahead of the backlog. Pure functions, no I/O.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence

Range = tuple[int, int]


def merge(ranges: Iterable[Range]) -> list[Range]:
    """Sorted, disjoint ranges covering the same seqs; adjacent ranges are joined."""
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(lo, hi) for lo, hi in out]


def uncovered(lo: int, hi: int, ranges: Sequence[Range]) -> list[Range]:
    """The parts of ``[lo, hi]`` not in ``ranges`` (sorted and disjoint)."""
    out: list[Range] = []
    i = max(bisect_right(ranges, (lo, 2**63)) - 1, 0)
    cur = lo
    while cur <= hi and i < len(ranges):
        rlo, rhi = ranges[i]
        if rhi < cur:
            i += 1
            continue
        if rlo > hi:
            break
        if rlo > cur:
            out.append((cur, rlo - 1))
        cur = max(cur, rhi + 1)
        i += 1
    if cur <= hi:
        out.append((cur, hi))
    return out


def count(ranges: Iterable[Range]) -> int:
    return sum(hi - lo + 1 for lo, hi in ranges)


def watermark(ranges: Sequence[Range]) -> int:
    """Highest seq N such that every seq 1..N is covered (0 when seq 1 is missing)."""
    merged = merge(ranges)
    if merged and merged[0][0] <= 1:
        return merged[0][1]
    return 0


def holes(ranges: Sequence[Range], below: int) -> list[Range]:
    """Seqs in ``1..below-1`` that ``ranges`` does not cover."""
    if below <= 1:
        return []
    return uncovered(1, below - 1, merge(ranges))
