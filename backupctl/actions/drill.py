"""`backupctl drill`: the admin's step-by-step restore drill, timed and recorded as evidence.

Steps: choose the snapshot → restore the whole snapshot (into a fresh 0700 scratch directory,
or into a real directory the operator confirmed) → count every file and hash the manifest's
files → run the job's application checks (`verify.commands`) → restore each of the job's
`databases` into a throwaway PostgreSQL and compare every table (always in scratch_dir) →
the operator confirms each manual step of the job's runbook (`runbook.steps`). Every step is
timed. The run is recorded with kind `drill`, the operator's name and one evidence record
holding the steps, remarks, the restore time (files and databases) and the result.

The restore, comparison, checks and verdict are the restore-test engine's
(actions/restore_test); the drill adds the conversation, the timing and the real-target
option. The conversation goes through a `DrillUI` so this module never prints or prompts.
Ctrl-C (or SIGTERM) records an aborted drill and wipes scratch data; data restored into a
real target is kept. The drill holds the job's lock from start to end, so a scheduled run
of the job meanwhile exits 75.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from backupctl import fmt
from backupctl.actions import repo as repos
from backupctl.actions.context import Context
from backupctl.actions.jobrun import job_run
from backupctl.actions.restore_test import scratch
from backupctl.actions.restore_test.checks import run_commands
from backupctl.actions.restore_test.compare import compare, count_all
from backupctl.actions.restore_test.databases import describe, prove, require_restore_user
from backupctl.actions.restore_test.pipeline import list_snapshot
from backupctl.actions.restore_test.restore import restore
from backupctl.actions.restore_test.snapshot import References, references, resolve
from backupctl.actions.restore_test.verdict import Findings, verdict
from backupctl.actions.results import RunResult
from backupctl.config.schema import Job
from backupctl.errors import BackupctlError, CommandFailed, UsageError
from backupctl.state.records import DrillDetails, DrillStep
from backupctl.status import ExitStatus
from backupctl.verify.listing import SnapshotRef

PASS, FAIL, SKIPPED = "pass", "fail", "skipped"
DrillResult = RunResult[DrillDetails]


class DrillUI(Protocol):
    """How the drill talks to the operator (a terminal, or nobody under --yes)."""

    def step(self, number: int, title: str) -> None:
        """A new step starts."""

    def info(self, text: str) -> None:
        """Something the operator should see (the snapshot chosen, a result)."""

    def confirm_target(self, target: Path) -> bool:
        """May the drill restore into this real (non-scratch) directory?"""
        ...

    def restoring(self, target: Path, total_bytes: int) -> contextlib.AbstractContextManager[None]:
        """Around the restore (a progress bar on a terminal)."""
        ...

    def manual(self, index: int, total: int, text: str) -> tuple[str, str]:
        """Ask for one manual step: (pass | fail | skipped, remark)."""
        ...

    def remarks(self) -> str:
        """Free-text remarks at the end ("" for none)."""
        ...


def check_target(target: Path) -> None:
    """A real target must be a new or empty directory: a drill never overwrites data."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"--target {target} exists and is not an empty directory; a drill "
                         "restores only into a new or empty directory (nothing was run)")


@dataclass(frozen=True)
class DrillPlan:
    """What a drill works with."""

    ctx: Context
    job: Job
    repo: repos.Repo
    ui: DrillUI
    wanted: str
    target: Path | None
    started: float = field(default_factory=time.monotonic)
    onto: str | None = None  # drill --to: the replacement server (recovery/rehearse.py)


@dataclass(frozen=True)
class Drilled:
    """What the drill has done so far (kept when it fails or is aborted)."""

    steps: tuple[DrillStep, ...] = ()
    findings: Findings = field(default_factory=Findings)
    snap: SnapshotRef | None = None
    refs: References | None = None
    root: Path | None = None
    remarks: str = ""

    def add(self, *steps: DrillStep, findings: Findings | None = None,
            **changes: Any) -> Drilled:
        return replace(self, steps=(*self.steps, *steps),
                       findings=self.findings + findings if findings else self.findings,
                       **changes)


class StepFailed(BaseException):
    """A step raised: `state` holds what was done, with the failed step recorded; the
    step's exception is the cause (a BaseException so that no `except Exception` on the
    way turns Ctrl-C into a result)."""

    def __init__(self, state: Drilled) -> None:
        super().__init__("drill step failed")
        self.state = state


class Partial(BaseException):
    """Raised by a step body that got somewhere before failing (e.g. made the restore's
    directory, which must be wiped): its `state`, the failure as the cause."""

    def __init__(self, state: Drilled) -> None:
        super().__init__("drill step failed part way")
        self.state = state


Body = Callable[[DrillPlan, Drilled], tuple[Drilled, str, str]]  # state, result, detail


def _step(name: str, kind: str, result: str, detail: str, started: float) -> DrillStep:
    return DrillStep.model_validate({
        "name": name, "kind": kind, "result": result, "detail": detail[:2000],
        "duration_ms": round((time.monotonic() - started) * 1000)})


def timed(plan: DrillPlan, state: Drilled, name: str, body: Body, *,
          kind: str = "auto") -> Drilled:
    """One timed step: the body returns the new state, its result and detail; a failure
    is recorded as the step's and raised as StepFailed (from the body's exception)."""
    plan.ui.step(len(state.steps) + 1, name)
    started = time.monotonic()
    try:
        after, result, detail = body(plan, state)
    except BaseException as exc:
        cause, base = exc, state
        if isinstance(exc, Partial) and exc.__cause__ is not None:
            cause, base = exc.__cause__, exc.state
        failed = base.add(_step(name, kind, FAIL, f"{cause.__class__.__name__}: {cause}",
                                started))
        raise StepFailed(failed) from cause
    return after.add(_step(name, kind, result, detail, started))


def choose_snapshot(plan: DrillPlan, state: Drilled) -> tuple[Drilled, str, str]:
    ctx, job, repo = plan.ctx, plan.job, plan.repo
    snap = resolve(ctx.local, ctx.store, repo, job=job.name, wanted=plan.wanted,
                   timeout=ctx.timeout)
    refs = references(ctx.store, snap, job=job.name, repository=repo.name)
    detail = (f"snapshot {snap.short_id} of {snap.time} in {repo.name}; "
              f"{len(refs.refs)} reference hash(es)")
    plan.ui.info(detail)
    return replace(state, snap=snap, refs=refs), PASS, detail


def restore_all(plan: DrillPlan, state: Drilled) -> tuple[Drilled, str, str]:
    ctx, job, repo = plan.ctx, plan.job, plan.repo
    assert state.snap is not None
    snapshot = state.snap.id
    listing = list_snapshot(ctx.local, repo, snapshot, job=job.name, timeout=ctx.timeout)
    root = _target(ctx, job, plan.target, listing.total_bytes)
    state = replace(state, root=root)  # kept (and wiped) even when the restore fails
    try:
        with plan.ui.restoring(root, listing.total_bytes):
            restored = restore(ctx.local, repo, root, job=job.name, snapshot=snapshot,
                               timeout=ctx.timeout)
    except BaseException as exc:
        raise Partial(state) from exc
    counted = count_all(root, listing.files)
    detail = (f"{counted.files} file(s), {counted.bytes} bytes into {root} in "
              f"{restored.ms / 1000:.1f}s")
    plan.ui.info(detail)
    found = Findings(mismatches=restored.problems + counted.mismatches,
                     unverifiable=_unverifiable(state), restore_ms=restored.ms,
                     files_restored=counted.files, bytes_restored=counted.bytes)
    return (replace(state, findings=state.findings + found),
            FAIL if restored.problems or counted.mismatches else PASS, detail)


def _unverifiable(state: Drilled) -> tuple[str, ...]:
    """Names the backup could not hash on the source (restic lists several alike)."""
    summary = state.refs.summary if state.refs is not None else None
    return tuple(summary.unverifiable) if summary is not None else ()


def verify_hashes(plan: DrillPlan, state: Drilled) -> tuple[Drilled, str, str]:
    assert state.root is not None and state.refs is not None
    compared = compare(state.root, state.refs.refs)
    changed = state.refs.changed
    detail = (f"{compared.files} file(s) hashed against the source manifest, "
              f"{len(compared.mismatches)} mismatch(es)"
              + (f", {len(changed)} changed since snapshot" if changed else ""))
    plan.ui.info(detail)
    found = Findings(files_checked=compared.files, bytes_checked=compared.bytes,
                     mismatches=compared.mismatches, changed=changed)
    return (replace(state, findings=state.findings + found),
            FAIL if compared.mismatches or compared.files == 0 else PASS, detail)


def application_checks(plan: DrillPlan, state: Drilled) -> Drilled:
    """`verify.commands` on the restored tree: one recorded step per command."""
    ctx, job = plan.ctx, plan.job
    if not job.verify.commands or state.root is None:
        return state
    plan.ui.step(len(state.steps) + 1, "application checks (verify.commands)")
    checked = run_commands(ctx.local, job.verify.commands, state.root, timeout=ctx.timeout)
    steps = []
    for run in checked.runs:
        result = PASS if run.exit_code == 0 else FAIL
        steps.append(DrillStep.model_validate({
            "name": f"check: {run.command}", "kind": "auto", "result": result,
            "duration_ms": run.duration_ms,
            "detail": f"exit {run.exit_code}: {run.output_tail}"[:2000]}))
        plan.ui.info(f"{run.command}: {result} (exit {run.exit_code})")
    return state.add(*steps, findings=Findings(failures=checked.failures,
                                               commands=checked.runs))


def restore_databases(plan: DrillPlan, state: Drilled) -> Drilled:
    """Each dump into a throwaway server, every table compared: one step per database."""
    ctx, job = plan.ctx, plan.job
    if not job.databases or state.snap is None or state.refs is None:
        return state
    plan.ui.step(len(state.steps) + 1, "databases: restore each dump into a throwaway "
                 "server, compare every table's rows, run the checks")
    results, _ = prove(ctx, job, plan.repo, state.snap, state.refs.manifest_id, mode="full")
    steps = []
    for found in results:
        detail = describe(found)
        steps.append(DrillStep.model_validate({
            "name": f"database {found.name}", "kind": "auto",
            "result": PASS if found.result == "proven" else FAIL,
            "duration_ms": found.timings_ms.get("total", 0), "detail": detail[:2000]}))
        plan.ui.info(detail)
    return state.add(*steps, findings=Findings(databases=results))


def _manual(index: int, total: int, text: str) -> Body:
    def body(plan: DrillPlan, state: Drilled) -> tuple[Drilled, str, str]:
        result, remark = plan.ui.manual(index, total, text)
        return state, result, remark
    return body


def run_steps(plan: DrillPlan) -> Drilled:
    """The drill's steps in order; StepFailed carries what was done when one fails."""
    state = timed(plan, Drilled(), "snapshot", choose_snapshot)
    state = timed(plan, state, "restore", restore_all)
    state = timed(plan, state, "verify hashes", verify_hashes)
    for body in (application_checks, restore_databases):
        try:
            state = body(plan, state)
        except BaseException as exc:
            raise StepFailed(state) from exc
    return manual_steps(plan, state)


def manual_steps(plan: DrillPlan, state: Drilled) -> Drilled:
    """The runbook's manual steps, then the operator's remarks: how every drill ends."""
    total = len(plan.job.runbook.steps)
    for index, text in enumerate(plan.job.runbook.steps, start=1):
        state = timed(plan, state, text, _manual(index, total, text), kind="manual")
    try:
        return replace(state, remarks=plan.ui.remarks())
    except BaseException as exc:
        raise StepFailed(state) from exc


def _target(ctx: Context, job: Job, target: Path | None, needed: int) -> Path:
    if target is None:
        scratch.require_free_space(ctx.config.settings.scratch_dir, needed, job=job.name)
        return scratch.make(ctx.config.settings.scratch_dir, job.name, "drill")
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    free = shutil.disk_usage(target).free
    if free < needed + scratch.FREE_SPACE_MARGIN:
        raise CommandFailed(f"{job.name}: not enough free space in {target}: the snapshot "
                            f"needs {fmt.size(needed)}, {fmt.size(free)} free; nothing was "
                            "restored")
    return target


def _result(plan: DrillPlan, state: Drilled, *, status: ExitStatus, error: str | None,
            outcome: str) -> DrillResult:
    job, target = plan.job, plan.target
    manual = [s for s in state.steps if s.kind == "manual"]
    found = state.findings
    details = DrillDetails(
        result=outcome, operator=plan.ctx.operator,  # type: ignore[arg-type]
        target=plan.onto or (str(state.root) if state.root else None),
        target_kind=("replacement" if plan.onto else "scratch" if target is None
                     else "real"),
        wiped=target is None and state.root is not None and plan.onto is None,
        restore_ms=found.rto_ms,
        rto_seconds=job.verify.rto, files_restored=found.files_restored,
        bytes_restored=found.bytes_restored, files_checked=found.files_checked,
        bytes_checked=found.bytes_checked, mismatches=list(found.mismatches),
        failures=list(found.failures), changed_since_snapshot=list(found.changed),
        unverifiable=list(found.unverifiable), commands=list(found.commands),
        databases=list(found.databases),
        steps=list(state.steps), manual_steps_confirmed=bool(manual) and all(
            s.result == PASS for s in manual),
        remarks=state.remarks, total_ms=round((time.monotonic() - plan.started) * 1000))
    snap = state.snap
    return DrillResult(job.name, "drill", status, details, error=error,
                       repository=plan.repo.name, snapshot_id=snap.id if snap else None,
                       snapshot_time=snap.time if snap else None)


def _judged(plan: DrillPlan, state: Drilled) -> DrillResult:
    failed_manual = [f"manual step {s.name!r} failed" + (f": {s.detail}" if s.detail else "")
                     for s in state.steps if s.kind == "manual" and s.result == FAIL]
    short = state.snap.short_id if state.snap else "?"
    judged = verdict(state.findings, job=plan.job.name, what=f"the drill on snapshot {short}",
                     rto_seconds=plan.job.verify.rto, more_problems=failed_manual)
    return _result(plan, state, status=judged.status, error=judged.error,
                   outcome=PASS if judged.status is ExitStatus.OK else FAIL)


def drill(ctx: Context, job: Job, ui: DrillUI, *, target: Path | None = None,
          snapshot: str = "latest", source: str = repos.PRIMARY) -> DrillResult:
    """Run the drill and record it (also when it fails or is aborted)."""
    repo = repos.named(job, source)
    require_restore_user(ctx, job, mode="full")
    if target is not None:
        check_target(target)
        if not ui.confirm_target(target):
            raise BackupctlError(f"{job.name}: restoring into {target} was not confirmed; "
                                 "nothing was run")
    with job_run(ctx, job, "drill", DrillDetails, repository=repo.name) as run:
        plan = DrillPlan(ctx, job, repo, ui, snapshot, target)
        finish(run, plan, run_steps)
    return run.result


def finish(run: Any, plan: DrillPlan, steps: Callable[[DrillPlan], Drilled]) -> None:
    """Run the steps and record the drill: judged, failed, or aborted (then re-raised);
    scratch data is wiped, a real target's and a replacement server's kept."""
    try:
        state = steps(plan)
    except StepFailed as failed:
        state, exc = failed.state, failed.__cause__
    else:
        exc = None
    target, job = plan.target, plan.job
    if target is None and plan.onto is None and state.root is not None:
        scratch.wipe(state.root)
    if isinstance(exc, BackupctlError):
        run.finish(_result(plan, state, status=exc.status, error=str(exc), outcome=FAIL))
    elif exc is not None:  # Ctrl-C, SIGTERM, a bug: record the aborted drill, re-raise
        where = plan.onto or target
        kept = (f"; data restored so far is kept in {where}" if where is not None
                else "; scratch data was wiped")
        run.finish(_result(plan, state, status=ExitStatus.FAILED,
                           error=f"{job.name}: drill aborted ({exc.__class__.__name__})"
                           f"{kept}", outcome="aborted"))
        raise exc
    else:
        run.finish(_judged(plan, state))
