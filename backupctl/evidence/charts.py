"""Chart geometry for the management summary: plain SVG drawn by the template.

Why plain SVG instead of matplotlib: a chart here is a polyline, a few dots and two dashed
lines. matplotlib would add ~0.5–1 s of import (plus a font cache it wants to write under
$HOME, which the hardened units forbid), numpy and pillow to the install, and its own font
setup for Japanese; the report would get slower for every run of `backupctl report`.
Plain SVG costs nothing to import, is text the tests can read, and WeasyPrint renders it
with the report's own font (IPAGothic).

Functions return numbers ready for SVG attributes; the template only places them.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

WIDTH, HEIGHT = 160.0, 80.0  # drawn 42 mm × 21 mm: 1 unit ≈ 0.26 mm
LEFT, RIGHT, TOP, BOTTOM = 20.0, 5.0, 5.0, 12.0


def _nice(value: float) -> float:
    """A round upper bound for an axis: 1, 2, 5 × 10^n (at least `value`)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        bound = step * 10 ** exponent
        if bound >= value:
            return float(bound)
    return float(10 ** (exponent + 1))


class _Axes:
    def __init__(self, start: str, end: str, ymax: float) -> None:
        self.t0 = datetime.fromisoformat(start).timestamp()
        self.t1 = max(datetime.fromisoformat(end).timestamp(), self.t0 + 1)
        self.ymax = ymax
        self.w = WIDTH - LEFT - RIGHT
        self.h = HEIGHT - TOP - BOTTOM

    def x(self, stamp: str) -> float:
        t = datetime.fromisoformat(stamp).timestamp()
        return round(LEFT + (min(max(t, self.t0), self.t1) - self.t0) / (self.t1 - self.t0)
                     * self.w, 1)

    def y(self, value: float) -> float:
        return round(TOP + self.h - min(value, self.ymax) / self.ymax * self.h, 1)

    def frame(self, start: str, end: str) -> dict[str, Any]:
        mid = datetime.fromtimestamp((self.t0 + self.t1) / 2).astimezone()

        def label(stamp: str) -> str:
            return datetime.fromisoformat(stamp).astimezone().strftime("%m-%d")

        return {
            "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT,
            "top": TOP, "bottom": HEIGHT - BOTTOM,
            "yticks": [{"y": self.y(v), "label": f"{v:g}"} for v in (0, self.ymax / 2, self.ymax)],
            "xticks": [{"x": LEFT, "label": label(start), "anchor": "start"},
                       {"x": round(LEFT + self.w / 2, 1), "label": mid.strftime("%m-%d"),
                        "anchor": "middle"},
                       {"x": WIDTH - RIGHT, "label": label(end), "anchor": "end"}],
        }


def backup_age(chart: dict[str, Any], *, start: str, end: str) -> dict[str, Any]:
    """Hours since the newest successful backup over the period, and its allowed limit."""
    points = chart["backup_age"]
    limit = chart["limit_hours"]
    peak = max([p[1] for p in points] + [limit or 0, 1.0])
    axes = _Axes(start, end, _nice(peak * 1.05))
    over = limit is not None and any(p[1] > limit for p in points)
    return {**axes.frame(start, end), "empty": not points, "over": over,
            "line": " ".join(f"{axes.x(t)},{axes.y(v)}" for t, v in points),
            "limit_y": axes.y(limit) if limit is not None else None}


def restore_time(chart: dict[str, Any], *, start: str, end: str) -> dict[str, Any]:
    """Each timed restore (minutes) as a dot, green when it passed, and the RTO line."""
    rto = chart["rto_seconds"]
    minutes = [(t, s / 60, ok) for t, s, ok in chart["restores"]]
    peak = max([m for _, m, _ in minutes] + [(rto or 0) / 60, 1.0])
    axes = _Axes(start, end, _nice(peak * 1.1))
    return {**axes.frame(start, end), "empty": not minutes,
            "dots": [{"x": axes.x(t), "y": axes.y(m), "ok": ok} for t, m, ok in minutes],
            "rto_y": axes.y(rto / 60) if rto else None}
