"""Ransomware tripwires: canaries and changed-file spikes; a raised flag freezes pruning.

`inspect` runs right after each backup (actions/backup.py raises the `suspicious` flag when
it returns reasons):
- every canary recorded by `backupctl canary init` must still exist on the source with the
  recorded SHA-256 (the source manifest's hashes are used when it has them; otherwise the
  canaries are hashed on the host with one `sha256sum -z -- PATHS` through the runner);
- the backup's new + changed file count must not exceed `tripwire.changed_factor` × the
  median of the job's earlier successful (non-initial) backups *and* `tripwire.changed_min`.

While the flag is raised, `forget --prune` is skipped for the job in every repository
(primary and copies) until an operator runs `backupctl clear JOB --operator --reason`,
which is recorded as a run of kind `clear` with its evidence record.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from backupctl.actions.context import Context
from backupctl.actions.jobrun import job_run
from backupctl.actions.results import RunResult
from backupctl.config.schema import Job
from backupctl.errors import CommandFailed, UsageError
from backupctl.execute import Runner
from backupctl.restic.parse import BackupSummary
from backupctl.state import queries
from backupctl.state.records import BackupDetails, ClearDetails, Flag, read
from backupctl.status import ExitStatus
from backupctl.verify.manifest import Manifest

HISTORY = 30  # earlier backups the changed-file median is taken over
ClearResult = RunResult[ClearDetails]


def inspect(ctx: Context, job: Job, summary: BackupSummary,
            manifest: Manifest | None) -> list[str]:
    """Reasons this backup looks like ransomware at work (empty: none)."""
    reasons = canary_reasons(ctx, job, manifest)
    spike = spike_reason(job, changed=summary.files_new + summary.files_changed,
                         history=changed_history(ctx, job.name))
    return [*reasons, *([spike] if spike else [])]


# -- canaries -----------------------------------------------------------------------------

def recorded_canaries(ctx: Context, job: Job) -> dict[str, str]:
    """path → recorded sha256, for the canaries the job still declares."""
    recorded = ctx.store.query(queries.canary_hashes, job.name)
    return {path: digest for path, digest in recorded.items() if path in job.verify.canaries}


def canary_reasons(ctx: Context, job: Job, manifest: Manifest | None) -> list[str]:
    expected = recorded_canaries(ctx, job)
    if not expected:
        return []
    current = _from_manifest(manifest, expected)
    todo = [p for p in expected if p not in current]
    if todo:
        runner = ctx.runner(job)
        try:
            current.update(hash_on_host(runner, todo, timeout=ctx.timeout, job=job.name))
        finally:
            runner.close()
    reasons = []
    for path, digest in sorted(expected.items()):
        now = current.get(path)
        if now is None:
            reasons.append(f"canary {path} vanished (or is unreadable) on {job.host.display()}")
        elif now != digest:
            reasons.append(f"canary {path} changed: sha256 {now[:16]}… instead of the "
                           f"recorded {digest[:16]}… (encrypted?)")
    return reasons


def _from_manifest(manifest: Manifest | None, wanted: dict[str, str]) -> dict[str, str | None]:
    """Canary hashes the source manifest already took (state ok), if it has them."""
    found: dict[str, str | None] = {}
    for entry in manifest.entries if manifest is not None else []:
        path = entry.get("path")
        if entry.get("role") == "canary" and path in wanted and entry.get("sha256") \
                and entry.get("state", "ok") == "ok":
            found[str(path)] = str(entry["sha256"])
    return found


def hash_on_host(runner: Runner, paths: Sequence[str], *, timeout: float,
                 job: str) -> dict[str, str | None]:
    """SHA-256 of files on the host; a missing or unreadable file maps to None."""
    result = runner.run(["sha256sum", "-z", "--", *paths], timeout=timeout)
    if result.timed_out or result.returncode not in (0, 1):
        raise CommandFailed(f"{job}: hashing canaries failed {result.describe()}")
    found: dict[str, str | None] = dict.fromkeys(paths)
    for record in result.stdout.split(b"\0"):
        # GNU coreutils with -z: "<64 hex><space><space or *><path>", names unescaped.
        if len(record) > 66:
            digest, path = record[:64].decode("ascii", "replace"), record[66:]
            name = path.decode("utf-8", "surrogateescape")
            if name in found:
                found[name] = digest
    return found


# -- changed-file spikes ------------------------------------------------------------------

def changed_history(ctx: Context, job: str) -> list[int]:
    """New + changed file counts of the job's recent successful, non-initial backups."""
    rows = ctx.store.query(queries.recent_runs, job, "backup", limit=HISTORY,
                           status="success")
    counts = []
    for row in rows:
        data = read(BackupDetails, row.details)
        if not data.files_unmodified and not data.files_changed:
            continue  # the first (full) backup says nothing about daily change
        counts.append(data.files_new + data.files_changed)
    return counts


def spike_reason(job: Job, *, changed: int, history: Sequence[int]) -> str | None:
    if not history:
        return None
    median = statistics.median(history)
    limit = job.tripwire.changed_factor * median
    if changed > limit and changed > job.tripwire.changed_min:
        return (f"{changed} files new or changed, more than {job.tripwire.changed_factor:g} × "
                f"the median {median:g} of the last {len(history)} backup(s) and more than "
                f"tripwire.changed_min {job.tripwire.changed_min} (mass encryption?)")
    return None


# -- the flag -----------------------------------------------------------------------------

def raised(ctx: Context, job: str) -> list[Flag]:
    """The job's uncleared suspicious flags, oldest first."""
    return [Flag(raised_at=f.raised_at, reason=f.reason)
            for f in ctx.store.query(queries.open_flags, job)]


def frozen_reason(ctx: Context, job: Job) -> str | None:
    """Why pruning is frozen for the job (an uncleared suspicious flag), or None."""
    flags = raised(ctx, job.name)
    return f"suspicious since {flags[0].raised_at}: {flags[0].reason}" if flags else None


def clear(ctx: Context, job: Job, *, operator: str, reason: str) -> ClearResult:
    """Lift the job's tripwire; the flag update, run row and evidence land in one transaction."""
    if not operator.strip() or not reason.strip():
        raise UsageError(f"{job.name}: clear needs --operator NAME and --reason TEXT")
    if not raised(ctx, job.name):
        return ClearResult(job.name, "clear", ExitStatus.OK, ClearDetails(reason=reason))
    with job_run(ctx, job, "clear", ClearDetails) as run:  # not while a backup runs
        pending = raised(ctx, job.name)
        details = ClearDetails(reason=reason, cleared=pending)
        run.finish(ClearResult(job.name, "clear", ExitStatus.OK, details),
                   extra=lambda conn: queries.clear_flags(
                       conn, job.name, cleared_at=ctx.store.now(), operator=operator,
                       reason=reason))
    return run.result
