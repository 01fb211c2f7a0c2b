"""`--due`: the rule (pure), reading systemd-analyze's answer, and the search for the latest
elapse against a FakeRunner that plays systemd-analyze for a daily 02:00 UTC schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backupctl.actions import due
from backupctl.execute import Result
from backupctl.execute.fake import Call, FakeRunner

T = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def test_due_when_the_schedule_fired_after_the_last_run_started() -> None:
    decision = due.decide(job="emr-db", kind="backup", scheduled=T,
                          last_started=T - timedelta(days=1))
    assert decision.due and "scheduled 2026-11-25T02:00:00" in decision.reason


def test_due_when_never_run() -> None:
    assert due.decide(job="emr-db", kind="verify", scheduled=T, last_started=None).due


@pytest.mark.parametrize("started", [T, T + timedelta(seconds=1), T + timedelta(hours=5)])
def test_not_due_when_a_run_started_at_or_after_the_schedule(started: datetime) -> None:
    decision = due.decide(job="emr-db", kind="backup", scheduled=T, last_started=started)
    assert not decision.due and "not due" in decision.reason


def test_not_due_before_the_schedule_ever_fired() -> None:
    assert not due.decide(job="emr-db", kind="copy", scheduled=None, last_started=None).due


def _daily_analyzer(call: Call) -> Result:
    """systemd-analyze calendar for `*-*-* 02:00:00` in UTC, from --base-time=@N."""
    base = next(datetime.fromtimestamp(int(w.split("@")[1]), UTC) for w in call.words
                if w.startswith("--base-time="))
    count = next(int(w.split("=")[1]) for w in call.words if w.startswith("--iterations="))
    first = base.replace(hour=2, minute=0, second=0, microsecond=0)
    if first <= base:
        first += timedelta(days=1)
    lines = []
    for i in range(count):
        stamp = (first + timedelta(days=i)).strftime("%a %Y-%m-%d %H:%M:%S UTC")
        lines.append(f"    Next elapse: {stamp}" if i == 0 else f"       Iter. #{i + 1}: {stamp}")
    return Result(call.text, 0, ("\n".join(lines) + "\n").encode())


def test_the_window_widens_until_the_schedule_fired() -> None:
    runner = FakeRunner()
    runner.on("systemd-analyze", "calendar", respond=_daily_analyzer)
    now = datetime(2026, 11, 25, 1, 59, 30, tzinfo=UTC)

    assert due.latest_elapse("*-*-* 02:00:00", now=now, runner=runner) == \
        datetime(2026, 11, 24, 2, tzinfo=UTC)
    assert len(runner.calls) == 2  # one hour back: nothing; a day back: yesterday 02:00
    assert all(c.words[-2:] == ["--", "*-*-* 02:00:00"] for c in runner.calls)


def test_a_schedule_firing_exactly_now_counts() -> None:
    runner = FakeRunner()
    runner.on("systemd-analyze", respond=_daily_analyzer)
    assert due.latest_elapse("*-*-* 02:00:00", now=T, runner=runner) == T


def test_the_time_zone_of_the_timers_is_passed_on() -> None:
    runner = FakeRunner()
    runner.on("systemd-analyze", respond=_daily_analyzer)
    due.latest_elapse("*-*-* 02:00:00", now=T, runner=runner, tz="Asia/Tokyo")
    assert runner.calls[0].env == {"TZ": "Asia/Tokyo"}


def test_missing_systemd_analyze_is_a_clear_error() -> None:
    runner = FakeRunner()
    runner.on("systemd-analyze", returncode=127, stderr="cannot start systemd-analyze: "
              "[Errno 2] No such file or directory")
    with pytest.raises(due.DueError, match="--due needs systemd-analyze"):
        due.latest_elapse("daily", now=T, runner=runner)


def test_a_schedule_systemd_refuses_is_an_error_naming_it() -> None:
    runner = FakeRunner()
    runner.on("systemd-analyze", returncode=1,
              stderr="Failed to parse calendar specification 'bogus': Invalid argument")
    with pytest.raises(due.DueError, match="cannot read the schedule 'bogus'"):
        due.latest_elapse("bogus", now=T, runner=runner)
