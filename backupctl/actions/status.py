"""`backupctl status`: the state of every job, from the state database only (fast, offline)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from backupctl.actions.context import Context
from backupctl.actions.copy import overview as copy_overview
from backupctl.clock import iso, parse_iso
from backupctl.config import calendar
from backupctl.config.schema import Job
from backupctl.state.recovery import recover_if_idle


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def job_status(ctx: Context, job: Job) -> JobStatus:
    settings = ctx.config.settings
    recover_if_idle(ctx.store, state_dir=settings.state_dir, scratch_dir=settings.scratch_dir,
                    job=job.name)
    last = ctx.store.last_run(job.name, "backup")
    good = ctx.store.last_run(job.name, "backup", status="success")
    details = json.loads(good.details) if good is not None else {}
    age = ((ctx.clock() - parse_iso(good.finished_at)).total_seconds()
           if good is not None else None)
    findings = []
    if last is None:
        findings.append("never backed up")
    elif last.status != "success":
        findings.append(f"last backup {last.status}")
    copies = copy_overview(ctx, job)
    findings += copies.findings
    nxt = calendar.next_elapse(job.schedule.backup)
    return JobStatus(
        job=job.name, description=job.description, host=job.host.display(),
        last_backup_at=last.finished_at or last.started_at if last is not None else None,
        last_backup_status=last.status if last is not None else None,
        last_backup_error=last.error if last is not None else None,
        last_success_at=good.finished_at if good is not None else None,
        last_snapshot_id=good.snapshot_id if good is not None else None,
        age_seconds=age, generations=details.get("generations"),
        next_backup=iso(nxt) if nxt else None, findings=findings,
        copies=copies.copies, repositories=copies.repositories,
        suspicious=bool(copies.suspicious), suspicious_reasons=copies.suspicious)


def status(ctx: Context) -> list[JobStatus]:
    return [job_status(ctx, jf.job) for _, jf in sorted(ctx.config.jobs.items())]
