"""`backupctl restore JOB --to TARGET`: the worst day, a pipeline of small steps.

prepare (plan.py: refusals, exit 2, before anything runs) → under the job's lock and a
recorded run of kind `recovery`: reach the repository from the target (served over the SSH
connection when it lies on the orchestrator: actions.tunnel, `--no-lock`, nothing written)
→ `restic restore` on the target, the password through a pipe → owners by name → the proof
(every node's type, size, mode, owner and group; the SHA-256 of every referenced file) →
verdict. `restore_ms` is the time from the start of the command to a proven target: the
real RTO. SIGTERM closes the tunnel and records the run `interrupted`; restored data stays.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Protocol

from backupctl.actions.context import Context
from backupctl.actions.jobrun import job_run
from backupctl.actions.recovery import databases as ontos
from backupctl.actions.recovery import proof
from backupctl.actions.recovery.plan import Prepared
from backupctl.actions.recovery.progress import polled
from backupctl.actions.repo import PRIMARY
from backupctl.actions.restore_test.databases import describe
from backupctl.actions.restore_test.verdict import Findings, verdict
from backupctl.actions.results import RunResult
from backupctl.actions.tunnel import serve
from backupctl.config.schema import Job
from backupctl.databases.onto import restored_name
from backupctl.errors import ResticError
from backupctl.execute import Arg, Runner, StdoutSink
from backupctl.restic import commands
from backupctl.restic import run as restic
from backupctl.restic.codes import ResticExit
from backupctl.state.records import Mismatch
from backupctl.state.recovery import RecoveryDetails
from backupctl.status import ExitStatus

RecoveryResult = RunResult[RecoveryDetails]


class RecoveryUI(Protocol):
    """How the recovery shows what it does (a terminal, or the log under systemd/cron)."""

    def info(self, text: str) -> None: ...

    def restoring(self, total_bytes: int, total_files: int,
                  ) -> contextlib.AbstractContextManager[StdoutSink | None]:
        """Around the restore; yields where restic's --json status lines go (or None)."""
        ...


def between_restore_and_proof(runner: Runner, prepared: Prepared) -> None:
    """Nothing: the one place a test changes the target between restore and proof."""


@dataclass(frozen=True)
class Recovery:
    """What the recovery has done so far (kept when a step fails)."""

    findings: Findings = field(default_factory=Findings)
    owners_mapped: int = 0
    timings_ms: dict[str, int] = field(default_factory=dict)
    # the owners pass's look at the tree when it changed nothing: the proof's too (one stat
    # pass over every node saved); None after a chown, so the proof looks again
    unchanged: proof.Stats | None = None

    def timed(self, name: str, started: float, **changes: object) -> Recovery:
        spent = round((time.monotonic() - started) * 1000)
        return replace(self, timings_ms={**self.timings_ms, name: spent},
                       **changes)  # type: ignore[arg-type]


def restore_argv(prepared: Prepared, url: str) -> list[Arg]:
    """restic on the target: the repository (served URL or its own) and the password through
    pipes, no cache and no lock (nothing is written to the repository or the target's
    cache), `--json` status lines for the progress bar (restic >= 0.16)."""
    argv: list[Arg] = [*commands.base(url, prepared.repo.password, cache=False), "--no-lock",
                       "--json", "restore", "--target", prepared.target.path]
    for path in prepared.paths:
        argv += ["--include", commands.escape_glob(path)]
    return [*argv, "--", prepared.snap.id]


_IGNORED = re.compile(r"^ignoring error for (.*): (.*)$", re.MULTILINE)


def run_restore(runner: Runner, prepared: Prepared, url: str, *, job: str,
                timeout: float, sink: StdoutSink | None) -> tuple[Mismatch, ...]:
    """`restic restore` on the target; files restic could not restore are mismatches."""
    result, outcome = restic.attempt(runner, restore_argv(prepared, url), timeout=timeout,
                                     stdout_sink=sink or (lambda _: None))
    if outcome is ResticExit.OK:
        return ()
    errors = _IGNORED.findall(result.stderr)
    if outcome is ResticExit.FATAL and errors and not result.timed_out:
        return tuple(Mismatch(path=prepared.target.root(path), got=message,
                              reason="restore error") for path, message in errors)
    raise ResticError(f"{job}: restic restore on {prepared.target.display()} failed "
                      f"({outcome.value}) {result.describe()}")


@contextlib.contextmanager
def reaching(runner: Runner, job: Job, prepared: Prepared) -> Iterator[str]:
    """The repository URL restic on the target uses: the orchestrator's for a local target;
    served over the SSH connection for the block when it lies on the orchestrator (or is an
    S3 copy: its keys stay here); else the job's `repository.url` (a REST server or bucket
    the target reaches itself), or a copy's `url`."""
    if prepared.target.is_local:
        yield prepared.repo.url
    elif prepared.served:
        with serve(runner, prepared.repo.url, job=job.name, early=prepared.early) as served:
            yield served.url
    elif prepared.repo.name != PRIMARY:
        yield prepared.repo.url
    else:
        yield job.repository.url or prepared.repo.url


def restore_step(ctx: Context, job: Job, prepared: Prepared, runner: Runner,
                 ui: RecoveryUI, state: Recovery) -> Recovery:
    started = time.monotonic()
    tree = prepared.tree
    with reaching(runner, job, prepared) as url, \
            ui.restoring(tree.bytes, len(tree.files)) as shown, \
            polled(runner, prepared.target.path, shown) as sink:
        problems = run_restore(runner, prepared, url, job=job.name, timeout=ctx.timeout,
                               sink=sink)
    ui.info(f"restored {len(tree.files)} file(s), {tree.bytes} bytes of snapshot "
            f"{prepared.snap.short_id} onto {prepared.target.display()}")
    found = Findings(mismatches=problems, files_restored=len(tree.files),
                     bytes_restored=tree.bytes)
    return state.timed("restore", started, findings=state.findings + found)


def owners_step(ctx: Context, job: Job, prepared: Prepared, runner: Runner,
                ui: RecoveryUI, state: Recovery) -> Recovery:
    started = time.monotonic()
    stats = proof.stat_all(runner, prepared.target, prepared.tree, job=job.name,
                           timeout=ctx.timeout)
    fix = proof.owner_fixes(prepared.target, prepared.tree, stats)
    proof.apply(runner, fix, job=job.name, timeout=ctx.timeout)
    if fix.count:
        ui.info(f"{fix.count} node(s) given their owner by name (the uid or gid differs on "
                "the target)")
    return state.timed("owners", started, owners_mapped=fix.count,
                       unchanged=None if fix.count or fix.chmod else stats)


def proof_step(ctx: Context, job: Job, prepared: Prepared, runner: Runner,
               ui: RecoveryUI, state: Recovery) -> Recovery:
    started = time.monotonic()
    target, tree = prepared.target, prepared.tree
    stats = state.unchanged or proof.stat_all(runner, target, tree, job=job.name,
                                              timeout=ctx.timeout)
    differences = proof.compare(target, tree, stats)
    hashed = proof.hash_references(runner, target, prepared.refs, paths=prepared.paths,
                                   job=job.name, timeout=ctx.timeout)
    unverifiable = proof.unverifiable(tree, stats)
    ui.info(f"proof: {len(tree.nodes)} node(s) compared, {hashed.files} file(s) hashed "
            f"against the source manifest, {len(differences) + len(hashed.mismatches)} "
            "difference(s)")
    found = Findings(files_checked=hashed.files, bytes_checked=hashed.bytes,
                     mismatches=(*differences, *hashed.mismatches),
                     changed=prepared.refs.changed, unverifiable=unverifiable)
    return state.timed("proof", started, findings=state.findings + found)


def databases_step(ctx: Context, job: Job, prepared: Prepared, runner: Runner,
                   ui: RecoveryUI, state: Recovery) -> Recovery:
    """--databases: each dump into a new `<name>_restored` on the target, proven there."""
    if prepared.databases is None:
        return state
    started = time.monotonic()
    with reaching(runner, job, prepared) as url:
        proven = tuple(ontos.restore_all(ctx, runner, prepared.databases, repo=prepared.repo,
                                         url=url))
    for found in proven:
        ui.info(f"{describe(found)} (as {restored_name(found.name)})")
    return state.timed("databases", started,
                       findings=state.findings + Findings(databases=proven))


def details(ctx: Context, job: Job, prepared: Prepared, state: Recovery, *,
            result: str) -> RecoveryDetails:
    found, request, tree = state.findings, prepared.request, prepared.tree
    elapsed = round((time.monotonic() - request.started) * 1000)
    return RecoveryDetails(
        result=result, operator=ctx.operator,  # type: ignore[arg-type]
        target=prepared.target.display(), selected=request.snapshot, paths=prepared.paths,
        overwrite=request.overwrite, served=prepared.served, files=len(tree.files),
        bytes=tree.bytes, directories=tree.count("dir"), symlinks=tree.count("symlink"),
        owners_mapped=state.owners_mapped, timings_ms=state.timings_ms,
        restore_ms=elapsed, rto_seconds=job.verify.rto, files_checked=found.files_checked,
        bytes_checked=found.bytes_checked, mismatches=list(found.mismatches),
        failures=list(found.failures), changed_since_snapshot=list(found.changed),
        unverifiable=list(found.unverifiable), files_restored=found.files_restored,
        bytes_restored=found.bytes_restored, databases=list(found.databases),
        target_dsn=prepared.databases.dsn if prepared.databases else None,
        target_restic_version=prepared.target_restic_version)


def judged(ctx: Context, job: Job, prepared: Prepared, state: Recovery) -> RecoveryResult:
    """Exit 3 naming each difference; exit 1 when nothing could be compared. The RTO is
    recorded (rto_exceeded), never a reason to call restored data bad."""
    what = (f"the recovery of snapshot {prepared.snap.short_id} onto "
            f"{prepared.target.display()}")
    verdict_ = verdict(state.findings, job=job.name, what=what, rto_seconds=None)
    outcome = "pass" if verdict_.status is ExitStatus.OK else "fail"
    return RecoveryResult(job.name, "recovery", verdict_.status,
                          details(ctx, job, prepared, state, result=outcome),
                          error=verdict_.error, repository=prepared.repo.name,
                          snapshot_id=prepared.snap.id, snapshot_time=prepared.snap.time)


def recover(ctx: Context, job: Job, prepared: Prepared, runner: Runner,
            ui: RecoveryUI) -> RecoveryResult:
    """Run and record the recovery (also when it fails or is stopped)."""
    with job_run(ctx, job, "recovery", RecoveryDetails,
                 repository=prepared.repo.name) as run:
        state = restore_step(ctx, job, prepared, runner, ui, Recovery())
        state = owners_step(ctx, job, prepared, runner, ui, state)
        between_restore_and_proof(runner, prepared)
        state = proof_step(ctx, job, prepared, runner, ui, state)
        state = databases_step(ctx, job, prepared, runner, ui, state)
        run.finish(judged(ctx, job, prepared, state))
    return run.result
