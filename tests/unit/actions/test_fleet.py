"""Several orchestrators in the commands: --due checked before and under the lease, jobs
running elsewhere listed in --all, full restores that do not fit skipped, job-file hashes."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from backupctl.actions import capacity, due, fleet
from backupctl.actions.context import Context
from backupctl.actions.jobrun import job_run
from backupctl.actions.results import JobResult, RunResult
from backupctl.actions.status import status
from backupctl.config.schema import Job
from backupctl.state import queries
from backupctl.state.locks import LeaseHeld
from backupctl.state.records import VerifyDetails
from backupctl.status import ExitStatus
from tests import runs as seed

Unit = tuple[Context, Job]


@pytest.fixture
def fired(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[datetime]]:
    """The schedule's latest elapse (systemd-analyze is tested in tests/integration)."""
    when: list[datetime] = []

    def latest(_expr: str, *, now: datetime, **_kw: object) -> datetime:
        return when[0] if when else now - timedelta(hours=1)

    monkeypatch.setattr(due, "latest_elapse", latest)
    yield when


def _verified(ctx: Context, job: Job) -> JobResult:
    with job_run(ctx, job, "verify", VerifyDetails) as run:
        run.finish(RunResult(job.name, "verify", ExitStatus.OK, VerifyDetails()))
    return run.result


class _Held:
    """Job locks held by a run on `orchestrator`."""

    global_scope = True

    def __init__(self, orchestrator: str | None) -> None:
        self.orchestrator = orchestrator

    def hold(self, job: str, *, kind: str) -> contextlib.AbstractContextManager[object]:
        raise LeaseHeld(f"{job}: running on {self.orchestrator} since T ({kind}, pid 1); "
                        "nothing was run", job=job, orchestrator=self.orchestrator, since="T")


def test_a_job_run_since_its_schedule_fired_is_not_due_and_nothing_runs(
        unit_ctx: Unit, fired: list[datetime]) -> None:
    ctx, job = unit_ctx
    ctx.due = True
    seed.record(ctx.store, job=job.name, kind="verify")  # ran after the schedule fired
    ctx.locks = _Held("backup02")  # the lease is never asked for

    result = fleet.run_job(ctx, job, _verified, kind="verify", all_jobs=False)

    assert isinstance(result, fleet.Skipped) and result.why == fleet.NOT_DUE
    assert result.status is ExitStatus.OK and result.mark == "NOT DUE"
    assert result.to_dict()["skipped"] == "not_due"
    assert len(ctx.store.query(queries.recent_runs, job.name, "verify", limit=9)) == 1


def test_a_job_run_elsewhere_while_waiting_for_the_lease_is_not_run(
        unit_ctx: Unit, fired: list[datetime]) -> None:
    """Due at the first check; under the lease another orchestrator's run is newer."""
    ctx, job = unit_ctx
    ctx.due = True

    def meanwhile(ctx: Context, job: Job) -> JobResult:
        seed.record(ctx.store, job=job.name, kind="verify")  # finished elsewhere meanwhile
        return _verified(ctx, job)

    result = fleet.run_job(ctx, job, meanwhile, kind="verify", all_jobs=False)

    assert isinstance(result, fleet.Skipped) and result.why == fleet.NOT_DUE
    assert len(ctx.store.query(queries.recent_runs, job.name, "verify", limit=9)) == 1


def test_a_due_job_runs_and_records_its_job_files_hash(unit_ctx: Unit,
                                                       fired: list[datetime]) -> None:
    ctx, job = unit_ctx
    ctx.due = True
    seed.record(ctx.store, job=job.name, kind="verify")
    fired.append(datetime.now().astimezone() + timedelta(seconds=1))  # fired after that run

    result = fleet.run_job(ctx, job, _verified, kind="verify", all_jobs=True)

    assert isinstance(result, RunResult) and result.status is ExitStatus.OK
    row = ctx.store.query(queries.last_run, job.name, "verify")
    assert row is not None and row.job_file_sha256 == hashlib.sha256(
        ctx.config.jobs[job.name].path.read_bytes()).hexdigest()


def test_in_all_a_job_running_on_another_orchestrator_is_listed_not_an_error(
        unit_ctx: Unit) -> None:
    ctx, job = unit_ctx
    for holder in ("backup02", None):  # None: it is writing its lease row right now
        ctx.locks = _Held(holder)
        result = fleet.run_job(ctx, job, _verified, kind="verify", all_jobs=True)
        assert isinstance(result, fleet.Skipped) and result.why == fleet.RUNNING_ELSEWHERE
        assert result.mark == "RUNNING" and "running on" in result.reason
    with pytest.raises(LeaseHeld) as named:  # a job named on the command line: exit 75
        fleet.run_job(ctx, job, _verified, kind="verify", all_jobs=False)
    assert named.value.status is ExitStatus.LOCKED
    ctx.locks = _Held(ctx.store.orchestrator)  # another process of this orchestrator
    with pytest.raises(LeaseHeld):
        fleet.run_job(ctx, job, _verified, kind="verify", all_jobs=True)


def test_a_full_restore_that_does_not_fit_is_skipped_and_stays_due(
        unit_ctx: Unit, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, job = unit_ctx
    monkeypatch.setattr(capacity, "free_bytes", lambda _path: 1 << 20)

    def full(ctx: Context, job: Job) -> JobResult:
        capacity.require_room(ctx.store, job.name, scratch_dir=Path("/scratch"))
        raise AssertionError("not reached")

    monkeypatch.setattr(capacity, "restore_size", lambda _store, _job: 1 << 30)
    result = fleet.run_job(ctx, job, full, kind="verify", all_jobs=False)

    assert isinstance(result, fleet.Skipped) and result.why == fleet.NO_ROOM
    assert "stays due" in result.reason
    assert ctx.store.query(queries.last_run, job.name, "verify") is None


def test_status_names_orchestrators_whose_job_file_differs(unit_ctx: Unit) -> None:
    ctx, job = unit_ctx
    mine = hashlib.sha256(ctx.config.jobs[job.name].path.read_bytes()).hexdigest()
    with ctx.store.transaction() as conn:
        for orchestrator, digest in (("backup02", "0" * 64), ("backup03", mine)):
            queries.start_run(conn, job=job.name, kind="backup", repository="primary",
                              operator="scheduler", orchestrator=orchestrator, pid=1,
                              started_at=ctx.store.now(), job_file_sha256=digest)

    [row] = fleet.annotate(ctx, status(ctx))

    assert row.job_file_sha256 == mine and row.job_file_differs == {"backup02": "0" * 64}
    assert any(f.startswith("job file differs on backup02 (its last run used sha256 "
                            "000000000000…") for f in row.findings)
    assert row.running is None  # SQLite: no leases
    assert row.last_backup_orchestrator == "backup03"
