"""What several orchestrators on one PostgreSQL add to the commands (SPEC §9, issue #15).

- `run_job`: one job of `backup`, `copy` or `verify`. With `--due`, a first cheap check
  before the job's lease is taken (the one that decides comes after, under the lease, in
  `jobrun.job_session`); with `--all`, a job whose lease another orchestrator holds is listed
  as running there, not an error (a job named on the command line still exits 75).
- `Skipped`: the result of such a job (exit 0, nothing run, nothing recorded).
- `annotate`: what `status` adds: who runs a job right now (live leases) and which
  orchestrators last ran it from a job file that differs from this orchestrator's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from backupctl.actions import capacity, due
from backupctl.actions.context import Context
from backupctl.actions.results import JobResult, status_fields
from backupctl.config.identity import job_file_sha256
from backupctl.config.schema import Job
from backupctl.state import queries
from backupctl.state.lease_view import HeldLease, current_leases
from backupctl.state.locks import LeaseHeld
from backupctl.status import ExitStatus

if TYPE_CHECKING:
    from backupctl.actions.status import JobStatus  # annotations only: runs skip that module

NOT_DUE, RUNNING_ELSEWHERE, NO_ROOM = "not_due", "running_elsewhere", "no_room"
_MARKS = {NOT_DUE: "NOT DUE", RUNNING_ELSEWHERE: "RUNNING", NO_ROOM: "SKIPPED"}


@dataclass(frozen=True)
class Skipped:
    """A job this orchestrator did not run, and why (not an error: exit 0)."""

    job: str
    kind: str
    why: str  # not_due | running_elsewhere | no_room
    reason: str
    status: ExitStatus = ExitStatus.OK
    error: str | None = None

    @property
    def mark(self) -> str:
        return _MARKS[self.why]

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "kind": self.kind, **status_fields(self.status),
                "error": None, "skipped": self.why, "reason": self.reason}


def run_job(ctx: Context, job: Job, action: Callable[[Context, Job], JobResult], *,
            kind: str, all_jobs: bool) -> JobResult:
    """`action` for one job, unless it is not due (`ctx.due`) or, in `--all`, running on
    another orchestrator."""
    if ctx.due:
        decision = due.check(ctx.store, job, kind, now=ctx.clock(), runner=ctx.local,
                             under_lease=False)
        if not decision.due:
            return Skipped(job.name, kind, NOT_DUE, decision.reason)
    try:
        return action(ctx, job)
    except due.NotDue as exc:  # another orchestrator ran it while we waited for the lease
        return Skipped(job.name, kind, NOT_DUE, str(exc))
    except capacity.NoRoom as exc:  # verify --mode full --due: for a larger scratch disk
        return Skipped(job.name, kind, NO_ROOM, str(exc))
    except LeaseHeld as exc:
        if all_jobs and exc.orchestrator != ctx.store.orchestrator:
            return Skipped(job.name, kind, RUNNING_ELSEWHERE, str(exc))
        raise


# -- status ---------------------------------------------------------------------------------

def annotate(ctx: Context, rows: list[JobStatus]) -> list[JobStatus]:
    """Add the live lease of each job and the orchestrators whose job file differs."""
    running = {lease.job: lease for lease in ctx.store.query(current_leases) if lease.live}
    hashes = ctx.store.query(queries.job_file_hashes)
    out = []
    for row in rows:
        entry = ctx.config.jobs.get(row.job)
        mine = _sha256(entry.path) if entry is not None else None
        differs = {o: h for o, h in hashes.get(row.job, {}).items()
                   if mine is not None and h != mine and o != ctx.store.orchestrator}
        findings = [*row.findings, *(
            f"job file differs on {o} (its last run used sha256 {h[:12]}…, this "
            f"orchestrator's file is {mine[:12]}…): give every orchestrator the same file"
            for o, h in sorted(differs.items()) if mine is not None)]
        out.append(dataclasses.replace(
            row, running=_lease(running.get(row.job)), job_file_sha256=mine,
            job_file_differs=differs, findings=findings))
    return out


def _lease(lease: HeldLease | None) -> dict[str, Any] | None:
    if lease is None:
        return None
    return {"orchestrator": lease.orchestrator, "kind": lease.kind, "since": lease.since,
            "pid": lease.pid}


def _sha256(path: Any) -> str | None:
    try:
        return job_file_sha256(path)
    except OSError:
        return None
