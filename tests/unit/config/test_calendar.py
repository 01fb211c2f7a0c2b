"""OnCalendar checks: systemd-analyze is the authority; odd input is a reason, never a crash."""

from __future__ import annotations

import pytest

from backupctl.config import calendar


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
