"""`backupctl backup`: before → restic backup → after → database dumps → manifest →
forget --prune.

Runs on the job's host (SSH or local); the repository password reaches restic on stdin or a
pipe. A repository is created only when the job says `repository.init: true` or the admin
runs `backupctl init`. Each of the job's `databases` is then dumped on the same host into its
own snapshot (backupctl.databases: counted and hashed on the way, never on the host's disk);
a database that could not be dumped fails the backup, named, and leaves no snapshot. Its
manifest (tables, row counts, SHA-256) is recorded with the run, in the same transaction.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection

from backupctl.actions import generations as gen_check
from backupctl.actions import repo as repos
from backupctl.actions import tripwire
from backupctl.actions.context import Context
from backupctl.actions.jobrun import job_run
from backupctl.actions.restore_test.pipeline import list_snapshot
from backupctl.actions.results import RunResult
from backupctl.config.schema import Job
from backupctl.databases import DumpResult, dump_database
from backupctl.databases import dump as database_dump
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
from backupctl.restic import run as restic_run
from backupctl.restic.codes import ResticExit
from backupctl.state import dumps, queries
from backupctl.state.records import BackupDetails, ms
from backupctl.status import ExitStatus
from backupctl.verify import manifest

log = logging.getLogger(__name__)

BackupResult = RunResult[BackupDetails]

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
    for database in job.databases:
        steps += database_dump.plan(database, job=job.name, where=where)
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
        result, outcome = restic_run.attempt(
            ctx.local, restic.snapshots(target.url, target.password), timeout=300)
        shown = repos.display_url(target.url)
        if outcome is ResticExit.OK:
            done.append(f"{target.name}: {shown} already exists")
            continue
        if outcome is not ResticExit.NO_REPOSITORY:
            raise ResticError(f"{job.name}: cannot check repository {target.name} "
                              f"{result.describe()}")
        restic_run.run(ctx.local, restic.init(target.url, target.password), job=job.name,
                       what=f"creating repository {target.name}", timeout=300)
        done.append(f"{target.name}: created {shown}")
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
        self.dumps: list[DumpResult] = []

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
        result, outcome = restic_run.run(self.runner, argv, job=self.job.name,
                                         what=f"restic backup on {self.runner.host}",
                                         timeout=self.ctx.timeout, allow=allow,
                                         unlock=repos.primary(self.job),
                                         unlock_runner=self.ctx.local)
        if outcome is ResticExit.NO_REPOSITORY:
            if not self.job.repository.init:
                raise ResticError(
                    f"{self.job.name}: repository {self.job.repository.url} does not exist. "
                    f"Create it with: backupctl init {self.job.name} (or set repository.init: "
                    "true); backupctl never creates one silently")
            self.steps.extend(init_repository(self.ctx, self.job))
            result, outcome = restic_run.run(self.runner, argv, job=self.job.name,
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

    def dump_databases(self) -> str | None:
        """Dump each of the job's databases into its own snapshot (after the files); the
        failures, each naming its database, or None."""
        password = repos.primary(self.job).password
        failed = []
        for database in self.job.databases:
            try:
                dumped = dump_database(self.runner, database, job=self.job.name,
                                       repo_url=self.job.repository.url, password=password,
                                       timeout=self.ctx.timeout)
            except BackupctlError as exc:  # the host went away: name the database too
                dumped = DumpResult(job=self.job.name, name=database.name, kind=database.kind,
                                    error=f"{self.job.name}: database {database.name}: {exc}")
            self.dumps.append(dumped)
            if dumped.ok:
                self.steps.append(
                    f"database {dumped.name}: snapshot {(dumped.snapshot_id or '')[:8]}, "
                    f"{len(dumped.tables)} table(s), {sum(dumped.tables.values())} row(s), "
                    f"{dumped.size} bytes in {dumped.seconds:.1f}s")
            else:
                failed.append(dumped.error or f"database {database.name} was not dumped")
                self.steps.append(f"database {dumped.name}: FAILED, no snapshot kept")
        return "; ".join(failed) or None

    def after_snapshot(self, summary: parse.BackupSummary) -> None:
        """Source manifest, ransomware tripwires, then the generation policy (unless frozen)."""
        primary = repos.primary(self.job)
        current = [s for s in repos.snapshots(self.ctx, self.job, primary)
                   if s.id.startswith(summary.snapshot_id)]
        self.snapshot_time = current[0].time.isoformat() if current else None
        listing = list_snapshot(self.ctx.local, primary, summary.snapshot_id,
                                job=self.job.name, timeout=self.ctx.timeout)
        self.manifest = manifest.build(
            self.job, self.runner, listing, timeout=self.ctx.timeout,
            history=lambda window: self.ctx.store.query(queries.sampled_before, self.job.name,
                                                        window=window))
        self.suspicious = tripwire.inspect(self.ctx, self.job, summary, self.manifest)
        frozen = tripwire.frozen_reason(self.ctx, self.job)
        if self.suspicious or frozen:
            self.warnings.append("pruning frozen (ransomware tripwire raised): "
                                 f"{frozen or '; '.join(self.suspicious)}; clear it with "
                                 f"backupctl clear {self.job.name} --operator NAME --reason TEXT")
        else:
            restic_run.run(self.ctx.local, restic.forget(
                primary.url, primary.password, host=self.job.name,
                policy=self.job.generations.policy()),
                job=self.job.name, what="restic forget --prune", timeout=self.ctx.timeout,
                unlock=primary)
            self.steps.append("forget --prune: " + ", ".join(
                f"keep-{k} {v}" for k, v in sorted(self.job.generations.policy().items())))
        # A killed restic (SIGKILL, power cut, lost SSH) leaves its lock behind and restic
        # 0.14 never expires it; `restic unlock` removes only stale locks, never live ones.
        self.ctx.local.run(restic.unlock(primary.url, primary.password), timeout=300)
        held = repos.files(repos.snapshots(self.ctx, self.job, primary))
        self.generations = len(held)
        self.generation_check = gen_check.assess_primary(  # issue #5: lost snapshots?
            self.ctx, self.job.name, policy=self.job.generations.policy(), snapshots=held,
            pruned=not (self.suspicious or frozen))
        if self.generation_check.finding:
            self.warnings.append(self.generation_check.finding)


def backup(ctx: Context, job: Job) -> BackupResult:
    with job_run(ctx, job, "backup", BackupDetails) as run:
        runner = ctx.runner(job)
        try:
            done = _Backup(ctx, job, runner)
            result = _run(done)
        finally:
            runner.close()
        run.finish(result, extra=lambda conn: _record(conn, ctx, job, result, done,
                                                      run_id=run.run_id))
    return run.result


def _run(run: _Backup) -> BackupResult:
    job = run.job
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
        dump_error = run.dump_databases()  # before forget: the policy applies to them too
        try:
            run.after_snapshot(summary)
        except BackupctlError as exc:
            error, status = str(exc), exc.status
        if run.suspicious and status is ExitStatus.OK:
            status = ExitStatus.BAD_DATA
            error = f"{job.name}: SUSPICIOUS backup (possible ransomware): " + "; ".join(
                run.suspicious)
        if dump_error is not None:
            status = ExitStatus.worst([status, ExitStatus.FAILED])
            error = f"{error}; {dump_error}" if error else dump_error
    details = BackupDetails(
        files_new=summary.files_new if summary else 0,
        files_changed=summary.files_changed if summary else 0,
        files_unmodified=summary.files_unmodified if summary else 0,
        bytes_added=summary.data_added if summary else 0,
        total_files=summary.total_files if summary else 0,
        total_bytes=summary.total_bytes if summary else 0,
        duration_ms=(ms(summary.duration) or 0) if summary else 0, generations=run.generations,
        manifest=run.manifest.summary() if run.manifest else None,
        suspicious=run.suspicious, unreadable=output.errors if output else [],
        warnings=run.warnings, steps=run.steps, databases=[d.record() for d in run.dumps])
    return BackupResult(job.name, "backup", status, details, error=error,
                        snapshot_id=summary.snapshot_id if summary else None,
                        snapshot_time=run.snapshot_time)


def _record(conn: Connection, ctx: Context, job: Job, result: BackupResult,
            run: _Backup, *, run_id: int) -> None:
    """The backup's manifests (files and databases), generation observation and tripwire
    flag, with its run."""
    if run.manifest is not None:
        queries.insert_manifest(conn, job.name, run.manifest.snapshot_id, run.manifest.entries)
    dumps.insert_database_manifests(conn, [
        d.manifest().row(run_id=run_id, files_snapshot_id=result.snapshot_id,
                         created_at=ctx.store.now()) for d in run.dumps if d.ok])
    if run.generation_check is not None:
        queries.insert_generations(conn, [run.generation_check.row(job.name,
                                                                   ctx.store.now())])
    if run.suspicious:
        queries.raise_flag(conn, job.name, raised_at=ctx.store.now(),
                           reason="; ".join(run.suspicious))
