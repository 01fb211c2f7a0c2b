"""The hard deadline shared by channel delivery and pings (channels.within)."""

from __future__ import annotations

import threading
import time

import pytest

from backupctl.notify.channels import DEFAULT_BUDGET, Budget, hard_deadline, within


def test_within_returns_what_finished_and_leaves_a_stuck_task_behind() -> None:
    release = threading.Event()
    started = time.monotonic()

    outcomes = within({"quick": lambda: 1, "stuck": lambda: int(release.wait(60))},
                      seconds=0.5)

    took = time.monotonic() - started
    release.set()
    assert outcomes == {"quick": 1}
    assert 0.4 < took < 10, took


def test_within_runs_tasks_side_by_side() -> None:
    # Each task waits until all four are running: one after the other, none would finish.
    meet = threading.Barrier(4, timeout=30)
    outcomes = within({str(i): meet.wait for i in range(4)}, seconds=60)
    assert sorted(outcomes.values()) == [0, 1, 2, 3]


def test_a_task_that_raises_has_no_outcome_and_logs_only_its_class(
        caplog: pytest.LogCaptureFixture) -> None:
    def boom() -> int:
        raise RuntimeError("https://hc.example/ping/secret-token")

    assert within({"boom": boom}, seconds=10) == {}
    assert "RuntimeError" in caplog.text and "secret-token" not in caplog.text


def test_the_hard_deadline_is_the_budget_plus_a_margin() -> None:
    assert hard_deadline(Budget(seconds=6.0)) > 6.0
    assert hard_deadline(DEFAULT_BUDGET) < 60
