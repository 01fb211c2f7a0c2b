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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

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
from backupctl.actions.restore_test.snapshot import references, resolve
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


@dataclass
class _Progress:
    """What the drill has done so far (kept when it fails or is aborted)."""

    ui: DrillUI
    steps: list[DrillStep] = field(default_factory=list)
    findings: Findings = field(default_factory=Findings)
    snap: SnapshotRef | None = None
    root: Path | None = None
    remarks: str = ""
    started: float = field(default_factory=time.monotonic)

    @contextlib.contextmanager
    def timed(self, name: str, *, kind: str = "auto") -> Iterator[dict[str, str]]:
        """Time a step; the body sets `result`/`detail`; an exception makes it a failure."""
        self.ui.step(len(self.steps) + 1, name)
        outcome = {"result": PASS, "detail": ""}
        started = time.monotonic()
        try:
            yield outcome
        except BaseException as exc:
            outcome = {"result": FAIL, "detail": f"{exc.__class__.__name__}: {exc}"}
            raise
        finally:
            self.steps.append(DrillStep.model_validate({
                "name": name, "kind": kind, "result": outcome["result"],
                "duration_ms": round((time.monotonic() - started) * 1000),
                "detail": outcome["detail"]}))


def _run(ctx: Context, job: Job, repo: repos.Repo, done: _Progress, *, wanted: str,
         target: Path | None) -> None:
    with done.timed("snapshot") as step:
        done.snap = resolve(ctx.local, ctx.store, repo, job=job.name, wanted=wanted,
                            timeout=ctx.timeout)
        refs = references(ctx.store, done.snap, job=job.name, repository=repo.name)
        step["detail"] = (f"snapshot {done.snap.short_id} of {done.snap.time} in {repo.name}; "
                          f"{len(refs.refs)} reference hash(es)")
        done.ui.info(step["detail"])
    with done.timed("restore") as step:
        listing = list_snapshot(ctx.local, repo, done.snap.id, job=job.name,
                                timeout=ctx.timeout)
        done.root = _target(ctx, job, target, listing.total_bytes)
        with done.ui.restoring(done.root, listing.total_bytes):
            restored = restore(ctx.local, repo, done.root, job=job.name,
                               snapshot=done.snap.id, timeout=ctx.timeout)
        counted = count_all(done.root, listing.files)
        done.findings += Findings(mismatches=restored.problems + counted.mismatches,
                                  unverifiable=counted.unverifiable, restore_ms=restored.ms,
                                  files_restored=counted.files, bytes_restored=counted.bytes)
        step["detail"] = (f"{counted.files} file(s), {counted.bytes} bytes into {done.root} "
                          f"in {restored.ms / 1000:.1f}s")
        if restored.problems or counted.mismatches:
            step["result"] = FAIL
        done.ui.info(step["detail"])
    with done.timed("verify hashes") as step:
        compared = compare(done.root, refs.refs)
        done.findings += Findings(files_checked=compared.files, bytes_checked=compared.bytes,
                                  mismatches=compared.mismatches, changed=refs.changed)
        step["detail"] = (f"{compared.files} file(s) hashed against the source manifest, "
                          f"{len(compared.mismatches)} mismatch(es)"
                          + (f", {len(refs.changed)} changed since snapshot"
                             if refs.changed else ""))
        if compared.mismatches or compared.files == 0:
            step["result"] = FAIL
        done.ui.info(step["detail"])
    _checks(ctx, job, done)
    _databases(ctx, job, repo, done, refs.manifest_id)
    total = len(job.runbook.steps)
    for index, text in enumerate(job.runbook.steps, start=1):
        with done.timed(text, kind="manual") as step:
            step["result"], step["detail"] = done.ui.manual(index, total, text)
    done.remarks = done.ui.remarks()


def _checks(ctx: Context, job: Job, done: _Progress) -> None:
    if not job.verify.commands or done.root is None:
        return
    done.ui.step(len(done.steps) + 1, "application checks (verify.commands)")
    checked = run_commands(ctx.local, job.verify.commands, done.root, timeout=ctx.timeout)
    done.findings += Findings(failures=checked.failures, commands=checked.runs)
    for run in checked.runs:
        result = PASS if run.exit_code == 0 else FAIL
        done.steps.append(DrillStep.model_validate({
            "name": f"check: {run.command}", "kind": "auto", "result": result,
            "duration_ms": run.duration_ms,
            "detail": f"exit {run.exit_code}: {run.output_tail}"[:2000]}))
        done.ui.info(f"{run.command}: {result} (exit {run.exit_code})")


def _databases(ctx: Context, job: Job, repo: repos.Repo, done: _Progress,
               manifest_id: str) -> None:
    if not job.databases or done.snap is None:
        return
    done.ui.step(len(done.steps) + 1, "databases: restore each dump into a throwaway server, "
                 "compare every table's rows, run the checks")
    results, _ = prove(ctx, job, repo, done.snap, manifest_id, mode="full")
    done.findings += Findings(databases=results)
    for found in results:
        detail = describe(found)
        done.steps.append(DrillStep.model_validate({
            "name": f"database {found.name}", "kind": "auto",
            "result": PASS if found.result == "proven" else FAIL,
            "duration_ms": found.timings.get("total", 0), "detail": detail[:2000]}))
        done.ui.info(detail)


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


def _result(ctx: Context, job: Job, repo: repos.Repo, done: _Progress, *,
            target: Path | None, status: ExitStatus, error: str | None,
            outcome: str) -> DrillResult:
    manual = [s for s in done.steps if s.kind == "manual"]
    found = done.findings
    details = DrillDetails(
        result=outcome, operator=ctx.operator,  # type: ignore[arg-type]
        target=str(done.root) if done.root else None,
        target_kind="scratch" if target is None else "real",
        wiped=target is None and done.root is not None, restore_ms=found.rto_ms,
        rto_seconds=job.verify.rto, files_restored=found.files_restored,
        bytes_restored=found.bytes_restored, files_checked=found.files_checked,
        bytes_checked=found.bytes_checked, mismatches=list(found.mismatches),
        failures=list(found.failures), changed_since_snapshot=list(found.changed),
        unverifiable=list(found.unverifiable), commands=list(found.commands),
        databases=[d.record() for d in found.databases],
        steps=done.steps, manual_steps_confirmed=bool(manual) and all(
            s.result == PASS for s in manual),
        remarks=done.remarks, total_ms=round((time.monotonic() - done.started) * 1000))
    snap = done.snap
    return DrillResult(job.name, "drill", status, details, error=error, repository=repo.name,
                       snapshot_id=snap.id if snap else None,
                       snapshot_time=snap.time if snap else None)


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
        done = _Progress(ui)
        try:
            try:
                _run(ctx, job, repo, done, wanted=snapshot, target=target)
            finally:
                if target is None and done.root is not None:
                    scratch.wipe(done.root)
        except BackupctlError as exc:
            run.finish(_result(ctx, job, repo, done, target=target, status=exc.status,
                               error=str(exc), outcome=FAIL))
        except BaseException as exc:  # Ctrl-C, SIGTERM: record the aborted drill, re-raise
            kept = (f"; data restored so far is kept in {target}" if target is not None
                    else "; scratch data was wiped")
            run.finish(_result(ctx, job, repo, done, target=target, status=ExitStatus.FAILED,
                               error=f"{job.name}: drill aborted ({exc.__class__.__name__})"
                               f"{kept}", outcome="aborted"))
            raise
        else:
            failed_manual = [f"manual step {s.name!r} failed" + (f": {s.detail}" if s.detail
                                                                 else "")
                             for s in done.steps if s.kind == "manual" and s.result == FAIL]
            short = done.snap.short_id if done.snap else "?"
            judged = verdict(done.findings, job=job.name, what=f"the drill on snapshot {short}",
                             rto_seconds=job.verify.rto, more_problems=failed_manual)
            run.finish(_result(ctx, job, repo, done, target=target, status=judged.status,
                               error=judged.error,
                               outcome=PASS if judged.status is ExitStatus.OK else FAIL))
    return run.result
