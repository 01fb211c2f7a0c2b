"""systemd-analyze is asked once per schedule, again only when its elapses have passed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from backupctl.config import calendar
from backupctl.web.schedules import Schedules

T0 = datetime(2026, 12, 7, 12, tzinfo=UTC)


def test_next_elapses_are_kept_until_they_pass_and_gaps_for_good() -> None:
    asked: list[datetime] = []

    def analyze(expr: str, **kw: Any) -> calendar.Analyzed:
        asked.append(kw["base"])
        assert kw["tz"] is None  # the machine's zone, as the timers fire
        return calendar.Analyzed(ok=True, elapses=tuple(
            kw["base"] + timedelta(hours=h) for h in (1, 2)))

    gaps: list[str] = []

    def interval(expr: str) -> int:
        gaps.append(expr)
        return 3600

    schedules = Schedules(analyze=analyze, interval=interval)
    assert schedules.next("hourly", T0) == T0 + timedelta(hours=1)
    assert schedules.next("hourly", T0 + timedelta(minutes=30)) == T0 + timedelta(hours=1)
    assert schedules.next("hourly", T0 + timedelta(minutes=90)) == T0 + timedelta(hours=2)
    assert len(asked) == 1
    assert schedules.next("hourly", T0 + timedelta(hours=3)) == T0 + timedelta(hours=4)
    assert len(asked) == 2
    assert schedules.interval("hourly") == schedules.interval("hourly") == 3600
    assert gaps == ["hourly"]


def test_without_systemd_analyze_the_next_run_is_unknown() -> None:
    schedules = Schedules(analyze=lambda expr, **kw: None, interval=lambda e: None)
    assert schedules.next("daily", T0) is None and schedules.interval("daily") is None
