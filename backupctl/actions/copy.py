"""`backupctl copy`: restic copy from the primary to each of the job's copies, then prove it.

Per copy, each recorded as a run of kind `copy` (repository = copy name) with evidence:
1. offline copy on a local path: is the medium attached, and which one (actions/media.py)?
   Not attached → this copy fails (exit 1) with a clear message; the others continue;
2. `restic copy` (`--repo` the copy, `--from-repo` the primary; both passwords on pipes);
   S3 Object Lock copies, right after the upload: every object the copy needs keeps its
   lock `min_days` ahead (actions/objectlock/extend.py), recorded in the copy's details;
3. `seal: chattr`: `chattr +i` every file except `locks/`;
4. every primary snapshot (files and database dumps) must now be in the copy (by snapshot
   time), else the copy failed;
5. the generation policy: `forget --prune` on offline copies (unless a ransomware tripwire
   froze pruning); never on immutable copies (reported instead);
6. the generation assertion (actions/generations.py): lost snapshots → exit 3;
7. immutable copies: the immutability probe (actions/probe.py; S3 Object Lock copies:
   actions/objectlock/checks.py), a run of kind `probe`; not refused → exit 3.
The primary's generations are assessed too (a primary that lost snapshots → exit 3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from backupctl.actions import anchors, generations, media, objectlock, probe, tripwire
from backupctl.actions import repo as repos
from backupctl.actions.context import Context
from backupctl.actions.jobrun import job_session, recorded
from backupctl.actions.results import Outcome, RunResult, status_fields
from backupctl.config.schema import Copy, Job
from backupctl.errors import BackupctlError, DataError, ResticError
from backupctl.execute import Secret, display
from backupctl.restic import commands as restic
from backupctl.restic import parse
from backupctl.restic import run as restic_run
from backupctl.restic.codes import ResticExit
from backupctl.state import queries
from backupctl.state.records import CopyDetails, GenerationCheck, ProbeCheck, ProbeDetails
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
        # argv builders show a URL's password as *** (and pass it through a pipe)
        if copy.kind == "offline" and probe.is_local_path(copy.url):
            steps.append(f"{copy.name}: check that {probe.local_path(copy.url)} is attached; "
                         f"read {media.label_file(copy)}")
        steps.append(f"{copy.name}: " + display(restic.copy(
            copy.url, masked, source=job.repository.orchestrator_url,
            source_password=masked, host=job.name)))
        if copy.seal == "chattr":
            steps.append(f"{copy.name}: chattr +i every file of {copy.url} except locks/")
        if prunable(copy):
            steps.append(f"{copy.name}: " + display(restic.forget(
                copy.url, masked, host=job.name, policy=job.generations.policy())))
        else:
            steps.append(f"{copy.name}: not pruned (immutable); generations reported")
        if objectlock.uses_lock(copy):
            steps.append(f"{copy.name}: extend the Object Lock of every object the copy needs "
                         "to min_days ahead (HeadObject, PutObjectRetention)")
        if copy.kind == "immutable" and copy.is_s3:
            steps.append(f"{copy.name}: Object Lock probe (versioning, Object Lock, default "
                         "retention, locks of the objects, delete of a locked version refused)")
        elif copy.kind == "immutable":
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
                                             snapshots=repos.files(source),
                                             pruned=frozen is None)
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
        work = CopyPlan(ctx, job, target, primary, repos.named(job, target.name),
                        tuple(source), frozen, ctx.clock())
        done, outcome = pipeline(work)
        run.finish(to_result(work, done, outcome),
                   extra=lambda conn: _record_generations(conn, work, done))
    if target.kind != "immutable" or run.result.status is ExitStatus.FAILED:
        return CopyOutcome(run.result)
    with recorded(ctx, job, "probe", ProbeDetails, repository=target.name) as probed:
        found, checks = _probe(ctx, target, done)
        probed.finish(ProbeRun(job.name, "probe", found.status, ProbeDetails(
            ok=found.ok, url=repos.display_url(target.url), attempts=found.attempts,
            checks=checks),
            error=f"{job.name}: {found.error}" if found.error else None,
            repository=target.name))
    return CopyOutcome(run.result, probed.result)


def _probe(ctx: Context, target: Copy,
           done: Copied) -> tuple[probe.ProbeResult, list[ProbeCheck]]:
    if objectlock.uses_lock(target):
        try:
            return objectlock.probe(target, done.locks)
        except BackupctlError as exc:
            return probe.ProbeResult(target.name, ExitStatus.FAILED, False,
                                     f"copy {target.name}: immutability could not be proven "
                                     f"({exc})"), []
    return probe.probe(target.name, target.url, runner=ctx.local,
                       sealed=target.seal == "chattr"), []


def _dump_of(snapshot: parse.Snapshot) -> str:
    names = [t.split(":", 1)[1] for t in snapshot.tags if t.startswith(restic.DATABASE_TAG + ":")]
    return f", dump of database {names[0]}" if names else ""


# -- one copy to one repository: steps over frozen values ---------------------------------

@dataclass(frozen=True)
class CopyPlan:
    """What one copy works with. `source` holds every primary snapshot (files and database
    dumps: completeness is checked on all of them); generations count the files only."""

    ctx: Context
    job: Job
    target: Copy
    primary: repos.Repo
    dest: repos.Repo
    source: tuple[parse.Snapshot, ...]
    frozen: str | None
    started: datetime  # an S3 copy's objects are locked at least min_days past it

    @property
    def source_files(self) -> list[parse.Snapshot]:
        return repos.files(list(self.source))


@dataclass(frozen=True)
class Copied:
    """What the copy has done so far (kept when a later step fails)."""

    steps: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    medium: media.Medium | None = None
    copied: int = 0
    held_all: tuple[parse.Snapshot, ...] = ()  # the copy's snapshots, dumps included
    pruned: str | None = None
    assessment: generations.Assessment | None = None
    locks: objectlock.Extended | None = None

    @property
    def held(self) -> list[parse.Snapshot]:
        return repos.files(list(self.held_all))

    def step(self, text: str, **changes: Any) -> Copied:
        return replace(self, steps=(*self.steps, text), **changes)


def attach(plan: CopyPlan, done: Copied) -> Copied:
    """An offline copy on a local path: is its medium attached, and which one?"""
    target, job = plan.target, plan.job
    if target.kind != "offline" or not probe.is_local_path(target.url):
        return done
    medium = media.attached(plan.ctx, job, target)
    warnings = done.warnings if medium.label is not None else (*done.warnings, (
        f"medium of {target.name} has no label: run backupctl media init {job.name} "
        f"{target.name}"))
    return replace(done, warnings=warnings).step(
        f"medium attached: label {medium.label}, filesystem UUID {medium.fs_uuid}",
        medium=medium)


def copy_snapshots(plan: CopyPlan, done: Copied) -> Copied:
    """`restic copy` from the primary (both passwords on pipes)."""
    ctx, job, target, dest = plan.ctx, plan.job, plan.target, plan.dest
    argv = restic.copy(dest.url, dest.password, source=plan.primary.url,
                       source_password=plan.primary.password, host=job.name)
    result, outcome = restic_run.run(ctx.local, argv, job=job.name,
                                     what=f"restic copy to {target.name}", timeout=ctx.timeout,
                                     allow=(ResticExit.NO_REPOSITORY,))
    if outcome is ResticExit.NO_REPOSITORY:
        raise ResticError(f"{job.name}: copy {target.name}: no repository at "
                          f"{repos.display_url(target.url)}; create it with: backupctl init "
                          f"{job.name} --copies (never done implicitly)")
    copied = len(_SAVED.findall(result.stdout))
    if done.medium is not None:
        media.seen(ctx, job, target, done.medium)
    return done.step(f"restic copy: {copied} new snapshot(s)", copied=copied)


def anchor_evidence(plan: CopyPlan, done: Copied) -> Copied:
    """Immutable copies hold the evidence records too (before sealing: sealed with the rest)."""
    if plan.target.kind != "immutable":
        return done
    return done.step(anchors.push(plan.ctx, plan.job, plan.target))


def seal(plan: CopyPlan, done: Copied) -> Copied:
    target, job = plan.target, plan.job
    if target.seal != "chattr":
        return done
    if not probe.is_local_path(target.url):
        raise BackupctlError(f"{job.name}: copy {target.name}: seal: chattr needs a local "
                             "directory")
    problem = probe.seal(plan.ctx.local, probe.local_path(target.url), timeout=plan.ctx.timeout)
    if problem:
        raise BackupctlError(f"{job.name}: copy {target.name}: {problem}")
    return done.step("sealed: chattr +i on every file except locks/")


def check_complete(plan: CopyPlan, done: Copied) -> Copied:
    """Every primary snapshot (by time, dumps included) must now be in the copy."""
    held_all = tuple(repos.snapshots(plan.ctx, plan.job, plan.dest))
    have = {s.time for s in held_all}
    absent = [s for s in plan.source if s.time not in have]
    if absent:
        listed = ", ".join(f"{s.short_id} ({s.time.isoformat()}{_dump_of(s)})"
                           for s in absent[:5])
        raise ResticError(f"{plan.job.name}: copy {plan.target.name} is incomplete after "
                          f"restic copy: {len(absent)} primary snapshot(s) missing: {listed}")
    return replace(done, held_all=held_all)


def prune(plan: CopyPlan, done: Copied) -> Copied:
    """The generation policy on offline copies (never immutable ones; not while frozen)."""
    if not prunable(plan.target):
        return replace(done, pruned="not pruned: the copy is immutable; its generations are "
                                    "reported instead")
    if plan.frozen:
        pruned = f"not pruned: ransomware tripwire raised ({plan.frozen})"
        return replace(done, pruned=pruned, warnings=(*done.warnings, pruned))
    ctx, job, dest = plan.ctx, plan.job, plan.dest
    policy = job.generations.policy()
    result, _ = restic_run.run(ctx.local, restic.forget(dest.url, dest.password, host=job.name,
                                                        policy=policy),
                               job=job.name, what=f"restic forget --prune on {plan.target.name}",
                               timeout=ctx.timeout)
    kept = parse.forget_kept(result.stdout)
    held_all = tuple(kept if kept is not None else repos.snapshots(ctx, job, dest))
    pruned = "forget --prune: " + ", ".join(f"keep-{k} {v}" for k, v in sorted(policy.items()))
    return done.step(pruned, pruned=pruned, held_all=held_all)


def assess(plan: CopyPlan, done: Copied) -> Copied:
    """The generation assertion: snapshots lost from the copy are bad data."""
    assessment = generations.assess_copy(
        plan.ctx, plan.job.name, plan.target.name, policy=plan.job.generations.policy(),
        snapshots=done.held, copied=[s.time for s in plan.source_files],
        pruned=prunable(plan.target) and plan.frozen is None,
        medium=done.medium.label if done.medium else None)
    done = replace(done, assessment=assessment)
    if assessment.lost:
        raise DataError(f"{plan.job.name}: {assessment.finding}")
    return done


def extend_locks(plan: CopyPlan, done: Copied) -> Copied:
    """S3 Object Lock copies: the lock of every object the copy needs reaches min_days."""
    if not objectlock.uses_lock(plan.target):
        return done
    since = objectlock.known(plan.ctx, plan.job.name, plan.target)
    extended = objectlock.extend_locks(plan.target, started=plan.started,
                                       now=plan.ctx.clock(), since=since)
    record = extended.record
    return done.step(f"Object Lock: {record.objects} object(s) needed, {record.asked} read, "
                     f"{record.extended} extended to {record.until} ({record.api_calls} S3 "
                     "request(s))", locks=extended)


# The lock extension right after the upload: what the copy holds stays locked even when a
# later step finds it incomplete or short of generations.
STEPS = (attach, copy_snapshots, anchor_evidence, extend_locks, seal, check_complete, prune,
         assess)


def pipeline(plan: CopyPlan) -> tuple[Copied, Outcome]:
    """Run the steps in order; the first failure stops the copy (what was done is kept)."""
    done = Copied()
    for step in STEPS:
        try:
            done = step(plan, done)
        except BackupctlError as exc:
            return done, Outcome().failed(exc)
    return done, Outcome()


def to_result(plan: CopyPlan, done: Copied, outcome: Outcome) -> CopyRun:
    """The copy run: the newest primary snapshot is what a successful copy holds."""
    source, held = plan.source_files, done.held
    newest = source[-1] if source and outcome.ok else None
    details = CopyDetails(
        copy_name=plan.target.name, copy_kind=plan.target.kind,
        url=repos.display_url(plan.target.url), copied=done.copied,
        snapshots=len(held) if held else None,
        newest_snapshot_time=held[-1].time.isoformat() if held else None,
        medium=done.medium.record() if done.medium else None, pruned=done.pruned,
        generations=done.assessment.record() if done.assessment else None,
        source_snapshots=[s.time.isoformat() for s in source],
        warnings=list(done.warnings), steps=list(done.steps),
        locks=done.locks.record if done.locks else None)
    return CopyRun(plan.job.name, "copy", outcome.status, details, error=outcome.error,
                   reason=outcome.reason,
                   repository=plan.target.name, snapshot_id=newest.id if newest else None,
                   snapshot_time=newest.time.isoformat() if newest else None)


def _record_generations(conn: Any, plan: CopyPlan, done: Copied) -> None:
    if done.assessment is not None:
        queries.insert_generations(conn, [done.assessment.row(plan.job.name,
                                                              plan.ctx.store.now())])
