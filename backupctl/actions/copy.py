"""`backupctl copy`: restic copy from the primary to each of the job's copies, then prove it.

Per copy, each recorded as a run of kind `copy` (repository = copy name) with evidence:
1. offline copy on a local path: is the medium attached, and which one (actions/media.py)?
   Not attached → this copy fails (exit 1) with a clear message; the others continue;
2. `restic copy` (`--repo` the copy, `--from-repo` the primary; both passwords on pipes);
3. `seal: chattr`: `chattr +i` every file except `locks/`;
4. every primary snapshot must now be in the copy (by snapshot time), else the copy failed;
5. the generation policy: `forget --prune` on offline copies (unless a ransomware tripwire
   froze pruning); never on immutable copies (reported instead);
6. the generation assertion (actions/generations.py): lost snapshots → exit 3;
7. immutable copies: the immutability probe (actions/probe.py), a run of kind `probe`;
   not refused → exit 3.
The primary's generations are assessed too (a primary that lost snapshots → exit 3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from backupctl.actions import generations, media, probe, tripwire
from backupctl.actions import repo as repos
from backupctl.actions.context import Context
from backupctl.actions.jobrun import job_session, recorded
from backupctl.actions.results import RunResult, status_fields
from backupctl.config.schema import Copy, Job
from backupctl.errors import BackupctlError, DataError, ResticError
from backupctl.execute import Secret, display
from backupctl.restic import commands as restic
from backupctl.restic import parse
from backupctl.restic import run as restic_run
from backupctl.restic.codes import ResticExit
from backupctl.state import queries
from backupctl.state.records import CopyDetails, GenerationCheck, ProbeDetails
from backupctl.status import ExitStatus

_SAVED = re.compile(rb"^snapshot ([0-9a-f]+) saved$", re.MULTILINE)
CopyRun = RunResult[CopyDetails]
ProbeRun = RunResult[ProbeDetails]


@dataclass(frozen=True)
class CopyOutcome:
    """One copy of one job: its copy run and, for immutable copies, its probe run."""

    copy: CopyRun
    probe: ProbeRun | None = None

    @property
    def name(self) -> str:
        return self.copy.repository

    @property
    def status(self) -> ExitStatus:
        return ExitStatus.worst([self.copy.status, *([self.probe.status] if self.probe else [])])

    @property
    def error(self) -> str | None:
        errors = [r.error for r in (self.copy, self.probe) if r is not None and r.error]
        return "; ".join(errors) or None

    def to_dict(self) -> dict[str, Any]:
        return {**self.copy.to_dict(), **status_fields(self.status), "error": self.error,
                "probe": self.probe.to_dict() if self.probe else None}


@dataclass(frozen=True)
class CopyResult:
    job: str
    status: ExitStatus
    error: str | None = None
    copies: list[CopyOutcome] = field(default_factory=list)
    primary_generations: GenerationCheck | None = None
    frozen: str | None = None
    kind: str = "copy"

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, **status_fields(self.status), "error": self.error,
                "kind": self.kind, "frozen": self.frozen,
                "primary_generations": self.primary_generations.to_json()
                if self.primary_generations else None,
                "copies": [c.to_dict() for c in self.copies]}


def prunable(copy: Copy) -> bool:
    """Only offline copies without a seal are pruned (immutable ones refuse, by design)."""
    return copy.kind == "offline" and copy.seal == "none"


def plan(job: Job) -> list[str]:
    """What `copy` would run, secrets masked (for --dry-run)."""
    masked = Secret("<password>")
    steps = []
    for copy in job.copies:
        url = repos.display_url(copy.url)
        if copy.kind == "offline" and probe.is_local_path(copy.url):
            steps.append(f"{copy.name}: check that {probe.local_path(copy.url)} is attached; "
                         f"read {media.label_file(copy)}")
        steps.append(f"{copy.name}: " + display(restic.copy(
            url, masked, source=repos.display_url(job.repository.orchestrator_url),
            source_password=masked, host=job.name)))
        if copy.seal == "chattr":
            steps.append(f"{copy.name}: chattr +i every file of {url} except locks/")
        if prunable(copy):
            steps.append(f"{copy.name}: " + display(restic.forget(
                url, masked, host=job.name, policy=job.generations.policy())))
        else:
            steps.append(f"{copy.name}: not pruned (immutable); generations reported")
        if copy.kind == "immutable":
            steps.append(f"{copy.name}: immutability probe (write, delete, overwrite a probe "
                         "object; refusal expected)")
    return steps


def copy(ctx: Context, job: Job) -> CopyResult:
    if not job.copies:
        return CopyResult(job.name, ExitStatus.OK, None)
    with job_session(ctx, job, "copy"):
        primary = repos.primary(job)
        source = repos.snapshots(ctx, job, primary)
        frozen = tripwire.frozen_reason(ctx, job)
        checked = generations.assess_primary(ctx, job.name, policy=job.generations.policy(),
                                             snapshots=source, pruned=frozen is None)
        generations.record(ctx, job.name, [checked])
        outcomes = [_one(ctx, job, c, primary, source, frozen) for c in job.copies]
    statuses = [o.status for o in outcomes]
    errors = [o.error for o in outcomes if o.error]
    if checked.lost:
        statuses.append(ExitStatus.BAD_DATA)
        errors.insert(0, f"{job.name}: {checked.finding}")
    return CopyResult(job.name, ExitStatus.worst(statuses), "; ".join(errors) or None,
                      outcomes, checked.record(), frozen)


def _one(ctx: Context, job: Job, target: Copy, primary: repos.Repo,
         source: list[parse.Snapshot], frozen: str | None) -> CopyOutcome:
    with recorded(ctx, job, "copy", CopyDetails, repository=target.name) as run:
        work = _Copy(ctx, job, target, primary, source, frozen)
        status, error = ExitStatus.OK, None
        try:
            work.run()
        except BackupctlError as exc:
            status, error = exc.status, str(exc)
        run.finish(work.result(status, error), extra=work.record_generations)
    if target.kind != "immutable" or run.result.status is ExitStatus.FAILED:
        return CopyOutcome(run.result)
    with recorded(ctx, job, "probe", ProbeDetails, repository=target.name) as probed:
        found = probe.probe(target.name, target.url, runner=ctx.local,
                            sealed=target.seal == "chattr")
        probed.finish(ProbeRun(job.name, "probe", found.status, ProbeDetails(
            ok=found.ok, url=repos.display_url(target.url), attempts=found.attempts),
            error=f"{job.name}: {found.error}" if found.error else None,
            repository=target.name))
    return CopyOutcome(run.result, probed.result)


class _Copy:
    """One copy to one repository; collects steps and warnings as it goes."""

    def __init__(self, ctx: Context, job: Job, target: Copy, primary: repos.Repo,
                 source: list[parse.Snapshot], frozen: str | None) -> None:
        self.ctx, self.job, self.target, self.primary = ctx, job, target, primary
        self.source, self.frozen = source, frozen
        self.steps: list[str] = []
        self.warnings: list[str] = []
        self.medium: media.Medium | None = None
        self.copied = 0
        self.held: list[parse.Snapshot] = []
        self.pruned: str | None = None
        self.assessment: generations.Assessment | None = None

    def run(self) -> None:
        ctx, job, target = self.ctx, self.job, self.target
        if target.kind == "offline" and probe.is_local_path(target.url):
            self.medium = media.attached(ctx, job, target)
            if self.medium.label is None:
                self.warnings.append(f"medium of {target.name} has no label: run backupctl "
                                     f"media init {job.name} {target.name}")
            self.steps.append(f"medium attached: label {self.medium.label}, filesystem "
                              f"UUID {self.medium.fs_uuid}")
        dest = repos.named(job, target.name)
        argv = restic.copy(dest.url, dest.password, source=self.primary.url,
                           source_password=self.primary.password, host=job.name)
        result, outcome = restic_run.run(ctx.local, argv, job=job.name,
                                         what=f"restic copy to {target.name}",
                                         timeout=ctx.timeout,
                                         allow=(ResticExit.NO_REPOSITORY,))
        if outcome is ResticExit.NO_REPOSITORY:
            raise ResticError(f"{job.name}: copy {target.name}: no repository at "
                              f"{repos.display_url(target.url)}; create it with: backupctl "
                              f"init {job.name} --copies (never done implicitly)")
        self.copied = len(_SAVED.findall(result.stdout))
        self.steps.append(f"restic copy: {self.copied} new snapshot(s)")
        if self.medium is not None:
            media.seen(ctx, job, target, self.medium)
        if target.seal == "chattr":
            self._seal()
        self.held = repos.snapshots(ctx, job, dest)
        self._check_complete()
        self._prune(dest)
        pruned = prunable(target) and self.frozen is None
        self.assessment = generations.assess_copy(
            ctx, job.name, target.name, policy=job.generations.policy(), snapshots=self.held,
            copied=[s.time for s in self.source], pruned=pruned,
            medium=self.medium.label if self.medium else None)
        if self.assessment.lost:
            raise DataError(f"{job.name}: {self.assessment.finding}")

    def _seal(self) -> None:
        if not probe.is_local_path(self.target.url):
            raise BackupctlError(f"{self.job.name}: copy {self.target.name}: seal: chattr "
                                 "needs a local directory")
        problem = probe.seal(self.ctx.local, probe.local_path(self.target.url),
                             timeout=self.ctx.timeout)
        if problem:
            raise BackupctlError(f"{self.job.name}: copy {self.target.name}: {problem}")
        self.steps.append("sealed: chattr +i on every file except locks/")

    def _check_complete(self) -> None:
        have = {s.time for s in self.held}
        absent = [s for s in self.source if s.time not in have]
        if absent:
            listed = ", ".join(f"{s.short_id} ({s.time.isoformat()})" for s in absent[:5])
            raise ResticError(f"{self.job.name}: copy {self.target.name} is incomplete after "
                              f"restic copy: {len(absent)} primary snapshot(s) missing: "
                              f"{listed}")

    def _prune(self, dest: repos.Repo) -> None:
        if not prunable(self.target):
            self.pruned = ("not pruned: the copy is immutable; its generations are reported "
                           "instead")
            return
        if self.frozen:
            self.pruned = f"not pruned: ransomware tripwire raised ({self.frozen})"
            self.warnings.append(self.pruned)
            return
        policy = self.job.generations.policy()
        restic_run.run(self.ctx.local, restic.forget(dest.url, dest.password,
                                                     host=self.job.name, policy=policy),
                       job=self.job.name, what=f"restic forget --prune on {self.target.name}",
                       timeout=self.ctx.timeout)
        self.pruned = "forget --prune: " + ", ".join(
            f"keep-{k} {v}" for k, v in sorted(policy.items()))
        self.steps.append(self.pruned)
        self.held = repos.snapshots(self.ctx, self.job, dest)

    def result(self, status: ExitStatus, error: str | None) -> CopyRun:
        """The copy run: the newest primary snapshot is what a successful copy holds."""
        newest = self.source[-1] if self.source and status is ExitStatus.OK else None
        details = CopyDetails(
            copy_name=self.target.name, copy_kind=self.target.kind,
            url=repos.display_url(self.target.url), copied=self.copied,
            snapshots=len(self.held) if self.held else None,
            newest_snapshot_time=self.held[-1].time.isoformat() if self.held else None,
            medium=self.medium.record() if self.medium else None, pruned=self.pruned,
            generations=self.assessment.record() if self.assessment else None,
            source_snapshots=[s.time.isoformat() for s in self.source],
            warnings=self.warnings, steps=self.steps)
        return CopyRun(self.job.name, "copy", status, details, error=error,
                       repository=self.target.name,
                       snapshot_id=newest.id if newest else None,
                       snapshot_time=newest.time.isoformat() if newest else None)

    def record_generations(self, conn: Any) -> None:
        if self.assessment is not None:
            queries.insert_generations(conn, [self.assessment.row(self.job.name,
                                                                  self.ctx.store.now())])
