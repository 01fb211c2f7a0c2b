"""Closing a run: its state row and its evidence record, written together.

Every action ends through here, so the run status names, the evidence fields and the
"aborted" wording are the same for backup, copy, probe, verify and drill.
"""

from __future__ import annotations

from typing import Any, Protocol

from backupctl import __version__
from backupctl.actions.context import Context
from backupctl.actions.outcome import JobResult
from backupctl.config.schema import Job
from backupctl.log import mask
from backupctl.status import ExitStatus

_RUN_STATUS = {ExitStatus.OK: "success", ExitStatus.BAD_DATA: "bad_data"}

Extra = list[tuple[Any, list[dict[str, Any]]]]


# Result fields that are columns of `runs` (or implied by it), so not repeated in details.
COLUMNS = ("job", "status", "repository", "snapshot_id", "snapshot_time", "run_id", "kind")


def details_of(result: JobResult) -> dict[str, Any]:
    """A result as run details: everything but what the runs row already says."""
    return {k: v for k, v in result.to_dict().items() if k not in COLUMNS}


def run_status(status: ExitStatus) -> str:
    """The `runs.status` of an exit status: success, bad_data, or failed."""
    return _RUN_STATUS.get(status, "failed")


def finish(ctx: Context, job: Job, run_id: int, *, status: ExitStatus, error: str | None,
           details: dict[str, Any], snapshot_id: str | None = None,
           snapshot_time: str | None = None, extra: Extra | None = None) -> None:
    """Close the run and append its evidence record in one transaction."""
    ctx.store.finish_run(
        run_id, status=run_status(status), exit_code=int(status), snapshot_id=snapshot_id,
        snapshot_time=snapshot_time, error=error, details=details,
        evidence={"host": job.host.display(), "details": details,
                  "backupctl_version": __version__, "restic_version": ctx.restic_version},
        extra=extra)


class SnapshotResult(JobResult, Protocol):
    """A result that carries its run id and the snapshot it was about (verify, drill)."""

    @property
    def run_id(self) -> int | None: ...

    @property
    def snapshot_id(self) -> str | None: ...

    @property
    def snapshot_time(self) -> str | None: ...


def finish_result(ctx: Context, job: Job, result: SnapshotResult) -> None:
    """Close the run of a result that names its snapshot, with the result as details."""
    assert result.run_id is not None
    finish(ctx, job, result.run_id, status=result.status, error=result.error,
           details=details_of(result), snapshot_id=result.snapshot_id,
           snapshot_time=result.snapshot_time)


def aborted(ctx: Context, job: Job, run_id: int, exc: BaseException, *, what: str = "") -> None:
    """Record a run that an exception (Ctrl-C, SIGTERM, a bug) cut short, before re-raising."""
    where = f"{what}: " if what else ""
    ctx.store.finish_run(run_id, status="failed", exit_code=int(ExitStatus.FAILED),
                         error=mask(f"{job.name}: {where}aborted: "
                                    f"{exc.__class__.__name__}: {exc}"))
