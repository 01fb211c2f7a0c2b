"""One way to run a job: lock, crash recovery, the run's row, and its evidence record.

    with job_run(ctx, job, "verify", VerifyDetails, repository=repo.name) as run:
        run.finish(engine(...))
    return run.result

`job_session` holds the job's lock for a command (exit 75 when another run holds it) and
first recovers what a killed run left: its `running` rows become `interrupted` (each with
an evidence record) and its restore-test scratch data is wiped. `recorded` starts a run row
and guarantees it is closed exactly once, with its evidence record in the same transaction:
by `run.finish(result)`, or, when a BackupctlError escapes, as that error's failure (the
error is then the result, not an exception), or, when the process is stopped or a bug
escapes, as interrupted/failed before the exception goes on. No action writes `runs` or
evidence itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection

from backupctl import __version__, databases
from backupctl.actions import due
from backupctl.actions.context import Context
from backupctl.actions.restore_test.scratch import wipe_leftovers
from backupctl.actions.results import PRIMARY, RunResult
from backupctl.config.identity import job_file_sha256
from backupctl.config.schema import Job
from backupctl.errors import BackupctlError
from backupctl.evidence import anchor, chain, pin
from backupctl.execute import Cancelled, job_scope, program, raise_if_cancelled
from backupctl.log import mask, mask_data
from backupctl.restic import versions
from backupctl.restic.commands import RESTIC
from backupctl.state import queries
from backupctl.state.db import StateError
from backupctl.state.records import Aborted, Proof, Record
from backupctl.status import ExitStatus

log = logging.getLogger(__name__)

D = TypeVar("D", bound=Record)
Extra = Callable[[Connection], None]

_RUN_STATUS = {ExitStatus.OK: "success", ExitStatus.BAD_DATA: "bad_data"}
INTERRUPTED = ("interrupted: the process was killed or the machine stopped before the run "
               "finished")


def interrupted_error(dead: str, *, by: str) -> str:
    """The error of a run found `running` under the job's lock; `dead` ran it, `by` found it
    (another orchestrator's run: its lease was lost, so it stopped)."""
    if dead == by:
        return INTERRUPTED
    return (f"interrupted: orchestrator {dead} stopped (lease lost) before the run finished; "
            f"recorded by {by}")


def run_status(status: ExitStatus) -> str:
    """The `runs.status` of an exit status: success, bad_data, or failed."""
    return _RUN_STATUS.get(status, "failed")


def _evidence(ctx: Context, job: Job, row: queries.RunRow, details: dict[str, Any],
              ) -> dict[str, Any]:
    return {"kind": row.kind, "job": row.job, "host": job.host.display(),
            "repository": row.repository, "snapshot_id": row.snapshot_id,
            "snapshot_time": row.snapshot_time, "started_at": row.started_at,
            "finished_at": row.finished_at, "operator": row.operator,
            "orchestrator": row.orchestrator,
            "result": "pass" if row.status == "success" else "fail", "details": details,
            "backupctl_version": __version__, "restic_version": ctx.restic_version}


def _observe(ctx: Context, job: Job, row: queries.RunRow, *, started: bool) -> None:
    """Tell the observers (notifications, pings); nothing they do changes the run."""
    for observer in ctx.observers:
        try:
            (observer.started if started else observer.finished)(ctx, job, row)
        except Exception:
            log.exception("%s: run %d: a run observer failed (the run is unchanged)",
                          job.name, row.id)


def _close(ctx: Context, job: Job, run_id: int, *, status: str, code: int, error: str | None,
           details: Record, snapshot_id: str | None = None, snapshot_time: str | None = None,
           reason: str | None = None, extra: Extra | None = None) -> bool:
    """Close the run and append its evidence record in one transaction; False when the run
    had already been closed elsewhere (recorded interrupted by another orchestrator)."""
    restore_ms = details.restore_ms if isinstance(details, Proof) else None
    _ = ctx.restic_version, ctx.signer  # runs restic, reads the key: not in the transaction
    with ctx.store.transaction() as conn:
        row = queries.finish_run(conn, run_id, status=status, exit_code=code,
                                 finished_at=ctx.store.now(), details=details, error=error,
                                 snapshot_id=snapshot_id, snapshot_time=snapshot_time,
                                 restore_ms=restore_ms,
                                 reason=None if status == "success" else reason)
        if row is None:
            return False
        if extra is not None:
            extra(conn)
        evidence = {**details.to_json(), "status": status, "exit_code": code, "error": error}
        entry = chain.append(conn, _evidence(ctx, job, row, evidence), run_id=run_id,
                             signer=ctx.signer)
    pin.advance(ctx.store, ctx.signer, entry)  # committed: the head pin beside the key
    anchor.log_head(entry.seq, entry.hash, anchor_file=ctx.config.settings.evidence_anchor_file)
    _observe(ctx, job, row, started=False)
    return True


class Run(Generic[D]):
    """A started run; `finish` closes it with its result (once)."""

    def __init__(self, ctx: Context, job: Job, kind: str, model: type[D], *,
                 repository: str, run_id: int) -> None:
        self.ctx, self.job, self.kind, self.model = ctx, job, kind, model
        self.repository, self.run_id = repository, run_id
        self.recovered: list[int] = []  # runs of the job a killed process left (interrupted)
        self._result: RunResult[D] | None = None

    @property
    def closed(self) -> bool:
        return self._result is not None

    @property
    def result(self) -> RunResult[D]:
        assert self._result is not None, "the run has not finished"
        return self._result

    def finish(self, result: RunResult[D], *, extra: Extra | None = None) -> RunResult[D]:
        """Record the result (and `extra` rows, in the same transaction).

        Every string of it is masked first: a secret in an error (a password in a
        repository URL that restic echoed) must never reach the permanent evidence chain."""
        assert self._result is None, "a run is closed once"
        error = mask(result.error) if result.error else None
        details = type(result.details).model_validate(mask_data(result.details.to_json()))
        result = dataclasses.replace(result, error=error, details=details, run_id=self.run_id)
        if not _close(self.ctx, self.job, self.run_id, status=run_status(result.status),
                      code=int(result.status), error=error, details=result.details,
                      snapshot_id=result.snapshot_id, snapshot_time=result.snapshot_time,
                      reason=result.reason, extra=extra):
            result = dataclasses.replace(result, status=ExitStatus.FAILED, error=(
                f"{self.job.name}: run {self.run_id} was recorded interrupted by another "
                "orchestrator meanwhile; this result was not recorded"))
        self._result = result
        return result

    def fail(self, exc: BackupctlError) -> RunResult[D]:
        """Record the run as failed by `exc` (bad data when it is a DataError)."""
        return self.finish(RunResult(self.job.name, self.kind, exc.status, self.model(),
                                     error=str(exc), repository=self.repository,
                                     reason=exc.reason))

    def abort(self, exc: BaseException) -> None:
        """Record a run that a signal (interrupted) or a bug (failed) cut short."""
        stopped = isinstance(exc, Cancelled | KeyboardInterrupt)
        status = "interrupted" if stopped else "failed"
        error = mask(f"{self.job.name}: {self.kind} {'interrupted' if stopped else 'aborted'}"
                     f": {exc.__class__.__name__}: {exc}")
        self._result = RunResult(self.job.name, self.kind, ExitStatus.FAILED, self.model(),
                                 error=error, repository=self.repository, run_id=self.run_id)
        _close(self.ctx, self.job, self.run_id, status=status, code=int(ExitStatus.FAILED),
               error=error, details=Aborted(status=status))


def _job_file_sha256(ctx: Context, job: Job) -> str | None:
    """The hash of the job file this run uses (status flags orchestrators whose differ)."""
    entry = ctx.config.jobs.get(job.name)
    try:
        return job_file_sha256(entry.path) if entry is not None else None
    except OSError:
        return None


@contextlib.contextmanager
def recorded(ctx: Context, job: Job, kind: str, model: type[D], *,
             repository: str = PRIMARY) -> Iterator[Run[D]]:
    """A run row for the body; closed exactly once whatever happens (see module doc)."""
    digest = _job_file_sha256(ctx, job)
    with ctx.store.transaction() as conn:
        run_id = queries.start_run(conn, job=job.name, kind=kind, repository=repository,
                                   operator=ctx.operator, orchestrator=ctx.store.orchestrator,
                                   pid=os.getpid(), started_at=ctx.store.now(),
                                   job_file_sha256=digest)
        started = queries.run(conn, run_id)
    _observe(ctx, job, started, started=True)
    run = Run(ctx, job, kind, model, repository=repository, run_id=run_id)
    try:
        yield run
    except BackupctlError as exc:
        if not run.closed:
            run.fail(exc)
        return  # the failure is the run's result
    except BaseException as exc:
        if not run.closed:
            try:
                run.abort(exc)
            except StateError as unreachable:  # e.g. a lost lease: the database is cut off
                raise StateError(
                    f"{job.name}: {kind} run {run_id} was stopped ({exc}) and could not be "
                    f"recorded ({unreachable}); the job's next run, on any orchestrator, "
                    "records it interrupted") from exc
        raise
    if not run.closed:
        run.abort(RuntimeError("the action returned without a result"))
        raise RuntimeError(f"{job.name}: {kind} run {run_id} ended without a result")


def recover(ctx: Context, job: Job) -> list[int]:
    """Under the job's lock: record killed runs interrupted, wipe restore-test leftovers.

    With leases shared by every orchestrator (`global_scope`) a `running` row of any
    orchestrator is stale once the lease is ours; its error names the orchestrator that
    stopped. Scratch leftovers are only this orchestrator's (the others wipe their own)."""
    me = ctx.store.orchestrator
    scope = None if ctx.job_locks.global_scope else me
    with ctx.store.transaction() as conn:
        stale = queries.interrupt_running(conn, job.name, orchestrator=scope,
                                          finished_at=ctx.store.now(),
                                          error=lambda dead: interrupted_error(dead, by=me))
        if stale:
            _ = ctx.restic_version, ctx.signer
        entries = [chain.append(conn, _evidence(ctx, job, row, {
            **Aborted(status="interrupted").to_json(), "status": "interrupted",
            "exit_code": 1, "error": row.error}), run_id=row.id, signer=ctx.signer)
            for row in stale]
    if entries:
        pin.advance(ctx.store, ctx.signer, entries[-1])
        anchor.log_head(entries[-1].seq, entries[-1].hash,
                        anchor_file=ctx.config.settings.evidence_anchor_file)
    for row in stale:
        log.warning("%s: %s run %d (orchestrator %s) was interrupted; recorded as failed",
                    job.name, row.kind, row.id, row.orchestrator)
        _observe(ctx, job, row, started=False)
    scratch_dir = ctx.config.settings.scratch_dir
    # A killed database restore test may have left its throwaway server running: stop it
    # before its directory is wiped (one that cannot be stopped is kept for the next run).
    for done in databases.cleanup_leftovers(scratch_dir, job.name):
        log.warning("%s: %s", job.name, done)
    wipe_leftovers(scratch_dir, job.name, keep=databases.leftovers(scratch_dir, job.name))
    return [row.id for row in stale]


@contextlib.contextmanager
def job_session(ctx: Context, job: Job, kind: str, *,
                due_kind: str | None = None) -> Iterator[list[int]]:
    """Hold the job's lock for a command's runs (LockHeld: exit 75), after recovering;
    yields the ids of the runs found interrupted.

    With `ctx.due` (--due) the job must still be due once the lock is held and its dead runs
    are recorded (another orchestrator may have run it meanwhile): else `due.NotDue`, and
    no run is started. `due_kind`: the schedule that decides, when not the run's kind
    (`verify-full` for `verify --mode full`)."""
    raise_if_cancelled()  # a stopped process (signal) starts nothing new
    # restic older than 0.14 here: backupctl is misconfigured, exit 2 naming it before any
    # run is started (the job's runs stay as they were, so its staleness alerts fire)
    versions.refuse_old(ctx.restic_version, job=job.name, where="the orchestrator",
                        binary=program(ctx.local, RESTIC), orchestrator=True)
    due_kind = due_kind or kind
    with job_scope(), ctx.job_locks.hold(job.name, kind=kind):
        recovered = recover(ctx, job)
        if ctx.due and due_kind in due.KINDS:
            due.require(ctx.store, job, due_kind, now=ctx.clock(), runner=ctx.local)
        yield recovered


@contextlib.contextmanager
def job_run(ctx: Context, job: Job, kind: str, model: type[D], *,
            repository: str = PRIMARY, due_kind: str | None = None) -> Iterator[Run[D]]:
    """`job_session` + `recorded`: the usual single-run command."""
    with job_session(ctx, job, kind, due_kind=due_kind) as recovered, recorded(
            ctx, job, kind, model, repository=repository) as run:
        run.recovered = recovered
        yield run


def recover_if_idle(ctx: Context, job: Job) -> None:
    """Recover a job unless a run of it is alive right now (then its lock is held)."""
    from backupctl.errors import LockHeld

    with contextlib.suppress(LockHeld), ctx.job_locks.hold(job.name, kind="status"):
        recover(ctx, job)
