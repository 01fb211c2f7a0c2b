"""The generation assertion: restic's keep policy and lost-snapshot detection."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from backupctl.actions.generations import assess, keep
from backupctl.restic.parse import parse_time

START = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)  # a Thursday


def daily(n: int) -> list[datetime]:
    return [START + timedelta(days=i) for i in range(n)]


def test_last_keeps_the_newest_n() -> None:
    times = daily(10)
    assert keep(times, {"last": 3}) == sorted(times, reverse=True)[:3]


def test_daily_keeps_one_per_day_the_newest_of_each_day() -> None:
    times = [*daily(5), *(t + timedelta(hours=3) for t in daily(5))]
    kept = keep(times, {"daily": 14})
    assert len(kept) == 5
    assert all(t.hour == 5 for t in kept)


def test_fourteen_days_of_backups_give_fourteen_daily_generations() -> None:
    assert len(keep(daily(30), {"daily": 14})) == 14
    assert len(keep(daily(10), {"daily": 14})) == 10


def test_weekly_keeps_the_newest_of_each_iso_week() -> None:
    times = daily(21)  # Thu 1 Jan .. Wed 21 Jan 2026: ISO weeks 1, 2, 3, 4
    kept = keep(times, {"weekly": 3})
    assert [t.day for t in kept] == [21, 18, 11]  # Wed (week 4), Sun (3), Sun (2)
    assert len(keep(times, {"weekly": 10})) == 4


def test_unknown_policy_key_is_refused() -> None:
    with pytest.raises(ValueError, match="hourlyish"):
        keep(daily(2), {"hourlyish": 1})


def test_nothing_lost_when_the_repository_holds_what_the_policy_keeps() -> None:
    history = daily(10)
    held = keep(history, {"last": 3})
    result = assess(repository="primary", policy={"last": 3}, observed=held, known=history,
                    pruned=True)
    assert (result.count, result.expected, result.missing, result.finding) == (3, 3, [], None)


def test_a_deleted_snapshot_the_policy_keeps_is_lost() -> None:
    history = daily(5)
    held = [t for t in keep(history, {"last": 3}) if t != history[3]]
    result = assess(repository="usb", policy={"last": 3}, observed=held, known=history,
                    pruned=True, medium="backupctl-1a2b")
    assert result.lost and result.count == 2 and result.expected == 3
    assert result.finding is not None
    assert "usb (medium backupctl-1a2b) LOST 1 snapshot" in result.finding
    assert result.missing == [history[3].isoformat(timespec="microseconds")]


def test_a_raised_policy_raises_no_false_alarm_for_snapshots_pruned_long_ago() -> None:
    seen = keep(daily(10), {"last": 3})  # what was held at the last observation
    result = assess(repository="primary", policy={"last": 7}, observed=seen, known=seen,
                    pruned=True)
    assert not result.lost


def test_an_unpruned_repository_must_hold_everything_it_ever_held() -> None:
    history = daily(6)
    result = assess(repository="worm", policy={"last": 2}, observed=history[1:],
                    known=history, pruned=False)
    assert result.lost and result.expected == 6


def test_row_keeps_what_was_observed() -> None:
    result = assess(repository="primary", policy={"last": 2}, observed=daily(2),
                    known=[], pruned=True)
    row = result.row("j", "2026-01-03T00:00:00+00:00")
    assert row["count"] == 2 and row["expected"] == 2 and row["finding"] is None
    assert row["snapshots"].count("2026-01-0") == 2


def test_a_loss_stays_reported_until_the_policy_would_have_dropped_it() -> None:
    history = daily(4)
    first = assess(repository="p", policy={"last": 3}, observed=[history[0], history[1],
                                                                 history[3]],
                   known=history, pruned=True)
    assert first.lost
    remembered = [parse_time(t) for t in json.loads(first.row("j", "now")["snapshots"])]
    nxt = daily(5)[4]
    again = assess(repository="p", policy={"last": 3}, observed=[history[1], history[3], nxt],
                   known=[*remembered, nxt], pruned=True)
    assert again.lost and again.missing == first.missing
    later = [nxt + timedelta(days=1), nxt + timedelta(days=2)]
    gone = assess(repository="p", policy={"last": 3}, observed=[nxt, *later],
                  known=[*remembered, nxt, *later], pruned=True)
    assert not gone.lost
