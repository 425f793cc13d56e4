"""Figures from what the simulator recorded: windows, percentiles, the broker's CPU and memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psutil


def max_in_window(times: Sequence[float], window_s: float = 60.0) -> int:
    """Most events in any ``window_s``-long window (sliding, not aligned to the minute)."""
    ts = sorted(times)
    best = lo = 0
    for hi, t in enumerate(ts):
        while t - ts[lo] >= window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def percentile(values: Sequence[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100 * (len(s) - 1)))))
    return round(s[k], 3)


def time_to_fraction(arrivals: Sequence[float | None], since: float,
                     fraction: float) -> float | None:
    """Seconds from ``since`` until ``fraction`` of the clinics had arrived (None: never)."""
    got = sorted(a for a in arrivals if a is not None)
    need = max(1, int(-(-fraction * len(arrivals) // 1)))   # ceil
    if len(got) < need:
        return None
    return round(got[need - 1] - since, 2)


@dataclass
class BrokerSample:
    at: float
    cpu_pct: float      # of one core, over the last interval
    rss_mib: float
    cpu_s: float = 0.0  # CPU seconds used in the last interval


@dataclass
class BrokerSampler:
    """Samples the broker process (whichever pid it has now: it restarts) every ``every_s``."""

    pid: Callable[[], int | None]
    every_s: float = 0.5
    samples: list[BrokerSample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="broker-sampler")

    def start(self) -> BrokerSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        proc: psutil.Process | None = None
        last_cpu = 0.0
        last_at = time.monotonic()
        while not self._stop.wait(self.every_s):
            pid = self.pid()
            if pid is None:
                proc = None
                continue
            try:
                if proc is None or proc.pid != pid:
                    # A new broker process: count its CPU from its start (it reads its
                    # persistence file and accepts the first connections meanwhile).
                    proc = psutil.Process(pid)
                    last_cpu = 0.0
                    last_at = time.monotonic() - max(time.time() - proc.create_time(), 0.0)
                t = proc.cpu_times()
                now = time.monotonic()
                cpu = t.user + t.system
                pct = 100 * (cpu - last_cpu) / max(now - last_at, 1e-6)
                prev_at = last_at
                last_cpu, last_at = cpu, now
                self.samples.append(BrokerSample(time.time(), round(pct, 1),
                                                 round(proc.memory_info().rss / 2**20, 1),
                                                 round(pct / 100 * (now - prev_at), 4)))
            except psutil.Error:
                proc = None

    def summary(self, start: float, end: float) -> dict[str, float | None]:
        window = [s for s in self.samples if start <= s.at <= end]
        if not window:
            return {"cpu_peak_pct": None, "cpu_mean_pct": None, "rss_peak_mib": None}
        # Peak over one-second windows (two samples), not a single 0.5 s blip.
        pairs = [(a.cpu_pct + b.cpu_pct) / 2 for a, b in zip(window, window[1:], strict=False)] or \
            [window[0].cpu_pct]
        return {"cpu_s": round(sum(s.cpu_s for s in window), 2),
                "cpu_peak_pct": round(max(pairs), 1),
                "cpu_mean_pct": round(sum(s.cpu_pct for s in window) / len(window), 1),
                "rss_peak_mib": max(s.rss_mib for s in window),
                "rss_end_mib": window[-1].rss_mib}
