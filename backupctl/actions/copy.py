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

import json
import re
import urllib.parse
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from backupctl.actions import generations, media, probe, record, tripwire
from backupctl.actions import repo as repos
from backupctl.actions.context import Context
from backupctl.actions.outcome import ResultDict
from backupctl.clock import parse_iso
from backupctl.config.schema import Copy, Job
from backupctl.errors import BackupctlError, DataError, ResticError
from backupctl.execute import Secret, display
from backupctl.log import mask, register_secret
from backupctl.restic import commands as restic
from backupctl.restic import parse
from backupctl.restic.codes import ResticExit
from backupctl.state.locks import job_lock
from backupctl.state.recovery import recover
from backupctl.state.schema import generations as generations_table
from backupctl.status import ExitStatus

_CREDENTIALS = re.compile(r"(://[^/:@]+):([^/@]*)@")
_SAVED = re.compile(rb"^snapshot ([0-9a-f]+) saved$", re.MULTILINE)


@dataclass(frozen=True)
class CopyOutcome(ResultDict):
    """One copy of one job."""

    copy: str
    kind: str
    url: str
    status: ExitStatus
    error: str | None = None
    copied: int = 0  # snapshots copied by this run
    snapshots: int | None = None  # snapshots the copy holds afterwards
    newest_snapshot_time: str | None = None
    medium: dict[str, Any] | None = None
    pruned: str | None = None  # what happened to the generation policy
    generations: dict[str, Any] | None = None
    probe: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    run_id: int | None = None
    probe_run_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["url"] = repos_display(self.url)
        return out


@dataclass(frozen=True)
class CopyResult:
    job: str
    status: ExitStatus
    error: str | None = None
    copies: list[CopyOutcome] = field(default_factory=list)
    primary_generations: dict[str, Any] | None = None
    frozen: str | None = None
    kind: str = "copy"

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "status": self.status.name.lower(),
                "exit_code": int(self.status), "error": self.error, "kind": self.kind,
                "frozen": self.frozen, "primary_generations": self.primary_generations,
                "copies": [c.to_dict() for c in self.copies]}


def repos_display(url: str) -> str:
    """A repository URL without credentials (rest:http://user:pass@host/ → user:***)."""
    return _CREDENTIALS.sub(r"\1:***@", url)


def register_url_secrets(job: Job) -> None:
    """Passwords inside repository URLs are secrets too: mask them in every message."""
    urls = [job.repository.url, job.repository.local_url or "", *(c.url for c in job.copies)]
    for url in urls:
        match = _CREDENTIALS.search(url)
        if match:
            register_secret(match.group(2))
            register_secret(urllib.parse.unquote(match.group(2)))


def prunable(copy: Copy) -> bool:
    """Only offline copies without a seal are pruned (immutable ones refuse, by design)."""
    return copy.kind == "offline" and copy.seal == "none"


def plan(job: Job) -> list[str]:
    """What `copy` would run, secrets masked (for --dry-run)."""
    masked = Secret("<password>")
    steps = []
    for copy in job.copies:
        url = repos_display(copy.url)
        if copy.kind == "offline" and probe.is_local_path(copy.url):
            steps.append(f"{copy.name}: check that {probe.local_path(copy.url)} is attached; "
                         f"read {media.label_file(copy)}")
        steps.append(f"{copy.name}: " + display(restic.copy(
            url, masked, source=repos_display(job.repository.orchestrator_url),
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
    register_url_secrets(job)
    with job_lock(ctx.config.settings.state_dir, job.name):
        recover(ctx.store, state_dir=ctx.config.settings.state_dir,
                scratch_dir=ctx.config.settings.scratch_dir, job=job.name)
        primary = repos.primary(job)
        source = repos.snapshots(ctx, job, primary)
        frozen = tripwire.frozen_reason(ctx, job)
        checked = generations.assess_primary(ctx, job.name, policy=job.generations.policy(),
                                             snapshots=source, pruned=frozen is None)
        generations.record(ctx, job.name, [checked])
        outcomes = [_Copy(ctx, job, c, primary, source, frozen).run() for c in job.copies]
    statuses = [o.status for o in outcomes]
    errors = [o.error for o in outcomes if o.error]
    if checked.lost:
        statuses.append(ExitStatus.BAD_DATA)
        errors.insert(0, f"{job.name}: {checked.finding}")
    status = ExitStatus.worst(statuses)
    return CopyResult(job.name, status, "; ".join(errors) or None, outcomes,
                      checked.to_dict(), frozen)


class _Copy:
    """One copy run; collects steps and warnings as it goes."""

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

    def run(self) -> CopyOutcome:
        ctx, job, target = self.ctx, self.job, self.target
        run_id = ctx.store.start_run(job=job.name, kind="copy", repository=target.name,
                                     operator=ctx.operator)
        status, error = ExitStatus.OK, None
        try:
            self._copy()
        except BackupctlError as exc:
            status, error = exc.status, mask(str(exc))
        except BaseException as exc:  # record the failure now, then let it propagate
            record.aborted(ctx, job, run_id, exc, what=target.name)
            raise
        outcome = CopyOutcome(
            copy=target.name, kind=target.kind, url=target.url, status=status, error=error,
            copied=self.copied, snapshots=len(self.held) if self.held else None,
            newest_snapshot_time=self.held[-1].time.isoformat() if self.held else None,
            medium=self.medium.to_dict() if self.medium else None, pruned=self.pruned,
            generations=self.assessment.to_dict() if self.assessment else None,
            warnings=self.warnings, steps=self.steps, run_id=run_id)
        self._record(run_id, outcome)
        if target.kind == "immutable" and status is not ExitStatus.FAILED:
            outcome = self._probe(outcome)
        return outcome

    def _copy(self) -> None:
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
        result, outcome = repos.run_restic(ctx.local, argv, job=job.name,
                                           what=f"restic copy to {target.name}",
                                           timeout=ctx.timeout, allow=(ResticExit.NO_REPOSITORY,))
        if outcome is ResticExit.NO_REPOSITORY:
            raise ResticError(f"{job.name}: copy {target.name}: no repository at "
                              f"{repos_display(target.url)}; create it with: backupctl init "
                              f"{job.name} --copies (never done implicitly)")
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
        repos.run_restic(self.ctx.local, restic.forget(dest.url, dest.password,
                                                       host=self.job.name, policy=policy),
                         job=self.job.name, what=f"restic forget --prune on {self.target.name}",
                         timeout=self.ctx.timeout)
        self.pruned = "forget --prune: " + ", ".join(
            f"keep-{k} {v}" for k, v in sorted(policy.items()))
        self.steps.append(self.pruned)
        self.held = repos.snapshots(self.ctx, self.job, dest)

    def _newest_source(self) -> parse.Snapshot | None:
        return self.source[-1] if self.source else None

    def _record(self, run_id: int, outcome: CopyOutcome) -> None:
        details = {k: v for k, v in outcome.to_dict().items()
                   if k not in ("run_id", "probe_run_id", "probe")}
        details["source_snapshots"] = [_iso(s.time) for s in self.source]
        newest = self._newest_source()
        extra: record.Extra = []
        if self.assessment is not None:
            extra.append((generations_table,
                          [self.assessment.row(self.job.name, self.ctx.store.now())]))
        copied = newest if outcome.status is ExitStatus.OK else None
        record.finish(self.ctx, self.job, run_id, status=outcome.status, error=outcome.error,
                      details=details, snapshot_id=copied.id if copied else None,
                      snapshot_time=_iso(copied.time) if copied else None, extra=extra)

    def _probe(self, outcome: CopyOutcome) -> CopyOutcome:
        ctx, job, target = self.ctx, self.job, self.target
        run_id = ctx.store.start_run(job=job.name, kind="probe", repository=target.name,
                                     operator=ctx.operator)
        try:
            result = probe.probe(target.name, target.url, runner=ctx.local,
                                 sealed=target.seal == "chattr")
        except BaseException as exc:
            record.aborted(ctx, job, run_id, exc, what=f"probe of {target.name}")
            raise
        error = mask(f"{job.name}: {result.error}") if result.error else None
        details = {**result.details(), "url": repos_display(target.url)}
        record.finish(ctx, job, run_id, status=result.status, error=error, details=details)
        status = ExitStatus.worst([outcome.status, result.status])
        errors = "; ".join(e for e in (outcome.error, error) if e) or None
        return replace(outcome, status=status, error=errors, probe=result.to_dict(),
                       probe_run_id=run_id)


def _iso(moment: datetime) -> str:
    return moment.isoformat()



# -- status -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Overview:
    """What `status` shows about a job's copies, generations and tripwires (state only)."""

    copies: list[dict[str, Any]]
    repositories: list[dict[str, Any]]
    suspicious: list[dict[str, Any]]
    findings: list[str]


def _details(row: Any) -> dict[str, Any]:
    try:
        value = json.loads(row.details or "{}") if row is not None else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def overview(ctx: Context, job: Job) -> Overview:
    now = ctx.clock()
    findings: list[str] = []
    copies = []
    for target in job.copies:
        last = ctx.store.last_run(job.name, "copy", repository=target.name)
        good = ctx.store.last_run(job.name, "copy", repository=target.name, status="success")
        age = (now - parse_iso(good.finished_at)).total_seconds() if good is not None else None
        item: dict[str, Any] = {
            "name": target.name, "kind": target.kind, "url": repos_display(target.url),
            "seal": target.seal, "max_age_seconds": target.max_age,
            "last_copy_at": last.finished_at if last is not None else None,
            "last_copy_status": last.status if last is not None else None,
            "last_copy_error": last.error if last is not None else None,
            "last_success_at": good.finished_at if good is not None else None,
            "age_seconds": age, "too_old": age is None or age > target.max_age,
            "medium": _details(good).get("medium"),
            "media": media.known(ctx, job.name, target.name), "probe": None}
        if good is None:
            findings.append(f"copy {target.name} has never succeeded")
        elif age is not None and age > target.max_age:
            findings.append(f"copy {target.name} is older than its max_age "
                            f"({age / 86400:.1f}d > {target.max_age / 86400:g}d)")
        if last is not None and last.status != "success":
            first = (last.error or "").splitlines()[0] if last.error else ""
            findings.append(f"last copy to {target.name} {last.status}: {first}".rstrip(": "))
        if target.kind == "immutable":
            item["probe"] = _probe_status(ctx, job, target, findings)
        copies.append(item)
    repositories = generations.latest(ctx, job.name)
    findings += [r["finding"] for r in repositories if r["finding"]]
    suspicious = tripwire.raised(ctx, job.name)
    for flag in suspicious:
        findings.append(f"SUSPICIOUS since {flag['raised_at']}: {flag['reason']} (pruning "
                        f"frozen; after checking, run: backupctl clear {job.name} --operator "
                        "NAME --reason TEXT)")
    armed = tripwire.recorded_canaries(ctx, job)
    unarmed = [p for p in job.verify.canaries if p not in armed]
    if unarmed:
        findings.append(f"canaries not armed ({', '.join(unarmed)}): run backupctl canary "
                        f"init {job.name}")
    return Overview(copies, repositories, suspicious, findings)


def _probe_status(ctx: Context, job: Job, target: Copy, findings: list[str]) -> dict[str, Any]:
    row = ctx.store.last_run(job.name, "probe", repository=target.name)
    if row is None or row.status == "running":
        findings.append(f"copy {target.name} is declared immutable but was never probed")
        return {"ok": False, "at": None, "status": None, "error": None}
    ok = row.status == "success" and bool(_details(row).get("ok"))
    if not ok:
        first = (row.error or row.status).splitlines()[0]
        findings.append(f"copy {target.name}: immutability NOT proven: {first}")
    return {"ok": ok, "at": row.finished_at, "status": row.status, "error": row.error}
