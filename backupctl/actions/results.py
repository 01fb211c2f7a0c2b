"""What actions return, and running many jobs with bounded concurrency.

Every run (one backup, one copy to one repository, one probe, one restore test, one drill,
one clear) returns a `RunResult` holding its typed details (`state.records`); the CLI
renders text and `--json` from it, and `jobrun` writes the run's row and evidence from the
same object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from backupctl import execute
from backupctl.config.schema import Job
from backupctl.errors import BackupctlError, Reason
from backupctl.state.records import Record
from backupctl.status import ExitStatus

log = logging.getLogger(__name__)

PRIMARY = "primary"
D = TypeVar("D", bound=Record)


class JobResult(Protocol):
    """What the CLI needs of any per-job result."""

    @property
    def job(self) -> str: ...

    @property
    def status(self) -> ExitStatus: ...

    @property
    def error(self) -> str | None: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Outcome:
    """A run's status and error so far: each step's result is combined into it, the worse
    status wins and the errors are kept in the order they happened (the one merge rule of
    backup, copy and drill)."""

    status: ExitStatus = ExitStatus.OK
    error: str | None = None
    reason: Reason | None = None  # the category of the first failure that had one

    @property
    def ok(self) -> bool:
        return self.status is ExitStatus.OK

    def combine(self, status: ExitStatus, error: str | None, *,
                reason: Reason | None = None) -> Outcome:
        """This outcome and another step's: an error never leaves the status OK."""
        if error is None and status is ExitStatus.OK:
            return self
        if status is ExitStatus.OK:
            status = ExitStatus.FAILED
        joined = "; ".join(e for e in (self.error, error) if e) or None
        return Outcome(ExitStatus.worst([self.status, status]), joined, self.reason or reason)

    def then(self, other: Outcome) -> Outcome:
        """This outcome followed by a later step's."""
        return self.combine(other.status, other.error, reason=other.reason)

    def failed(self, exc: BackupctlError) -> Outcome:
        return self.combine(exc.status, str(exc), reason=exc.reason)


def status_fields(status: ExitStatus) -> dict[str, Any]:
    return {"status": status.name.lower(), "exit_code": int(status)}


@dataclass(frozen=True)
class RunResult(Generic[D]):
    """One recorded run and its typed details."""

    job: str
    kind: str
    status: ExitStatus
    details: D
    error: str | None = None
    repository: str = PRIMARY
    snapshot_id: str | None = None
    snapshot_time: str | None = None
    run_id: int | None = None
    reason: Reason | None = None  # why it failed, as a category (errors.Reason)

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "kind": self.kind, "repository": self.repository,
                **status_fields(self.status), "error": self.error, "failure_reason": self.reason,
                "snapshot_id": self.snapshot_id, "snapshot_time": self.snapshot_time,
                "run_id": self.run_id, **self.details.to_json()}


@dataclass(frozen=True)
class Refused:
    """A job that did not run at all (lock held, unexpected error before starting)."""

    job: str
    status: ExitStatus
    error: str | None
    kind: str = "refused"
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "kind": self.kind, **status_fields(self.status),
                "error": self.error, "details": self.details}


R = TypeVar("R", bound=JobResult)

# How long the main thread waits for running jobs to record themselves interrupted after
# SIGTERM/SIGINT (their processes are killed at once; recording takes a moment).
STOP_GRACE_SECONDS = 30


def run_jobs(jobs: Sequence[Job], action: Callable[[Job], R], *,
             concurrency: int) -> list[R | Refused]:
    """Run `action` for every job, up to `concurrency` at once; one failure stops nothing.

    SIGTERM/SIGINT (raised in the main thread) cancels every job: running processes are
    killed (`execute.cancel`), each job records its run interrupted and wipes its scratch
    data, then the signal's exception propagates.
    """

    def guarded(job: Job) -> R | Refused:
        try:
            return action(job)
        except BackupctlError as exc:
            return Refused(job.name, exc.status, str(exc))
        except execute.Cancelled as exc:
            if execute.cancelled():
                raise  # the whole process was stopped (a signal)
            return Refused(job.name, ExitStatus.FAILED, str(exc))  # this job's lease was lost
        except Exception as exc:
            log.exception("%s: unexpected error", job.name)
            return Refused(job.name, ExitStatus.FAILED,
                           f"unexpected error: {exc.__class__.__name__}: {exc}")

    if concurrency <= 1 or len(jobs) <= 1:
        return [guarded(job) for job in jobs]
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="job")
    futures = [pool.submit(guarded, job) for job in jobs]
    try:
        # Short timed waits: the main thread must run the signal handler at once (a
        # signal the kernel gave another thread only shows when this thread runs Python).
        while wait(futures, timeout=0.25).not_done:
            pass
    except BaseException:
        execute.cancel()
        # Jobs not started never start; wait for the running ones only (a future cancelled
        # by shutdown(cancel_futures=True) never counts as done: wait() would sit out its
        # whole timeout).
        running = [f for f in futures if not f.cancel()]
        wait(running, timeout=STOP_GRACE_SECONDS)
        pool.shutdown(wait=False)
        raise
    pool.shutdown()
    return [f.result() for f in futures]
