"""`--due` with the real systemd-analyze and the runs of several orchestrators in a real
state database (SQLite and PostgreSQL), at fixed times (issue #15)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest

from backupctl.actions import due
from backupctl.config.schema import Job
from backupctl.execute.local import LocalRunner
from backupctl.state.db import Store
from tests import runs
from tests.conftest import need

NOW = datetime(2026, 11, 25, 3, 30, tzinfo=UTC)  # a Wednesday


@pytest.fixture(autouse=True)
def _systemd_analyze() -> None:
    need("systemd-analyze")


@pytest.mark.parametrize(("expr", "tz", "latest"), [
    ("*-*-* 02:00:00", "UTC", datetime(2026, 11, 25, 2, tzinfo=UTC)),
    ("*-*-* 04:00:00", "UTC", datetime(2026, 11, 24, 4, tzinfo=UTC)),
    ("Sun *-*-* 04:00:00", "UTC", datetime(2026, 11, 22, 4, tzinfo=UTC)),
    # The timers' zone decides: 02:00 in Tokyo is 17:00 UTC the day before.
    ("*-*-* 02:00:00", "Asia/Tokyo", datetime(2026, 11, 24, 17, tzinfo=UTC)),
    ("*:0/5", "UTC", datetime(2026, 11, 25, 3, 30, tzinfo=UTC)),  # exactly now counts
    ("*-*-01 05:00:00", "UTC", datetime(2026, 11, 1, 5, tzinfo=UTC)),
    ("2020-01-01", "UTC", datetime(2020, 1, 1, tzinfo=UTC)),  # long ago: widened to it
    ("2030-01-01", "UTC", None),  # not yet
])
def test_latest_elapse(expr: str, tz: str, latest: datetime | None) -> None:
    assert due.latest_elapse(expr, now=NOW, runner=LocalRunner(), tz=tz) == latest


def test_a_minutely_schedule_is_found_past_many_elapses() -> None:
    """More elapses in the first window than one call returns: the search moves on."""
    now = NOW + timedelta(seconds=20)
    assert due.latest_elapse("*:*:00", now=now, runner=LocalRunner(), tz="UTC") == NOW
    assert due.latest_elapse("*:*:0/10", now=now, runner=LocalRunner(), tz="UTC") == \
        NOW + timedelta(seconds=20)


@pytest.fixture
def url(state_url: str) -> str:
    return state_url


def _job(tmp_path: Path, **schedule: Any) -> Job:
    return Job.model_validate({
        "job": "emr-db", "host": {"address": "local"}, "source": {"paths": ["/srv/emr"]},
        "repository": {"url": "/srv/restic/emr-db", "password_file": str(tmp_path / "pw")},
        "generations": {"last": 7},
        "copies": [{"name": "usb", "kind": "offline", "url": "/mnt/usb/emr-db",
                    "password_file": str(tmp_path / "pw"), "max_age": "7d"}],
        "schedule": {"backup": "*-*-* 02:00:00", "verify": "Sun *-*-* 04:00:00", **schedule}})


def _run(url: str, orchestrator: str, at: datetime, *, kind: str = "backup",
         status: str | None = "success") -> None:
    store = Store(url, orchestrator=orchestrator, clock=lambda: at)
    run_id = runs.start(store, job="emr-db", kind=kind)
    if status is not None:
        runs.finish(store, run_id, status=status, evidence=False)


def _check(url: str, job: Job, kind: str = "backup", *, under_lease: bool = True) -> due.Due:
    return due.check(Store(url), job, kind, now=NOW, runner=LocalRunner(), tz="UTC",
                     under_lease=under_lease)


def test_due_follows_the_runs_of_every_orchestrator(url: str, tmp_path: Path) -> None:
    job = _job(tmp_path)
    assert _check(url, job).due  # never run

    _run(url, "backup01", datetime(2026, 11, 24, 2, 0, 5, tzinfo=UTC))  # yesterday's run
    decision = _check(url, job)
    assert decision.due and decision.scheduled == datetime(2026, 11, 25, 2, tzinfo=UTC)

    _run(url, "backup02", datetime(2026, 11, 25, 2, 0, 40, tzinfo=UTC))  # today's, elsewhere
    assert not _check(url, job).due
    assert _check(url, job, "verify").due  # another kind keeps its own schedule


def test_a_running_run_counts_and_an_interrupted_one_does_not(url: str, tmp_path: Path) -> None:
    job = _job(tmp_path)
    today = datetime(2026, 11, 25, 2, 0, 3, tzinfo=UTC)
    _run(url, "backup01", today, status=None)  # still running on backup01
    assert not _check(url, job).due
    # Before the lease a running row may be a dead orchestrator's: only the lease tells.
    assert _check(url, job, under_lease=False).due

    runs.finish(Store(url), 1, status="interrupted", evidence=False)
    assert _check(url, job).due  # its orchestrator died: the work is still to be done


def test_copy_is_never_due_without_a_copy_schedule(url: str, tmp_path: Path) -> None:
    decision = _check(url, _job(tmp_path), "copy")
    assert not decision.due and "no copy schedule" in decision.reason
    assert _check(url, _job(tmp_path, copy="*-*-* 03:00:00"), "copy").due


def _verify(url: str, at: datetime, mode: Literal["quick", "full"]) -> None:
    from backupctl.state.records import VerifyDetails

    store = Store(url, orchestrator="o1", clock=lambda: at)
    run_id = runs.start(store, job="emr-db", kind="verify")
    runs.finish(store, run_id, status="success", details=VerifyDetails(mode=mode),
                evidence=False)


def test_a_full_verify_is_due_by_its_own_calendar_and_only_a_full_one_counts(
        url: str, tmp_path: Path) -> None:
    """`verify --mode full --due` (issue 29): schedule.verify_full against the newest full
    restore test; quick ones (even newer) do not stand in for it."""
    job = _job(tmp_path, verify_full="*-*-01 05:00:00")  # fired 2026-11-01 05:00
    assert _check(url, job, due.FULL_VERIFY).due  # never run

    _verify(url, datetime(2026, 11, 24, 4, tzinfo=UTC), "quick")
    assert _check(url, job, due.FULL_VERIFY).due, "a quick verify stood in for a full one"
    assert _check(url, job, due.FULL_VERIFY, under_lease=False).due

    _verify(url, datetime(2026, 11, 1, 5, 3, tzinfo=UTC), "full")
    decision = _check(url, job, due.FULL_VERIFY)
    assert not decision.due and "2026-11-01T05:03" in decision.reason


def test_a_full_verify_does_the_quick_verifys_work(url: str, tmp_path: Path) -> None:
    job = _job(tmp_path, verify_full="*-*-* 05:00:00")  # quick: Sun 04:00 (2026-11-22)
    assert _check(url, job, "verify").due
    _verify(url, datetime(2026, 11, 22, 5, 1, tzinfo=UTC), "full")
    assert not _check(url, job, "verify").due  # the full one restored and hashed it all
    assert _check(url, job, due.FULL_VERIFY).due  # its own calendar fired again 11-24 05:00


def test_without_verify_full_a_full_verify_keeps_the_verify_schedule(
        url: str, tmp_path: Path) -> None:
    """A site's own timer running `verify --mode full --due` on the verify schedule (before
    schedule.verify_full existed) keeps working: any restore test since it fired counts."""
    job = _job(tmp_path)  # verify: Sun 04:00 → fired 2026-11-22 04:00
    assert _check(url, job, due.FULL_VERIFY).due
    _verify(url, datetime(2026, 11, 22, 4, 5, tzinfo=UTC), "quick")
    decision = _check(url, job, due.FULL_VERIFY)
    assert not decision.due and "verify not due" in decision.reason
