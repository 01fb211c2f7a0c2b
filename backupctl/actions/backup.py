"""`backupctl backup`: before → restic backup → after → manifest → forget --prune.

Runs on the job's host (SSH or local); the repository password reaches restic on stdin or a
pipe. A repository is created only when the job says `repository.init: true` or the admin
runs `backupctl init`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from backupctl.actions import generations as gen_check
from backupctl.actions import record, tripwire
from backupctl.actions import repo as repos
from backupctl.actions.context import Context
from backupctl.actions.outcome import ResultDict
from backupctl.config.schema import Job
from backupctl.errors import (
    BackupctlError,
    CommandFailed,
    ConnectError,
    HostKeyError,
    ResticError,
)
from backupctl.execute import Runner, tail
from backupctl.restic import commands as restic
from backupctl.restic import parse
from backupctl.restic.codes import ResticExit
from backupctl.state.locks import job_lock
from backupctl.state.recovery import recover
from backupctl.state.schema import flags
from backupctl.state.schema import generations as generations_table
from backupctl.state.schema import manifest as manifest_table
from backupctl.status import ExitStatus
from backupctl.verify import manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackupResult(ResultDict):
    job: str
    status: ExitStatus
    error: str | None = None
    snapshot_id: str | None = None
    snapshot_time: str | None = None
    files_new: int = 0
    files_changed: int = 0
    files_unmodified: int = 0
    bytes_added: int = 0
    total_files: int = 0
    total_bytes: int = 0
    duration: float = 0.0
    generations: int | None = None
    manifest: dict[str, Any] | None = None
    suspicious: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # "PATH: reason" of an incomplete one
    warnings: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    run_id: int | None = None
    kind: str = "backup"


UNREADABLE_SHOWN = 20  # paths an error message lists; the result keeps every one


def plan(job: Job) -> list[str]:
    """What `backup` would run, secrets masked (for --dry-run)."""
    from backupctl.execute import Secret, display

    masked = Secret("<password>")
    where = job.host.display()
    steps = [f"on {where}: sh -c {cmd!r}" for cmd in job.source.before]
    steps.append(f"on {where}: " + display(restic.backup(
        job.repository.url, masked, host=job.name, paths=job.source.paths,
        exclude=job.source.exclude)))
    steps += [f"on {where}: sh -c {cmd!r}" for cmd in job.source.after]
    steps.append("on orchestrator: " + display(restic.forget(
        job.repository.orchestrator_url, masked, host=job.name,
        policy=job.generations.policy())))
    return steps


def init_repository(ctx: Context, job: Job, *, copies: bool = False) -> list[str]:
    """Create the job's repository (and its copies) where missing; returns what was done."""
    done = []
    targets = [repos.primary(job)]
    if copies:
        targets += [repos.named(job, c.name) for c in job.copies]
    for target in targets:
        result = ctx.local.run(restic.snapshots(target.url, target.password), timeout=300)
        from backupctl.restic.codes import classify

        if result.ok:
            done.append(f"{target.name}: {target.url} already exists")
            continue
        if classify(result.returncode, result.stderr) is not ResticExit.NO_REPOSITORY:
            raise ResticError(f"{job.name}: cannot check repository {target.name} "
                              f"{result.describe()}")
        repos.run_restic(ctx.local, restic.init(target.url, target.password), job=job.name,
                         what=f"creating repository {target.name}", timeout=300)
        done.append(f"{target.name}: created {target.url}")
    return done


class _Backup:
    """One backup run; collects steps and warnings as it goes."""

    def __init__(self, ctx: Context, job: Job, runner: Runner) -> None:
        self.ctx, self.job, self.runner = ctx, job, runner
        self.steps: list[str] = []
        self.warnings: list[str] = []
        self.snapshot_time: str | None = None
        self.manifest: manifest.Manifest | None = None
        self.suspicious: list[str] = []
        self.generations: int | None = None
        self.generation_check: gen_check.Assessment | None = None
        self.output: parse.BackupOutput | None = None  # set even when the snapshot is bad

    def hooks(self, key: str) -> str | None:
        """Run `before`/`after` commands; the first failure's message, or None."""
        for command in getattr(self.job.source, key):
            result = self.runner.shell(command, timeout=self.ctx.timeout)
            self.steps.append(f"{key}: {command!r} exited {result.returncode}")
            if not result.ok:
                return (f"{self.job.name}: {key} command {command!r} failed "
                        f"{result.describe()}")
        return None

    def restic_backup(self) -> parse.BackupOutput:
        password = repos.primary(self.job).password
        argv = restic.backup(self.job.repository.url, password, host=self.job.name,
                             paths=self.job.source.paths, exclude=self.job.source.exclude)
        allow = (ResticExit.INCOMPLETE, ResticExit.NO_REPOSITORY)
        # A stale lock (a killed prune or check) is removed from the orchestrator, where
        # restic can tell that its process is gone.
        result, outcome = repos.run_restic(self.runner, argv, job=self.job.name,
                                           what=f"restic backup on {self.runner.host}",
                                           timeout=self.ctx.timeout, allow=allow,
                                           unlock_stale=repos.primary(self.job),
                                           unlock_runner=self.ctx.local)
        if outcome is ResticExit.NO_REPOSITORY:
            if not self.job.repository.init:
                raise ResticError(
                    f"{self.job.name}: repository {self.job.repository.url} does not exist. "
                    f"Create it with: backupctl init {self.job.name} (or set repository.init: "
                    "true); backupctl never creates one silently")
            self.steps.extend(init_repository(self.ctx, self.job))
            result, outcome = repos.run_restic(self.runner, argv, job=self.job.name,
                                               what=f"restic backup on {self.runner.host}",
                                               timeout=self.ctx.timeout,
                                               allow=(ResticExit.INCOMPLETE,))
        output = parse.backup_output(result.stdout, result.stderr)
        self.output = output
        if output.summary is None:
            raise ResticError(f"{self.job.name}: restic backup printed no summary "
                              f"{result.describe()}")
        self.steps.append(f"restic backup: snapshot {output.summary.snapshot_id}")
        if outcome is ResticExit.INCOMPLETE:
            listed = "; ".join(output.errors[:UNREADABLE_SHOWN]) or tail(result.stderr)
            if len(output.errors) > UNREADABLE_SHOWN:
                listed += (f"; … and {len(output.errors) - UNREADABLE_SHOWN} more "
                           "(every one under `unreadable` in the result)")
            raise CommandFailed(f"{self.job.name}: snapshot {output.summary.snapshot_id} is "
                                f"incomplete, some files could not be read on "
                                f"{self.runner.host} ({len(output.errors)} reported): {listed}")
        if output.missing:
            # restic 0.14 skips a missing source path with exit 0: never a success for us.
            raise CommandFailed(f"{self.job.name}: snapshot {output.summary.snapshot_id} is "
                                f"incomplete, source path(s) missing on {self.runner.host}: "
                                f"{', '.join(output.missing)}; fix source.paths or the host")
        return output

    def after_snapshot(self, summary: parse.BackupSummary) -> None:
        """Source manifest, ransomware tripwires, then the generation policy (unless frozen)."""
        primary = repos.primary(self.job)
        current = [s for s in repos.snapshots(self.ctx, self.job, primary)
                   if s.id.startswith(summary.snapshot_id)]
        self.snapshot_time = current[0].time.isoformat() if current else None
        self.manifest = manifest.build(self.ctx, self.job, self.runner,
                                       snapshot_id=summary.snapshot_id)
        self.suspicious = tripwire.inspect(self.ctx, self.job, summary, self.manifest)
        frozen = tripwire.frozen_reason(self.ctx, self.job)
        if self.suspicious or frozen:
            self.warnings.append("pruning frozen (ransomware tripwire raised): "
                                 f"{frozen or '; '.join(self.suspicious)}; clear it with "
                                 f"backupctl clear {self.job.name} --operator NAME --reason TEXT")
        else:
            repos.run_restic(self.ctx.local, restic.forget(
                primary.url, primary.password, host=self.job.name,
                policy=self.job.generations.policy()),
                job=self.job.name, what="restic forget --prune", timeout=self.ctx.timeout,
                unlock_stale=primary)
            self.steps.append("forget --prune: " + ", ".join(
                f"keep-{k} {v}" for k, v in sorted(self.job.generations.policy().items())))
        # A killed restic (SIGKILL, power cut, lost SSH) leaves its lock behind and restic
        # 0.14 never expires it; `restic unlock` removes only stale locks, never live ones.
        self.ctx.local.run(restic.unlock(primary.url, primary.password), timeout=300)
        held = repos.snapshots(self.ctx, self.job, primary)
        self.generations = len(held)
        self.generation_check = gen_check.assess_primary(  # issue #5: lost snapshots?
            self.ctx, self.job.name, policy=self.job.generations.policy(), snapshots=held,
            pruned=not (self.suspicious or frozen))
        if self.generation_check.finding:
            self.warnings.append(self.generation_check.finding)


def backup(ctx: Context, job: Job) -> BackupResult:
    with job_lock(ctx.config.settings.state_dir, job.name):
        recover(ctx.store, state_dir=ctx.config.settings.state_dir,
                scratch_dir=ctx.config.settings.scratch_dir, job=job.name)
        run_id = ctx.store.start_run(job=job.name, kind="backup", operator=ctx.operator)
        runner = ctx.runner(job)
        try:
            return _run(ctx, job, runner, run_id)
        except BaseException as exc:  # record the failure now, then let it propagate
            record.aborted(ctx, job, run_id, exc)
            raise
        finally:
            runner.close()


def _run(ctx: Context, job: Job, runner: Runner, run_id: int) -> BackupResult:
    run = _Backup(ctx, job, runner)
    output: parse.BackupOutput | None = None
    error: str | None = None
    status = ExitStatus.OK
    unreachable = False
    try:
        error = run.hooks("before")
        if error is None:
            output = run.restic_backup()
    except (ConnectError, HostKeyError) as exc:
        error, status, unreachable = str(exc), exc.status, True
    except BackupctlError as exc:
        error, status = str(exc), exc.status
    after_error: str | None = None
    if unreachable and job.source.after:
        run.steps.append("after: not run, the host could not be reached")
    else:
        try:
            after_error = run.hooks("after")  # runs even when the backup failed
        except BackupctlError as exc:
            after_error = str(exc)
    if error is not None and status is ExitStatus.OK:
        status = ExitStatus.FAILED
    if error is None and after_error is not None:
        error, status = after_error, ExitStatus.FAILED
    if output is None:
        output = run.output  # an incomplete snapshot is reported (and recorded) too
    summary = output.summary if output else None
    if summary is not None and status is ExitStatus.OK:
        try:
            run.after_snapshot(summary)
        except BackupctlError as exc:
            error, status = str(exc), exc.status
        if run.suspicious and status is ExitStatus.OK:
            status = ExitStatus.BAD_DATA
            error = f"{job.name}: SUSPICIOUS backup (possible ransomware): " + "; ".join(
                run.suspicious)
    result = BackupResult(
        job=job.name, status=status, error=error,
        snapshot_id=summary.snapshot_id if summary else None, snapshot_time=run.snapshot_time,
        files_new=summary.files_new if summary else 0,
        files_changed=summary.files_changed if summary else 0,
        files_unmodified=summary.files_unmodified if summary else 0,
        bytes_added=summary.data_added if summary else 0,
        total_files=summary.total_files if summary else 0,
        total_bytes=summary.total_bytes if summary else 0,
        duration=summary.duration if summary else 0.0, generations=run.generations,
        manifest=run.manifest.summary() if run.manifest else None,
        suspicious=run.suspicious, unreadable=output.errors if output else [],
        warnings=run.warnings, steps=run.steps, run_id=run_id)
    _record(ctx, job, run_id, result, run)
    return result


def _record(ctx: Context, job: Job, run_id: int, result: BackupResult, run: _Backup) -> None:
    details = record.details_of(result)
    extra: record.Extra = []
    if run.manifest is not None:
        extra.append((manifest_table, run.manifest.rows(job.name)))
    if run.generation_check is not None:
        extra.append((generations_table,
                      [run.generation_check.row(job.name, ctx.store.now())]))
    if run.suspicious:
        extra.append((flags, [{"job": job.name, "name": "suspicious", "raised_at": ctx.store.now(),
                               "reason": "; ".join(run.suspicious)}]))
    record.finish(ctx, job, run_id, status=result.status, error=result.error, details=details,
                  snapshot_id=result.snapshot_id, snapshot_time=result.snapshot_time,
                  extra=extra)
