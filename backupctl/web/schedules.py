"""When each schedule fires next and its longest gap, asked of systemd-analyze once.

Each answer costs a process (`config.calendar`, the one wrapper), and the page is rendered
every minute for every job: upcoming elapses are kept until they pass, gaps for good. Next
elapses are read in this machine's zone, as the timers fire; shown in `timezone`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from backupctl.config import calendar

Analyze = Callable[..., calendar.Analyzed | None]
AHEAD = 4  # elapses asked for at a time


class Schedules:
    """Next elapses and longest gaps of OnCalendar expressions, cached per expression."""

    def __init__(self, analyze: Analyze = calendar.analyze,
                 interval: Callable[[str], int | None] = calendar.interval) -> None:
        self._analyze = analyze
        self._interval = interval
        self._upcoming: dict[str, list[datetime]] = {}
        self._gaps: dict[str, int | None] = {}
        self._lock = threading.Lock()

    def next(self, expr: str, now: datetime) -> datetime | None:
        """The first elapse after `now`; None when systemd-analyze cannot say."""
        with self._lock:
            ahead = [t for t in self._upcoming.get(expr, []) if t > now]
            if not ahead:
                found = self._analyze(expr, iterations=AHEAD, base=now, tz=None)
                ahead = [t for t in found.elapses if t > now] if found and found.ok else []
            self._upcoming[expr] = ahead
            return ahead[0] if ahead else None

    def interval(self, expr: str) -> int | None:
        """The longest gap between elapses (the stale rule's interval), None if unknown."""
        with self._lock:
            if expr not in self._gaps:
                self._gaps[expr] = self._interval(expr)
            return self._gaps[expr]
