"""`backupctl drill`: the admin's step-by-step restore drill, timed and recorded as evidence.

Steps: choose the snapshot → restore the whole snapshot (into a fresh 0700 scratch directory,
or into a real directory the operator confirmed) → count every file and hash the manifest's
files → run the job's application checks (`verify.commands`) → the operator confirms each
manual step of the job's runbook (`runbook.steps`). Every step is timed. The run is recorded
with kind `drill`, the operator's name and one evidence record whose details hold the steps,
remarks, restore_seconds and the result.

The restore and verification engine is the one of `verify --mode full` (actions/verify.py);
the drill adds the conversation, the timing and the real-target option. The conversation goes
through a `DrillUI` so this module never prints or prompts itself. Ctrl-C (or SIGTERM)
records an aborted drill and wipes scratch data; data restored into a real target is kept.
The drill holds the job's lock from start to end, so a scheduled run of the job meanwhile
exits 75.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from backupctl.actions import record
from backupctl.actions import repo as repos
from backupctl.actions.context import Context
from backupctl.actions.outcome import ResultDict
from backupctl.actions.verify import FREE_SPACE_MARGIN, Mismatch, Verifier
from backupctl.config.schema import Job
from backupctl.errors import BackupctlError, CommandFailed, UsageError
from backupctl.state.locks import job_lock
from backupctl.state.recovery import recover
from backupctl.status import ExitStatus
from backupctl.verify.listing import SnapshotRef

PASS, FAIL, SKIPPED = "pass", "fail", "skipped"


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


@dataclass(frozen=True)
class DrillStep:
    name: str
    kind: str  # auto | manual
    result: str  # pass | fail | skipped
    seconds: float
    detail: str = ""


@dataclass(frozen=True)
class DrillResult(ResultDict):
    job: str
    status: ExitStatus
    error: str | None = None
    result: str = FAIL  # pass | fail | aborted
    operator: str = ""
    repository: str = repos.PRIMARY
    snapshot_id: str | None = None
    snapshot_time: str | None = None
    target: str | None = None
    target_kind: str = "scratch"  # scratch (wiped afterwards) | real (kept)
    wiped: bool = False
    restore_seconds: float | None = None
    rto_seconds: int | None = None
    files_restored: int | None = None
    bytes_restored: int | None = None
    files_checked: int = 0
    bytes_checked: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    steps: list[DrillStep] = field(default_factory=list)
    manual_steps_confirmed: bool = False
    remarks: str = ""
    total_seconds: float = 0.0
    run_id: int | None = None
    kind: str = "drill"


def check_target(target: Path) -> None:
    """A real target must be a new or empty directory: a drill never overwrites data."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"--target {target} exists and is not an empty directory; a drill "
                         "restores only into a new or empty directory (nothing was run)")


class _Drill:
    """One drill; collects timed steps as it goes and always wipes scratch data."""

    def __init__(self, ctx: Context, job: Job, repo: repos.Repo, ui: DrillUI, *,
                 run_id: int, target: Path | None) -> None:
        self.ctx, self.job, self.ui, self.run_id = ctx, job, ui, run_id
        self.engine = Verifier(ctx, job, repo, mode="drill", run_id=run_id)
        self.real_target = target
        self.steps: list[DrillStep] = []
        self.announced = 0
        self.snap: SnapshotRef | None = None
        self.root: Path | None = None
        self.restore_seconds: float | None = None
        self.files_restored: int | None = None
        self.bytes_restored: int | None = None
        self.files = self.size = 0
        self.manual_confirmed = True
        self.remarks = ""
        self.started = time.monotonic()

    @contextlib.contextmanager
    def timed(self, name: str, *, kind: str = "auto") -> Iterator[dict[str, str]]:
        """Time a step; the body sets `result`/`detail`; an exception makes it a failure."""
        self.announced += 1
        self.ui.step(self.announced, name)
        outcome = {"result": PASS, "detail": ""}
        started = time.monotonic()
        try:
            yield outcome
        except BaseException as exc:
            outcome = {"result": FAIL, "detail": f"{exc.__class__.__name__}: {exc}"}
            raise
        finally:
            self.steps.append(DrillStep(name, kind, outcome["result"],
                                        round(time.monotonic() - started, 3),
                                        outcome["detail"]))

    def run(self, wanted: str) -> None:
        engine = self.engine
        with self.timed("snapshot") as step:
            self.snap = engine.resolve(wanted)
            refs, changed, _ = engine.references(self.snap)
            step["detail"] = (f"snapshot {self.snap.short_id} of {self.snap.time} in "
                              f"{engine.repo.name}; {len(refs)} reference hash(es)")
            self.ui.info(step["detail"])
        with self.timed("restore") as step:
            listing = engine.list_snapshot(self.snap)
            self.root = self.target(listing.total_bytes)
            with self.ui.restoring(self.root, listing.total_bytes):
                self.restore_seconds = engine.restore(self.snap, self.root, None)
            self.files_restored, self.bytes_restored = engine.count_all(self.root, listing)
            step["detail"] = (f"{self.files_restored} file(s), {self.bytes_restored} bytes "
                              f"into {self.root} in {self.restore_seconds:.1f}s")
            if engine.mismatches:
                step["result"] = FAIL
            self.ui.info(step["detail"])
        with self.timed("verify hashes") as step:
            before = len(engine.mismatches)
            self.files, self.size = engine.compare(self.root, refs)
            bad = len(engine.mismatches) - before
            step["detail"] = (f"{self.files} file(s) hashed against the source manifest, "
                              f"{bad} mismatch(es)"
                              + (f", {len(changed)} changed since snapshot" if changed else ""))
            if bad or self.files == 0:
                step["result"] = FAIL
            self.ui.info(step["detail"])
        if self.job.verify.commands:
            self.announced += 1
            self.ui.step(self.announced, "application checks (verify.commands)")
            engine.run_commands(self.root)
            for done in engine.commands:  # each timed by the engine
                result = PASS if done["exit_code"] == 0 else FAIL
                self.steps.append(DrillStep(
                    f"check: {done['command']}", "auto", result, done["seconds"],
                    f"exit {done['exit_code']}: {done['output_tail']}"[:2000]))
                self.ui.info(f"{done['command']}: {result} (exit {done['exit_code']})")
        total = len(self.job.runbook.steps)
        for index, text in enumerate(self.job.runbook.steps, start=1):
            with self.timed(text, kind="manual") as step:
                result, remark = self.ui.manual(index, total, text)
                step["result"], step["detail"] = result, remark
                if result != PASS:
                    self.manual_confirmed = False
        self.remarks = self.ui.remarks()

    def target(self, needed: int) -> Path:
        if self.real_target is None:
            self.engine.free_space(needed)
            return self.engine.scratch_dir()
        target = self.real_target
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        free = shutil.disk_usage(target).free
        if free < needed + FREE_SPACE_MARGIN:
            raise CommandFailed(f"{self.job.name}: not enough free space in {target}: the "
                                f"snapshot needs {needed} bytes, {free} free; nothing was "
                                "restored")
        return target

    def result(self, *, status: ExitStatus, error: str | None, verdict: str) -> DrillResult:
        snap = self.snap
        return DrillResult(
            job=self.job.name, status=status, error=error, result=verdict,
            operator=self.ctx.operator, repository=self.engine.repo.name,
            snapshot_id=snap.id if snap else None, snapshot_time=snap.time if snap else None,
            target=str(self.root) if self.root else None,
            target_kind="scratch" if self.real_target is None else "real",
            wiped=self.real_target is None and self.root is not None,
            restore_seconds=round(self.restore_seconds, 3)
            if self.restore_seconds is not None else None,
            rto_seconds=self.job.verify.rto, files_restored=self.files_restored,
            bytes_restored=self.bytes_restored, files_checked=self.files,
            bytes_checked=self.size, mismatches=list(self.engine.mismatches),
            failures=list(self.engine.failures), commands=list(self.engine.commands),
            steps=list(self.steps),
            manual_steps_confirmed=bool(self.job.runbook.steps) and self.manual_confirmed,
            remarks=self.remarks, total_seconds=round(time.monotonic() - self.started, 3),
            run_id=self.run_id)

    def verdict(self) -> tuple[ExitStatus, str | None]:
        """Bad data (3) when anything restored, hashed or checked was wrong."""
        problems = [f"{m.path} ({m.reason})" for m in self.engine.mismatches]
        problems += list(self.engine.failures)
        rto = self.job.verify.rto
        if rto is not None and self.restore_seconds is not None and self.restore_seconds > rto:
            problems.append(f"restore took {self.restore_seconds:.1f}s, more than the RTO of "
                            f"{rto}s")
        problems += [f"manual step {s.name!r} failed" + (f": {s.detail}" if s.detail else "")
                     for s in self.steps if s.kind == "manual" and s.result == FAIL]
        if problems:
            snap = self.snap.short_id if self.snap else "?"
            return ExitStatus.BAD_DATA, (f"{self.job.name}: drill FAILED on snapshot {snap}: "
                                         + "; ".join(problems))
        if self.files == 0:
            return ExitStatus.FAILED, (f"{self.job.name}: nothing could be compared with the "
                                       "source manifest; the data is not proven")
        return ExitStatus.OK, None


def drill(ctx: Context, job: Job, ui: DrillUI, *, target: Path | None = None,
          snapshot: str = "latest", source: str = repos.PRIMARY) -> DrillResult:
    """Run the drill and record it (also when it fails or is aborted)."""
    repo = repos.named(job, source)
    if target is not None:
        check_target(target)
        if not ui.confirm_target(target):
            raise BackupctlError(f"{job.name}: restoring into {target} was not confirmed; "
                                 "nothing was run")
    settings = ctx.config.settings
    with job_lock(settings.state_dir, job.name):
        recover(ctx.store, state_dir=settings.state_dir, scratch_dir=settings.scratch_dir,
                job=job.name)
        run_id = ctx.store.start_run(job=job.name, kind="drill", repository=repo.name,
                                     operator=ctx.operator)
        run = _Drill(ctx, job, repo, ui, run_id=run_id, target=target)
        try:
            try:
                run.run(snapshot)
            finally:
                run.engine.wipe()
        except BackupctlError as exc:
            result = run.result(status=exc.status, error=str(exc), verdict=FAIL)
        except BaseException as exc:  # Ctrl-C, SIGTERM: record the aborted drill, re-raise
            kept = (f"; data restored so far is kept in {target}" if target is not None
                    else "; scratch data was wiped")
            result = run.result(status=ExitStatus.FAILED, verdict="aborted",
                                error=f"{job.name}: drill aborted ({exc.__class__.__name__})"
                                f"{kept}")
            record.finish_result(ctx, job, result)
            raise
        else:
            status, error = run.verdict()
            result = run.result(status=status, error=error,
                                verdict=PASS if status is ExitStatus.OK else FAIL)
        record.finish_result(ctx, job, result)
        return result

