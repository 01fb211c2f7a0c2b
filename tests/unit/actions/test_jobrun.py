"""One way to run a job: every run is closed once, with its evidence, whatever happens."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from backupctl.actions.context import Context
from backupctl.actions.jobrun import job_run, recover, recover_if_idle
from backupctl.actions.results import RunResult
from backupctl.config.schema import Job
from backupctl.errors import CommandFailed, DataError, LockHeld, UsageError
from backupctl.evidence import chain
from backupctl.execute import Cancelled
from backupctl.execute.fake import FakeRunner
from backupctl.state import queries
from backupctl.state.records import VerifyDetails
from backupctl.state.schema import runs
from backupctl.status import ExitStatus
from tests import runs as seed
from tests.unit.actions.conftest import make_context

Unit = tuple[Context, Job]


def _rows(ctx: Context) -> list[tuple[str, str, str | None]]:
    with ctx.store.read() as conn:
        return [(r.kind, r.status, r.error)
                for r in conn.execute(select(runs).order_by(runs.c.id))]


def _records(ctx: Context) -> list[chain.Entry]:
    with ctx.store.read() as conn:
        return list(chain.entries(conn))


def _verified(job: Job, status: ExitStatus = ExitStatus.OK) -> RunResult[VerifyDetails]:
    return RunResult(job.name, "verify", status, VerifyDetails(files_checked=3, restore_ms=1500),
                     snapshot_id="abcd1234")


def test_a_finished_run_has_its_row_and_one_evidence_record(unit_ctx: Unit) -> None:
    ctx, job = unit_ctx
    with job_run(ctx, job, "verify", VerifyDetails) as run:
        run.finish(_verified(job))
    assert run.result.run_id is not None and run.result.status is ExitStatus.OK
    assert _rows(ctx) == [("verify", "success", None)]
    (record,) = _records(ctx)
    assert (record.record["kind"], record.record["result"], record.record["host"]) == (
        "verify", "pass", "local")
    assert record.record["details"]["files_checked"] == 3
    assert record.record["details"]["restore_ms"] == 1500
    with ctx.store.read() as conn:
        assert conn.execute(select(runs.c.restore_ms)).scalar() == 1500


def test_an_error_escaping_the_action_is_the_runs_failure_not_an_exception(
        unit_ctx: Unit) -> None:
    ctx, job = unit_ctx
    with job_run(ctx, job, "verify", VerifyDetails) as run:
        raise CommandFailed("emr: restic could not run")
    assert run.result.status is ExitStatus.FAILED
    assert _rows(ctx) == [("verify", "failed", "emr: restic could not run")]
    (record,) = _records(ctx)
    assert record.record["host"] == "local", "the job's host, not 'unknown'"
    assert record.record["details"]["error"] == "emr: restic could not run"


def test_bad_data_found_before_a_result_is_recorded_as_bad_data(unit_ctx: Unit) -> None:
    ctx, job = unit_ctx
    with job_run(ctx, job, "verify", VerifyDetails) as run:
        raise DataError("emr: BAD DATA: snapshot 1234 of the last backup is missing")
    assert run.result.status is ExitStatus.BAD_DATA
    assert run.result.to_dict()["kind"] == "verify"
    assert _rows(ctx)[0][1] == "bad_data"
    assert _records(ctx)[0].record["result"] == "fail"


def test_a_signal_records_the_run_interrupted_and_goes_on(unit_ctx: Unit) -> None:
    ctx, job = unit_ctx
    with pytest.raises(Cancelled), job_run(ctx, job, "backup", VerifyDetails):
        raise Cancelled("stopped by signal SIGTERM")
    assert _rows(ctx)[0][:2] == ("backup", "interrupted")
    assert _records(ctx)[0].record["details"]["status"] == "interrupted"


def test_a_bug_records_the_run_failed_and_goes_on(unit_ctx: Unit) -> None:
    ctx, job = unit_ctx
    with pytest.raises(ZeroDivisionError), job_run(ctx, job, "backup", VerifyDetails):
        _ = 1 / 0
    assert _rows(ctx)[0][:2] == ("backup", "failed")
    assert "ZeroDivisionError" in (_rows(ctx)[0][2] or "")


def test_an_action_that_forgets_its_result_is_a_bug_and_still_closes_the_run(
        unit_ctx: Unit) -> None:
    ctx, job = unit_ctx
    with pytest.raises(RuntimeError, match="ended without a result"), \
            job_run(ctx, job, "verify", VerifyDetails):
        pass
    assert _rows(ctx)[0][1] == "failed"


def test_a_second_run_of_the_job_is_refused_while_one_holds_the_lock(unit_ctx: Unit) -> None:
    ctx, job = unit_ctx
    with job_run(ctx, job, "verify", VerifyDetails) as run:
        with pytest.raises(LockHeld), job_run(ctx, job, "backup", VerifyDetails):
            pass
        run.finish(_verified(job))
    assert [r[0] for r in _rows(ctx)] == ["verify"], "the refused run left no row"


def test_a_run_closed_elsewhere_meanwhile_is_not_recorded_twice(unit_ctx: Unit) -> None:
    ctx, job = unit_ctx
    with job_run(ctx, job, "verify", VerifyDetails) as run:
        with ctx.store.transaction() as conn:  # another orchestrator took it over
            conn.execute(runs.update().values(status="interrupted"))
        run.finish(_verified(job))
    assert run.result.status is ExitStatus.FAILED
    assert "recorded interrupted by another orchestrator" in (run.result.error or "")
    assert _rows(ctx)[0][1] == "interrupted" and _records(ctx) == []


def test_recover_marks_killed_runs_interrupted_with_evidence_and_wipes_scratch(
        unit_ctx: Unit) -> None:
    ctx, job = unit_ctx
    seed.start(ctx.store, job="emr", kind="verify")
    seed.start(ctx.store, job="other", kind="backup")
    base = ctx.config.settings.scratch_dir
    leftover = base / "emr.full-1234"
    (leftover / "ro").mkdir(parents=True)
    (leftover / "ro" / "patient.txt").write_text("患者")
    (leftover / "ro").chmod(0o500)
    (base / "other.quick-1").mkdir()

    assert recover(ctx, job) == [1]

    assert _rows(ctx)[0][:2] == ("verify", "interrupted") and "killed" in (_rows(ctx)[0][2] or "")
    assert _rows(ctx)[1][1] == "running", "another job's run is not ours to judge"
    (record,) = _records(ctx)
    assert (record.record["kind"], record.record["result"]) == ("verify", "fail")
    assert chain.check([record]).ok
    assert not leftover.exists() and (base / "other.quick-1").exists()


def test_recover_if_idle_leaves_a_live_run_alone(unit_ctx: Unit) -> None:
    ctx, job = unit_ctx
    seed.start(ctx.store, job="emr", kind="backup")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with ctx.job_locks.hold("emr", kind="backup"):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    recover_if_idle(ctx, job)
    assert _rows(ctx)[0][1] == "running"
    release.set()
    holder.join()
    recover_if_idle(ctx, job)
    assert _rows(ctx)[0][1] == "interrupted"


class Watcher:
    def __init__(self, *, fail: bool = False) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self.fail = fail

    def started(self, ctx: Context, job: Job, row: queries.RunRow) -> None:
        self.seen.append(("started", row.kind, row.status))
        if self.fail:
            raise RuntimeError("mail server down")

    def finished(self, ctx: Context, job: Job, row: queries.RunRow) -> None:
        self.seen.append(("finished", row.kind, row.status))
        if self.fail:
            raise RuntimeError("mail server down")


def test_observers_hear_of_the_start_and_the_recorded_end(unit_ctx: Unit) -> None:
    ctx, job = unit_ctx
    watcher = Watcher()
    ctx.observers.append(watcher)
    with job_run(ctx, job, "verify", VerifyDetails) as run:
        run.finish(_verified(job, ExitStatus.BAD_DATA))
    assert watcher.seen == [("started", "verify", "running"), ("finished", "verify", "bad_data")]


def test_a_failing_observer_never_changes_the_run(unit_ctx: Unit) -> None:
    ctx, job = unit_ctx
    ctx.observers.append(Watcher(fail=True))
    with job_run(ctx, job, "verify", VerifyDetails) as run:
        run.finish(_verified(job))
    assert run.result.status is ExitStatus.OK
    assert _rows(ctx) == [("verify", "success", None)]


def test_observers_hear_of_runs_found_interrupted(unit_ctx: Unit) -> None:
    ctx, job = unit_ctx
    watcher = Watcher()
    ctx.observers.append(watcher)
    seed.start(ctx.store, job="emr", kind="backup")
    recover(ctx, job)
    assert watcher.seen == [("finished", "backup", "interrupted")]


def test_an_orchestrator_restic_older_than_0_14_starts_nothing(tmp_path: Path) -> None:
    local = FakeRunner(host="local")
    ctx, job = make_context(tmp_path, local=local)
    local.on("version", stdout=b"restic 0.12.1 compiled with go1.18\n")

    with pytest.raises(UsageError) as raised, job_run(ctx, job, "verify", VerifyDetails):
        raise AssertionError("the body ran")

    assert "restic 0.12.1 on the orchestrator (restic) is too old" in str(raised.value)
    assert str(raised.value).endswith("nothing was run")
    assert raised.value.status is ExitStatus.USAGE and _rows(ctx) == []
