"""The budget of the fuzz tests: few examples in the suite, many by command.

    .venv/bin/python -m pytest -q tests/fuzz                       # the suite's budget
    FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -q tests/fuzz   # or scripts/fuzz.sh

Each input must be handled within ``SECONDS_PER_INPUT`` and ``MIB_PER_INPUT`` of Python
allocations at its peak, with only the documented typed errors (docs/limits.md).
"""

from __future__ import annotations

import contextlib
import os
import time
import tracemalloc
from typing import Iterator

from hypothesis import HealthCheck, settings

SECONDS_PER_INPUT = float(os.environ.get("FUZZ_SECONDS_PER_INPUT", "1.0"))
MIB_PER_INPUT = 32


def fuzz_settings(suite_examples: int) -> settings:
    """``suite_examples`` in the suite, ``FUZZ_EXAMPLES`` when set; no per-example deadline
    (timing is checked by ``bounded``, with a margin for a busy machine)."""
    examples = int(os.environ.get("FUZZ_EXAMPLES", suite_examples))
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


@contextlib.contextmanager
def bounded(what: str, *, seconds: float = SECONDS_PER_INPUT,
            mib: float = MIB_PER_INPUT) -> Iterator[None]:
    """Fail if the body takes longer than ``seconds`` or allocates more than ``mib`` at its peak."""
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] - base
        if not tracing:
            tracemalloc.stop()
    assert elapsed <= seconds, f"{what}: {elapsed:.3f} s for one input (limit {seconds} s)"
    assert peak <= mib * 2**20, f"{what}: {peak / 2**20:.1f} MiB at peak (limit {mib} MiB)"
