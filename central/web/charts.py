"""A clinic's charts: VictoriaMetrics ``query_range`` -> small inline SVG, drawn on the server.

No charting library reaches the browser: each chart is a few polylines (a few KB), readable on a
slow link and without JavaScript. A gap in the data (the clinic silent) breaks the line.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from html import escape

import httpx

log = logging.getLogger(__name__)

W, H, PAD_L, PAD_B = 600, 110, 4, 14
POINTS = 150            # samples per chart: step = range / POINTS
RANGES = {"6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400}   # the page's choices


@dataclass(frozen=True)
class ChartSpec:
    key: str                  # the title's message id is chart.<key>
    metrics: tuple[str, ...]  # one line per metric (and device)


CHARTS = (
    ChartSpec("input_voltage", ("input.voltage",)),
    ChartSpec("battery", ("battery.charge_pct",)),
    ChartSpec("wan_latency", ("wan.latency_ms",)),
    ChartSpec("wan_loss", ("wan.loss_pct",)),
    ChartSpec("traffic", ("if.wan.in_bps", "if.wan.out_bps")),
)


@dataclass(frozen=True)
class Series:
    label: str
    points: tuple[tuple[float, float], ...]   # (epoch s, value)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def query(vm_url: str, site: str, spec: ChartSpec, *, start: float, end: float,
          timeout_s: float = 5.0) -> list[Series] | None:
    """The chart's series; None when VictoriaMetrics did not answer."""
    step = max(math.ceil((end - start) / POINTS), 15)
    names = "|".join(m.replace(".", "\\\\.") for m in spec.metrics)
    promql = f'clinic_value{{site="{_label(site)}",metric=~"{names}"}}'
    # nocache: otherwise VictoriaMetrics aligns the range to its step for its cache, and the
    # newest minutes (the outage just reported) are missing from the line
    try:
        r = httpx.post(f"{vm_url}/api/v1/query_range",
                       data={"query": promql, "start": f"{start:.0f}", "end": f"{end:.0f}",
                             "step": f"{step}s", "nocache": "1"}, timeout=timeout_s)
        r.raise_for_status()
        result = r.json()["data"]["result"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        log.warning("VictoriaMetrics query_range for %s failed: %s", site, exc)
        return None
    out = []
    for s in result:
        labels = s.get("metric", {})
        pts = []
        for t, v in s.get("values", []):
            try:
                fv = float(v)
            except (TypeError, ValueError):
                continue
            if math.isfinite(fv):
                pts.append((float(t), fv))
        out.append(Series(f"{labels.get('device', '')} {labels.get('metric', '')}".strip(),
                          tuple(pts)))
    out.sort(key=lambda s: s.label)
    return out


def _fmt(v: float) -> str:
    if abs(v) >= 1e6:
        return f"{v / 1e6:.1f}M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:.0f}k"
    return f"{v:.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.1f}"


def svg(series: list[Series], *, start: float, end: float, step: float, title: str,
        no_data: str, range_text: str, start_label: str, end_label: str) -> str:
    """One chart as an inline SVG element (``range_text`` has {lo} and {hi})."""
    values = [v for s in series for _, v in s.points]
    head = (f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>')
    frame = (f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{W}" y2="{H - PAD_B}" class="ax"/>'
             f'<text x="{PAD_L}" y="{H - 2}" class="lb">{escape(start_label)}</text>'
             f'<text x="{W}" y="{H - 2}" class="lb" text-anchor="end">{escape(end_label)}</text>')
    if not values:
        return (head + frame + f'<text x="{W / 2}" y="{H / 2}" class="lb" text-anchor="middle">'
                f"{escape(no_data)}</text></svg>")
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    span = max(end - start, 1.0)

    def xy(t: float, v: float) -> str:
        x = PAD_L + min(max((t - start) / span, 0.0), 1.0) * (W - PAD_L)
        y = 2 + (hi - v) / (hi - lo) * (H - PAD_B - 4)
        return f"{x:.1f},{y:.1f}"

    lines = []
    for i, s in enumerate(series):
        run: list[str] = []
        prev: float | None = None
        for t, v in s.points:
            if prev is not None and t - prev > 2.5 * step and run:
                lines.append(_poly(run, i))
                run = []
            run.append(xy(t, v))
            prev = t
        if run:
            lines.append(_poly(run, i))
    text = escape(range_text.format(lo=_fmt(min(values)), hi=_fmt(max(values))))
    return (head + frame + "".join(lines)
            + f'<text x="{PAD_L + 2}" y="11" class="lb">{text}</text></svg>')


def _poly(points: list[str], i: int) -> str:
    if len(points) == 1:
        x, y = points[0].split(",")
        return f'<circle cx="{x}" cy="{y}" r="1.5" class="s{i % 3}"/>'
    return f'<polyline points="{" ".join(points)}" class="s{i % 3}"/>'
