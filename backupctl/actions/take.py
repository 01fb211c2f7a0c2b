"""`restic backup` on the job's host: against the kept listing's parent when there is one
(actions/unchanged.py; backed up again without it if restic no longer has it), the repository
created on first use only when the job says so, and a snapshot restic made incomplete (files
it could not read, a source path it skipped) named as such: never a success."""

from __future__ import annotations

from dataclasses import dataclass, field

from backupctl.actions import repo as repos
from backupctl.actions import unchanged
from backupctl.actions.context import Context
from backupctl.actions.repo import init_repository
from backupctl.actions.results import Outcome
from backupctl.config.schema import Job
from backupctl.errors import BackupctlError, ConnectError, HostKeyError, ResticError
from backupctl.execute import Result, Runner, tail
from backupctl.restic import commands as restic
from backupctl.restic import parse
from backupctl.restic import run as restic_run
from backupctl.restic.codes import ResticExit
from backupctl.status import ExitStatus

UNREADABLE_SHOWN = 20  # paths an error message lists; the result keeps every one


@dataclass(frozen=True)
class Taken:
    """`restic backup`: its output (also of an incomplete snapshot) and what went wrong."""

    output: parse.BackupOutput | None = None
    steps: tuple[str, ...] = ()
    outcome: Outcome = field(default_factory=Outcome)
    unreachable: bool = False  # the host could not be reached: `after` cannot run either
    restic_version: str | None = None  # of the host's restic (refused before 0.14)
    parent: unchanged.Parent | None = None  # the kept listing restic compared against

    @property
    def summary(self) -> parse.BackupSummary | None:
        return self.output.summary if self.output else None


def take_snapshot(ctx: Context, job: Job, runner: Runner, *,
                  parent: unchanged.Parent | None = None) -> Taken:
    """`restic backup` on the host (against `parent`, when a listing is kept); never raises
    (the failure is in the outcome)."""
    steps: list[str] = []
    try:
        result, outcome, parent = _restic_backup(ctx, job, runner, steps, parent)
    except (ConnectError, HostKeyError) as exc:
        return Taken(steps=tuple(steps), outcome=Outcome().failed(exc), unreachable=True)
    except BackupctlError as exc:
        return Taken(steps=tuple(steps), outcome=Outcome().failed(exc))
    output = parse.backup_output(result.stdout, result.stderr)
    if output.summary is None:
        return Taken(output, tuple(steps), Outcome(ExitStatus.FAILED, (
            f"{job.name}: restic backup printed no summary {result.describe()}")))
    steps.append(f"restic backup: snapshot {output.summary.snapshot_id}")
    problem = _incomplete(job, runner, output, outcome, stderr=result.stderr)
    return Taken(output, tuple(steps), Outcome().combine(ExitStatus.FAILED, problem)
                 if problem else Outcome(), parent=parent)


def _restic_backup(ctx: Context, job: Job, runner: Runner, steps: list[str],
                   parent: unchanged.Parent | None,
                   ) -> tuple[Result, ResticExit, unchanged.Parent | None]:
    primary = repos.primary(job)
    what = f"restic backup on {runner.host}"

    def run(parent: unchanged.Parent | None,
            allow: tuple[ResticExit, ...]) -> tuple[Result, ResticExit]:
        argv = restic.backup(job.repository.host_url, primary.password, host=job.name,
                             paths=job.source.paths, exclude=job.source.exclude,
                             options=parent.argv if parent else ())
        # A stale lock (a killed prune or check) is removed from the orchestrator, where
        # restic can tell that its process is gone.
        return restic_run.run(runner, argv, job=job.name, what=what, timeout=ctx.timeout,
                              allow=allow, unlock=primary, unlock_runner=ctx.local)

    allow = (ResticExit.INCOMPLETE, ResticExit.NO_REPOSITORY)
    result, outcome = run(parent, (*allow, ResticExit.FATAL) if parent else allow)
    if parent is not None and outcome is ResticExit.FATAL:
        if not parent.missing(result):
            raise restic_run.failure(result, outcome, job=job.name, what=what)
        steps.append(f"restic backup: the kept listing's snapshot "
                     f"{parent.kept.snapshot_id[:8]} is gone, backed up without it")
        parent = None
        result, outcome = run(None, allow)
    if outcome is not ResticExit.NO_REPOSITORY:
        return result, outcome, parent
    if not job.repository.init:
        raise ResticError(
            f"{job.name}: repository {repos.display_url(primary.url)} does not exist. "
            "Create it with: "
            f"backupctl init {job.name} (or set repository.init: true); backupctl never "
            "creates one silently")
    steps.extend(init_repository(ctx, job))
    return (*run(None, (ResticExit.INCOMPLETE,)), None)


def _incomplete(job: Job, runner: Runner, output: parse.BackupOutput, outcome: ResticExit,
                *, stderr: str) -> str | None:
    """Why the snapshot restic made is not a complete backup, or None."""
    assert output.summary is not None
    snapshot = output.summary.snapshot_id
    if outcome is ResticExit.INCOMPLETE:
        listed = "; ".join(output.errors[:UNREADABLE_SHOWN]) or tail(stderr)
        if len(output.errors) > UNREADABLE_SHOWN:
            listed += (f"; … and {len(output.errors) - UNREADABLE_SHOWN} more (every one "
                       "under `unreadable` in the result)")
        return (f"{job.name}: snapshot {snapshot} is incomplete, some files could not be "
                f"read on {runner.host} ({len(output.errors)} reported): {listed}")
    if output.missing:
        # restic 0.14 skips a missing source path with exit 0: never a success for us.
        return (f"{job.name}: snapshot {snapshot} is incomplete, source path(s) missing on "
                f"{runner.host}: {', '.join(output.missing)}; fix source.paths or the host")
    return None
