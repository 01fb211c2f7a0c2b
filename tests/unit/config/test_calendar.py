"""OnCalendar checks: systemd-analyze is the authority; odd input is a reason, never a crash."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from backupctl.config import calendar
from backupctl.execute.local import LocalRunner


@pytest.mark.parametrize("expr", ["*-*-* 02:00:00", "Sun *-*-* 04:00:00", "daily",
                                  "Mon..Fri 22:30"])
def test_valid_expressions_pass(expr: str) -> None:
    assert calendar.check(expr) is None


@pytest.mark.parametrize("expr", ["bogus", "25:00", "*-*-* 02:00:00\x00", "daily\nhourly"])
def test_invalid_expressions_give_a_reason(expr: str) -> None:
    reason = calendar.check(expr)
    assert reason


def test_next_elapse_is_in_the_future_and_aware() -> None:
    from datetime import UTC, datetime

    nxt = calendar.next_elapse("*-*-* 02:00:00")
    assert nxt is not None and nxt.tzinfo is not None and nxt > datetime.now(UTC)
    assert (nxt.hour, nxt.minute) == (2, 0)


def test_next_elapse_in_a_zone_is_returned_in_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    """The timers read OnCalendar in the machine's zone: 02:00 in Tokyo is 17:00 UTC."""
    nxt = calendar.next_elapse("*-*-* 02:00:00", tz="Asia/Tokyo")
    assert nxt is not None and (nxt.hour, nxt.minute) == (17, 0)
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    machine = calendar.next_elapse("*-*-* 02:00:00", tz=None)
    assert machine is not None and (machine.hour, machine.minute) == (17, 0)


UTC_OUTPUT = """\
  Original form: *-*-* 02:00:00
Normalized form: *-*-* 02:00:00
    Next elapse: Thu 2026-11-26 02:00:00 UTC
       From now: 3h left
       Iter. #2: Fri 2026-11-27 02:00:00 UTC
       From now: 1 day 3h left
"""
JST_OUTPUT = """\
Normalized form: *-*-* 02:00:00
    Next elapse: Thu 2026-11-26 02:00:00 JST
       (in UTC): Wed 2026-11-25 17:00:00 UTC
       From now: 3h left
       Iter. #2: Fri 2026-11-27 02:00:00 JST
       (in UTC): Thu 2026-11-26 17:00:00 UTC
"""


def test_parse_elapses_in_utc_and_in_a_local_zone() -> None:
    assert calendar.parse_elapses(UTC_OUTPUT) == [datetime(2026, 11, 26, 2, tzinfo=UTC),
                                                  datetime(2026, 11, 27, 2, tzinfo=UTC)]
    assert calendar.parse_elapses(JST_OUTPUT) == [datetime(2026, 11, 25, 17, tzinfo=UTC),
                                                  datetime(2026, 11, 26, 17, tzinfo=UTC)]
    assert calendar.parse_elapses("Normalized form: 2020-01-01 00:00:00\n"
                                  "    Next elapse: never\n") == []
    with pytest.raises(calendar.CalendarError, match="no UTC time"):
        calendar.parse_elapses("    Next elapse: Thu 2026-11-26 02:00:00 JST\n")


def test_many_expressions_are_checked_by_one_systemd_analyze(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A site's job files name many schedules: one start checks them all, and an expression
    found valid is not asked again in this process."""
    starts: list[list[str]] = []
    real_run = LocalRunner.run

    def counting(self: LocalRunner, argv: Any, **kwargs: Any) -> Any:
        starts.append([str(a) for a in argv])
        return real_run(self, argv, **kwargs)

    monkeypatch.setattr(LocalRunner, "run", counting)
    monkeypatch.setattr(calendar, "_valid", set())
    exprs = [f"*-*-* {h:02d}:{m:02d}:00" for h in range(0, 24, 2) for m in (0, 30)]
    assert calendar.check_all([*exprs, exprs[0]]) == dict.fromkeys(exprs)
    assert len(starts) == 1 and starts[0][-len(exprs):] == exprs
    assert calendar.check(exprs[3]) is None and len(starts) == 1


def test_a_bad_expression_among_many_is_named_with_its_reason(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calendar, "_valid", set())
    found = calendar.check_all(["daily", "bogus", "Sun *-*-* 04:00:00", "daily\nhourly"])
    assert found["daily"] is None and found["Sun *-*-* 04:00:00"] is None
    assert found["bogus"] and "bogus" in str(found["bogus"])
    assert found["daily\nhourly"] == "contains a control character"
