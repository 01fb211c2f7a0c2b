"""`backupctl status`: the state of every job, from the state database only (fast, offline)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from backupctl import fmt
from backupctl.actions import generations, media, tripwire
from backupctl.actions import repo as repos
from backupctl.actions.context import Context
from backupctl.actions.jobrun import recover_if_idle
from backupctl.clock import iso, parse_iso
from backupctl.config import calendar
from backupctl.config.schema import Copy, Job
from backupctl.config.values import format_duration
from backupctl.state import proofs, queries
from backupctl.state.records import BackupDetails, CopyDetails, ProbeDetails, read
from backupctl.state.recovery import RecoveryDetails


@dataclass(frozen=True)
class JobStatus:
    job: str
    description: str | None
    host: str
    last_backup_at: str | None
    last_backup_status: str | None
    last_backup_error: str | None
    last_success_at: str | None
    last_snapshot_id: str | None
    age_seconds: float | None
    generations: int | None
    next_backup: str | None
    findings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    # copies (last copy, age vs max_age, probe, medium), generations per repository, tripwire
    copies: list[dict[str, Any]] = field(default_factory=list)
    repositories: list[dict[str, Any]] = field(default_factory=list)
    suspicious: bool = False
    suspicious_reasons: list[dict[str, Any]] = field(default_factory=list)
    # several orchestrators (actions/fleet.py): who ran the last backup, who runs the job now
    # (a live lease), and the orchestrators whose job file differs from this one's
    last_backup_orchestrator: str | None = None
    running: dict[str, Any] | None = None
    job_file_sha256: str | None = None
    job_file_differs: dict[str, str] = field(default_factory=dict)
    # the newest recovery onto a replacement server (`backupctl restore`), or None
    last_recovery: dict[str, Any] | None = None
    # verify.prove_within: proofs.Standing of the newest snapshot's files, or None
    proof: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def job_status(ctx: Context, job: Job) -> JobStatus:
    recover_if_idle(ctx, job)
    last = ctx.store.query(queries.last_run, job.name, "backup")
    good = ctx.store.query(queries.last_run, job.name, "backup", status="success")
    details = read(BackupDetails, good.details if good is not None else None)
    age = ((ctx.clock() - parse_iso(good.finished_at or good.started_at)).total_seconds()
           if good is not None else None)
    findings = []
    if last is None:
        findings.append("never backed up")
    elif last.status != "success":
        findings.append(f"last backup {last.status}")
    copies = copies_overview(ctx, job)
    findings += copies.findings
    proof = proof_standing(ctx, job)
    if proof is not None and not proof.met:
        findings.append(f"files not proven within verify.prove_within "
                        f"{format_duration(proof.window_seconds)}: {proof.unproven} of "
                        f"{proof.files} unproven")
    nxt = calendar.next_elapse(job.schedule.backup, tz=None)  # as the timer fires
    return JobStatus(
        job=job.name, description=job.description, host=job.host.display(),
        last_backup_at=last.finished_at or last.started_at if last is not None else None,
        last_backup_status=last.status if last is not None else None,
        last_backup_error=last.error if last is not None else None,
        last_success_at=good.finished_at if good is not None else None,
        last_snapshot_id=good.snapshot_id if good is not None else None,
        age_seconds=age, generations=details.generations,
        next_backup=iso(nxt) if nxt else None, findings=findings,
        copies=copies.copies, repositories=copies.repositories,
        suspicious=bool(copies.suspicious), suspicious_reasons=copies.suspicious,
        last_backup_orchestrator=last.orchestrator if last is not None else None,
        last_recovery=last_recovery(ctx, job),
        proof=proof.to_json() if proof is not None else None)


def proof_standing(ctx: Context, job: Job) -> proofs.Standing | None:
    """Proof freshness of the newest snapshot (None: no prove_within, or no backup yet)."""
    if job.verify.prove_within is None:
        return None
    fresh = ctx.store.query(proofs.freshness, [job.name]).get(job.name)
    return proofs.standing(fresh, window=job.verify.prove_within, now=ctx.clock()) \
        if fresh is not None else None


def last_recovery(ctx: Context, job: Job) -> dict[str, Any] | None:
    """The newest finished recovery: when, where to, from which snapshot, how long, result."""
    row = ctx.store.query(queries.last_run, job.name, "recovery", finished=True)
    if row is None:
        return None
    details = read(RecoveryDetails, row.details)
    return {"at": row.finished_at, "status": row.status, "operator": row.operator,
            "target": details.target or None, "snapshot_id": row.snapshot_id,
            "restore_ms": details.restore_ms, "files": details.files,
            "mismatches": len(details.mismatches), "error": row.error}


@dataclass(frozen=True)
class Overview:
    """What `status` shows about a job's copies, generations and tripwires (state only)."""

    copies: list[dict[str, Any]]
    repositories: list[dict[str, Any]]
    suspicious: list[dict[str, Any]]
    findings: list[str]


def copies_overview(ctx: Context, job: Job) -> Overview:
    now = ctx.clock()
    findings: list[str] = []
    copies = []
    for target in job.copies:
        last = ctx.store.query(queries.last_run, job.name, "copy", repository=target.name)
        good = ctx.store.query(queries.last_run, job.name, "copy", repository=target.name,
                               status="success")
        age = ((now - parse_iso(good.finished_at or good.started_at)).total_seconds()
               if good is not None else None)
        item: dict[str, Any] = {
            "name": target.name, "kind": target.kind, "url": repos.display_url(target.url),
            "seal": target.seal, "max_age_seconds": target.max_age,
            "last_copy_at": last.finished_at if last is not None else None,
            "last_copy_status": last.status if last is not None else None,
            "last_copy_error": last.error if last is not None else None,
            "last_success_at": good.finished_at if good is not None else None,
            "age_seconds": age, "too_old": age is None or age > target.max_age,
            "medium": _medium(good),
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
    suspicious = [f.to_json() for f in tripwire.raised(ctx, job.name)]
    for flag in suspicious:
        since = fmt.local(flag["raised_at"], ctx.config.settings.tz)
        findings.append(f"SUSPICIOUS since {since}: {flag['reason']} (pruning "
                        f"frozen; after checking, run: backupctl clear {job.name} --operator "
                        "NAME --reason TEXT)")
    armed = tripwire.recorded_canaries(ctx, job)
    unarmed = [p for p in job.verify.canaries if p not in armed]
    if unarmed:
        findings.append(f"canaries not armed ({', '.join(unarmed)}): run backupctl canary "
                        f"init {job.name}")
    return Overview(copies, repositories, suspicious, findings)


def _probe_status(ctx: Context, job: Job, target: Copy, findings: list[str]) -> dict[str, Any]:
    row = ctx.store.query(queries.last_run, job.name, "probe", repository=target.name)
    if row is None or row.status == "running":
        findings.append(f"copy {target.name} is declared immutable but was never probed")
        return {"ok": False, "at": None, "status": None, "error": None}
    ok = row.status == "success" and read(ProbeDetails, row.details).ok
    if not ok:
        first = (row.error or row.status).splitlines()[0]
        findings.append(f"copy {target.name}: immutability NOT proven: {first}")
    return {"ok": ok, "at": row.finished_at, "status": row.status, "error": row.error}


def _medium(row: queries.RunRow | None) -> dict[str, Any] | None:
    found = read(CopyDetails, row.details).medium if row is not None else None
    return found.to_json() if found is not None else None


def status(ctx: Context) -> list[JobStatus]:
    return [job_status(ctx, jf.job) for _, jf in sorted(ctx.config.jobs.items())]
