"""`backupctl backup`: before → restic backup → after → database dumps → inspect → prune →
assess, as small steps passing frozen values.

Runs on the job's host (SSH or local); the repository password reaches restic on stdin or a
pipe. A repository is created only when the job says `repository.init: true` or the admin
runs `backupctl init`. Each of the job's `databases` is then dumped on the same host into its
own snapshot (backupctl.databases: counted and hashed on the way, never on the host's disk);
a database that could not be dumped fails the backup, named, and leaves no snapshot. Its
manifest (tables, row counts, SHA-256) is recorded with the run, in the same transaction.

An unchanged backup starts two restic processes: `backup` on the host, against the previous
snapshot whose listing is kept (actions/unchanged.py), while the manifest's files are hashed
beside it; then `forget --prune --json` (whose kept snapshots are the generations) on the
orchestrator. `ls` (the listing the manifest samples, which also gives the snapshot's time)
runs when a file was new, changed or removed, or no listing is kept (take.py, inspection.py).
`snapshots` runs only while a tripwire freezes pruning, `unlock` only after a killed run (a
stale lock that blocks a later command is removed by `restic.run` anyway).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from sqlalchemy import Connection

from backupctl import databases  # its modules load when a job with databases uses them
from backupctl.actions import generations as gen_check
from backupctl.actions import inspection, take, tunnel, unchanged
from backupctl.actions import repo as repos
from backupctl.actions.context import Context
from backupctl.actions.jobrun import job_run
from backupctl.actions.repo import init_repository as init_repository  # `backupctl init`
from backupctl.actions.restore_test import freshness
from backupctl.actions.results import Outcome, RunResult
from backupctl.config.schema import Job
from backupctl.errors import (
    BackupctlError,
    Reason,
)
from backupctl.execute import Runner, program
from backupctl.restic import commands as restic
from backupctl.restic import parse, reach, versions
from backupctl.restic import run as restic_run
from backupctl.restic.codes import ResticExit
from backupctl.restic.commands import RESTIC
from backupctl.restic.watch import RetryWatch
from backupctl.state import dumps, queries
from backupctl.state.records import BackupDetails, ms
from backupctl.status import ExitStatus

log = logging.getLogger(__name__)

BackupResult = RunResult[BackupDetails]


def plan(job: Job) -> list[str]:
    """What `backup` would run, secrets masked (for --dry-run)."""
    from backupctl.databases import dump as database_dump
    from backupctl.execute import Secret, display

    masked = Secret("<password>")
    where = job.host.display()
    job, steps = tunnel.plan(job)  # local_url alone: served over SSH for the run
    steps += [f"on {where}: sh -c {cmd!r}" for cmd in job.source.before]
    steps.append(f"on {where}: " + display(restic.backup(
        job.repository.host_url, masked, host=job.name, paths=job.source.paths,
        exclude=job.source.exclude)))
    steps += [f"on {where}: sh -c {cmd!r}" for cmd in job.source.after]
    for database in job.databases:
        steps += database_dump.plan(database, job=job.name, where=where)
    steps.append("on orchestrator: " + display(restic.forget(
        job.repository.orchestrator_url, masked, host=job.name,
        policy=job.generations.policy())))
    return steps


# -- the values the steps pass on ---------------------------------------------------------

@dataclass(frozen=True)
class Hooks:
    """`before` or `after` commands: what ran, and the first failure."""

    steps: tuple[str, ...] = ()
    outcome: Outcome = field(default_factory=Outcome)


@dataclass(frozen=True)
class Pruned:
    """The generation policy applied (or not, while frozen): the file snapshots held."""

    held: tuple[parse.Snapshot, ...]
    steps: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Done:
    """Everything one backup found, whatever happened: the run's result is made of it."""

    outcome: Outcome
    taken: take.Taken
    steps: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    dumps: tuple[databases.DumpResult, ...] = ()
    inspected: inspection.Inspected | None = None
    held: tuple[parse.Snapshot, ...] | None = None
    assessment: gen_check.Assessment | None = None
    suspicious: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()  # the snapshots of this failed run, removed again

    def made(self) -> tuple[str, ...]:
        """Every snapshot this run made: its files' and each database dump's."""
        summary = self.taken.summary
        return ((summary.snapshot_id,) if summary else ()) + tuple(
            d.snapshot_id for d in self.dumps if d.ok and d.snapshot_id)


# -- the steps ----------------------------------------------------------------------------

def hooks(runner: Runner, job: Job, key: str, *, timeout: float) -> Hooks:
    """Run the `before`/`after` commands in order; stop at the first failure."""
    steps: list[str] = []
    for command in getattr(job.source, key):
        result = runner.shell(command, timeout=timeout)
        steps.append(f"{key}: {command!r} exited {result.returncode}")
        if not result.ok:
            return Hooks(tuple(steps), Outcome(
                ExitStatus.FAILED, f"{job.name}: {key} command {command!r} failed "
                f"{result.describe()}", Reason.TIMEOUT if result.timed_out else Reason.HOOK))
    return Hooks(tuple(steps))


def dump_all(ctx: Context, job: Job, runner: Runner) -> tuple[databases.DumpResult, ...]:
    """Dump each of the job's databases into its own snapshot (after the files)."""
    password = repos.primary(job).password
    done = []
    for database in job.databases:
        try:
            dumped = databases.dump_database(runner, database, job=job.name,
                                   repo_url=job.repository.host_url, password=password,
                                   timeout=ctx.timeout, restic_binary=program(runner, RESTIC))
        except BackupctlError as exc:  # the host went away: name the database too
            dumped = databases.DumpResult(job=job.name, name=database.name, kind=database.kind,
                                error=f"{job.name}: database {database.name}: {exc}")
        done.append(dumped)
    return tuple(done)


def dump_steps(dumped: tuple[databases.DumpResult, ...]) -> tuple[tuple[str, ...], str | None]:
    """The steps the dumps add, and their failures, each naming its database."""
    steps, failed = [], []
    for d in dumped:
        if d.ok:
            steps.append(f"database {d.name}: snapshot {(d.snapshot_id or '')[:8]}, "
                         f"{len(d.tables)} table(s), {sum(d.tables.values())} row(s), "
                         f"{d.size} bytes in {d.seconds:.1f}s")
        else:
            failed.append(d.error or f"database {d.name} was not dumped")
            steps.append(f"database {d.name}: FAILED, no snapshot kept")
    return tuple(steps), "; ".join(failed) or None


def prune(ctx: Context, job: Job, frozen: str | None, *, unlock: bool) -> Pruned:
    """`forget --prune` on the orchestrator (its kept snapshots are the generations held);
    while a tripwire froze pruning, only the listing."""
    primary = repos.primary(job)
    steps, warnings = [], []
    kept: list[parse.Snapshot] | None = None
    if frozen:
        warnings.append(f"pruning frozen (ransomware tripwire raised): {frozen}; clear it "
                        f"with backupctl clear {job.name} --operator NAME --reason TEXT")
    else:
        policy = job.generations.policy()
        result, _ = restic_run.run(
            ctx.local, restic.forget(primary.url, primary.password, host=job.name,
                                     policy=policy),
            job=job.name, what="restic forget --prune", timeout=ctx.timeout, unlock=primary)
        steps.append("forget --prune: " + ", ".join(
            f"keep-{k} {v}" for k, v in sorted(policy.items())))
        kept = parse.forget_kept(result.stdout)
    if unlock:
        # A killed restic (SIGKILL, power cut, lost SSH) leaves its lock behind and restic
        # 0.14 never expires it; `restic unlock` removes only stale locks, never live ones.
        ctx.local.run(restic.unlock(primary.url, primary.password), timeout=300,
                      stderr_watch=RetryWatch())
        steps.append("unlock: stale locks of the interrupted run removed")
    if kept is None:
        kept = repos.snapshots(ctx, job, primary)
    return Pruned(tuple(repos.files(kept)), tuple(steps), tuple(warnings))


def assess(ctx: Context, job: Job, pruned: Pruned, *,
           frozen: bool) -> gen_check.Assessment:
    """Did the primary keep every generation it should (issue #5: lost snapshots)?"""
    return gen_check.assess_primary(ctx, job.name, policy=job.generations.policy(),
                                    snapshots=list(pruned.held), pruned=not frozen)


# -- the pipeline -------------------------------------------------------------------------

def discard(ctx: Context, job: Job, done: Done) -> Done:
    """A failed run leaves nothing that looks like a backup (SPEC §15): its snapshots (an
    incomplete one, one without its manifest or its dumps) are removed on the orchestrator,
    so that generations, copies and the next verify never count them; their data goes with
    the next prune. A suspicious run keeps them: they are the evidence, and pruning is
    frozen."""
    made = done.made()
    if done.outcome.status is not ExitStatus.FAILED or done.suspicious or not made:
        return done
    primary = repos.primary(job)
    result, outcome = restic_run.attempt(
        ctx.local, restic.forget_snapshots(primary.url, primary.password, made),
        timeout=ctx.timeout, unlock=primary)
    shown = ", ".join(s[:8] for s in made)
    if outcome is ResticExit.OK:
        return replace(done, removed=made, steps=(
            *done.steps, f"removed snapshot(s) {shown} of the failed run"))
    return replace(done, outcome=done.outcome.combine(ExitStatus.FAILED, (
        f"{job.name}: the failed run's snapshot(s) {shown} could not be removed "
        f"{result.describe()}; remove them with: restic forget {' '.join(made)}")))


def backup(ctx: Context, job: Job) -> BackupResult:
    with job_run(ctx, job, "backup", BackupDetails) as run:
        runner = ctx.runner(job)
        try:
            with tunnel.for_host(job, runner) as reached:  # local_url alone: served over SSH
                done = pipeline(ctx, reached, runner, unlock=bool(run.recovered))
            done = discard(ctx, job, done)
        finally:
            runner.close()
        result = to_result(job, done)
        run.finish(result, extra=lambda conn: _record(conn, ctx, job, result, done,
                                                      run_id=run.run_id))
    return run.result


def pipeline(ctx: Context, job: Job, runner: Runner, *, unlock: bool) -> Done:
    try:  # the host's restic first: one older than 0.14 (or none) runs nothing
        version = versions.require(runner, job=job.name, known=ctx.restic_version if (
            job.host.is_local and program(runner, RESTIC) == program(ctx.local, RESTIC))
            else None)  # a local job's restic is the orchestrator's: asked once, cached
        if (guard := reach.bounded(runner)) is not None:
            guard.know(version)
    except BackupctlError as exc:
        return Done(Outcome().failed(exc), take.Taken())
    before = hooks(runner, job, "before", timeout=ctx.timeout)
    if not before.outcome.ok:
        return _then(ctx, job, runner, before, take.Taken(outcome=before.outcome,
                                                     restic_version=version), unlock=unlock)
    try:  # what the state knows (the sample's memory, the kept listing)
        sampling = inspection.Sampling.of(ctx, job)
        parent = unchanged.parent(ctx, job, version=version)
    except BackupctlError as exc:  # `before` ran: `after` must too
        return _then(ctx, job, runner, before, take.Taken(outcome=Outcome().failed(exc),
                                                          restic_version=version), unlock=unlock)
    early = inspection.hash_early(ctx, job, runner, parent, sampling)
    try:
        taken = replace(take.take_snapshot(ctx, job, runner, parent=parent), restic_version=version)
    finally:
        if early is not None:
            early.close()  # the source as `before` left it is read: `after` may change it
    return _then(ctx, job, runner, before, taken, unlock=unlock, sampling=sampling, early=early)


def _then(ctx: Context, job: Job, runner: Runner, before: Hooks, taken: take.Taken, *,
          unlock: bool, sampling: inspection.Sampling | None = None,
          early: unchanged.Early | None = None) -> Done:
    """`after` (also after a failure), then what follows a snapshot."""
    steps = [*before.steps, *taken.steps]
    outcome = taken.outcome
    if taken.unreachable and job.source.after:
        steps.append("after: not run, the host could not be reached")
    else:
        try:
            after = hooks(runner, job, "after", timeout=ctx.timeout)  # even after a failure
        except BackupctlError as exc:
            after = Hooks(outcome=Outcome().failed(exc))
        steps += after.steps
        outcome = outcome.then(after.outcome)
    done = Done(outcome, taken, tuple(steps))
    if taken.summary is None or not outcome.ok or sampling is None:
        return done
    return _after_snapshot(ctx, job, runner, done, taken.summary, unlock=unlock,
                           sampling=sampling, early=early)


def _after_snapshot(ctx: Context, job: Job, runner: Runner, done: Done,
                    summary: parse.BackupSummary, *, unlock: bool, sampling: inspection.Sampling,
                    early: unchanged.Early | None) -> Done:
    """Dumps (before forget: the policy applies to them too), inspect, prune, assess."""
    dumped = dump_all(ctx, job, runner)
    dumps_done, dump_error = dump_steps(dumped)
    outcome, steps, warnings = done.outcome, [*done.steps, *dumps_done], list[str]()
    inspected = held = assessment = None
    try:
        inspected = inspection.inspect(ctx, job, runner, summary, sampling,
                                       parent=done.taken.parent, early=early)
        if inspected.kept and done.taken.parent is not None:
            steps.append("listing: the kept one of snapshot "
                         f"{done.taken.parent.kept.snapshot_id[:8]} (restic found no file "
                         "new, changed or removed against it; restic ls not run)")
        pruned = prune(ctx, job, inspected.frozen, unlock=unlock)
        steps += pruned.steps
        warnings += pruned.warnings
        held = pruned.held
        assessment = assess(ctx, job, pruned, frozen=bool(inspected.frozen))
        if assessment.finding:
            warnings.append(assessment.finding)
    except BackupctlError as exc:
        outcome = outcome.failed(exc)
    suspicious = inspected.suspicious if inspected else ()
    if suspicious:
        outcome = outcome.combine(ExitStatus.BAD_DATA, (
            f"{job.name}: SUSPICIOUS backup (possible ransomware): " + "; ".join(suspicious)))
    if dump_error is not None:
        outcome = outcome.combine(ExitStatus.FAILED, dump_error)
    return Done(outcome, done.taken, tuple(steps), tuple(warnings), dumped, inspected, held,
                assessment, suspicious)


def to_result(job: Job, done: Done) -> BackupResult:
    summary, output = done.taken.summary, done.taken.output
    inspected = done.inspected
    details = BackupDetails(
        files_new=summary.files_new if summary else 0,
        files_changed=summary.files_changed if summary else 0,
        files_unmodified=summary.files_unmodified if summary else 0,
        bytes_added=summary.data_added if summary else 0,
        total_files=summary.total_files if summary else 0,
        total_bytes=summary.total_bytes if summary else 0,
        duration_ms=(ms(summary.duration) or 0) if summary else 0,
        generations=len(done.held) if done.held is not None else None,
        manifest=inspected.manifest.summary() if inspected and inspected.manifest else None,
        suspicious=list(done.suspicious), unreadable=output.errors if output else [],
        warnings=list(done.warnings), steps=list(done.steps),
        databases=[d.record() for d in done.dumps], removed_snapshots=list(done.removed),
        host_restic_version=done.taken.restic_version)
    return BackupResult(job.name, "backup", done.outcome.status, details,
                        error=done.outcome.error, reason=done.outcome.reason,
                        snapshot_id=summary.snapshot_id if summary else None,
                        snapshot_time=inspected.snapshot_time if inspected else None)


def _record(conn: Connection, ctx: Context, job: Job, result: BackupResult, done: Done, *,
            run_id: int) -> None:
    """The backup's manifests (files and databases), generation observation and tripwire
    flag, with its run; after a success, its listing (the next backup's parent)."""
    inspected = done.inspected if not done.removed else None
    if inspected is not None and inspected.manifest is not None:
        built = inspected.manifest
        queries.insert_manifest(conn, job.name, built.snapshot_id, built.entries)
        if inspected.tree is not None:
            freshness.record_tree(conn, job.name, built.snapshot_id, inspected.tree,
                                  at=ctx.store.now())
        if result.status is ExitStatus.OK and inspected.listing is not None:
            unchanged.keep(conn, job.name, inspected.listing, kept=inspected.kept)
    dumps.insert_database_manifests(conn, [] if done.removed else [
        d.manifest().row(run_id=run_id, files_snapshot_id=result.snapshot_id,
                         created_at=ctx.store.now()) for d in done.dumps if d.ok])
    if done.assessment is not None:
        queries.insert_generations(conn, [done.assessment.row(job.name, ctx.store.now())])
    if done.suspicious:
        queries.raise_flag(conn, job.name, raised_at=ctx.store.now(),
                           reason="; ".join(done.suspicious))
