"""Database restore tests beside the files' (SPEC §10): each database of the job, for the
snapshot the file restore test proved.

A backup run dumps each database into its own snapshot after the files and records, per
database, a manifest (tables, row counts, SHA-256) with the run's file snapshot; that link
finds the dumps of a file snapshot (of its `original` for a copy; the dump's own copy is
found the same way). quick → `prove_quick` (the dump streamed out, its SHA-256,
`pg_restore --list`); full and drill → `prove_full` (a throwaway PostgreSQL, every table's
rows, the job's `checks`, the restore time, which counts toward the RTO). A database without
a manifest for the snapshot is not proven; a dump's snapshot missing from the repository is
bad data. The verdict (verdict.py) decides what the findings mean.

`require_restore_user` runs before a full verify or a drill restores anything: the throwaway
server's user (`restore_user`, SPEC §10a) must exist, be unprivileged and pass through
scratch_dir; else exit 2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

from backupctl.actions.context import Context
from backupctl.actions.restore_test import scratch
from backupctl.actions.restore_test.pipeline import Tested
from backupctl.actions.restore_test.snapshot import PRIMARY, held
from backupctl.actions.restore_test.verdict import Findings
from backupctl.config.schema import Database, Job
from backupctl.databases import KINDS, DumpManifest, account, prove_full, prove_quick
from backupctl.errors import ResticError
from backupctl.execute import Counting
from backupctl.restic.run import Repo
from backupctl.state import dumps
from backupctl.state.database_proof import DatabaseProof
from backupctl.verify.listing import SnapshotRef


def require_restore_user(ctx: Context, job: Job, *, mode: str) -> None:
    """Exit 2 before anything is restored when a full restore test of the job's databases
    (of a kind whose proof runs a server: PostgreSQL) could not run its server as an
    unprivileged `restore_user`."""
    if mode != "full" or not any(KINDS[d.kind].RESTORE_USER for d in job.databases):
        return
    settings = ctx.config.settings
    account.require(settings.restore_user, scratch_dir=scratch.prepare(settings.scratch_dir),
                    runner=ctx.local)


def manifests(ctx: Context, job: Job, snapshot: SnapshotRef, manifest_id: str,
              ) -> dict[str, DumpManifest]:
    """database → what the backup that made `snapshot` recorded of its dump."""
    ids = [manifest_id, snapshot.id, *([snapshot.original] if snapshot.original else [])]
    rows = ctx.store.query(dumps.database_manifests_of, job.name, ids)
    return {name: DumpManifest.from_row(row) for name, row in rows.items()}


def _copied_dumps(runner: Counting, repo: Repo, job: Job, timeout: float
                  ) -> dict[str, str] | ResticError:
    """original snapshot id (full and short) → its id in a copy (restic copy gives copies
    new ids; a backup records the short id restic printed)."""
    try:
        refs = held(runner, repo, job=job.name, timeout=timeout, dumps=True)
    except ResticError as exc:
        return exc
    return {key: r.id for r in refs for origin in (r.original, r.id) if origin
            for key in (origin, origin[:8])}


def prove(ctx: Context, job: Job, repo: Repo, snapshot: SnapshotRef, manifest_id: str, *,
          mode: str) -> tuple[tuple[DatabaseProof, ...], int]:
    """Prove every database of the job for this file snapshot; (findings, restic runs)."""
    if not job.databases:
        return (), 0
    runner = Counting(ctx.local)
    found = manifests(ctx, job, snapshot, manifest_id)
    copied: Mapping[str, str] | ResticError = {}
    if repo.name != PRIMARY and found:
        copied = _copied_dumps(runner, repo, job, ctx.timeout)
    results = tuple(_one(ctx, runner, job, repo, database, found.get(database.name), copied,
                         snapshot=snapshot, mode=mode) for database in job.databases)
    helpers = sum(1 for r in results if r.mode == "quick" and r.snapshot_id)
    return results, runner.counts.get("restic", 0) + helpers


def _one(ctx: Context, runner: Counting, job: Job, repo: Repo, database: Database,
         manifest: DumpManifest | None, copied: Mapping[str, str] | ResticError, *,
         snapshot: SnapshotRef, mode: str) -> DatabaseProof:
    kind = database.kind
    proof: Literal["quick", "full"] = "full" if mode == "full" else "quick"
    if manifest is None:
        return DatabaseProof(database.name, kind, proof, not_proven=(
            f"snapshot {snapshot.short_id} has no dump of this database recorded (the backup "
            "that made it did not dump it: it failed, or the database was added to the job "
            f"later); run `backupctl backup {job.name}` and verify the new snapshot"))
    dump_id = manifest.snapshot_id
    if isinstance(copied, ResticError):
        return DatabaseProof(database.name, kind, proof, not_proven=(
            f"listing the dumps in {repo.name} failed: {str(copied).splitlines()[0]}"))
    if repo.name != PRIMARY:
        if (found := copied.get(manifest.snapshot_id)) is None:
            return DatabaseProof(
                database.name, kind, proof, sha256_match=False,
                read_error=(f"its snapshot {manifest.snapshot_id[:8]} (the dump made with "
                            f"snapshot {snapshot.short_id}) is not in {repo.name}"))
        dump_id = found
    if proof == "full":
        return prove_full(runner, manifest, checks=database.checks, repo_url=repo.url,
                          password=repo.password, scratch_dir=ctx.config.settings.scratch_dir,
                          timeout=ctx.timeout, snapshot=dump_id,
                          restore_user=ctx.config.settings.restore_user)
    return prove_quick(runner, manifest, repo_url=repo.url, password=repo.password,
                       timeout=ctx.timeout, snapshot=dump_id)


def with_databases(ctx: Context, job: Job, repo: Repo, tested: Tested, *,
                   mode: str) -> Tested:
    """A file restore test's outcome with the job's databases proven for its snapshot."""
    if not job.databases:
        return tested
    results, restic_runs = prove(ctx, job, repo, tested.snapshot,
                                 tested.references.manifest_id, mode=mode)
    steps = tuple(describe(r) for r in results)
    timings = dict(tested.timings_ms)
    for r in results:
        if r.restore_ms is not None:
            timings[f"database {r.name}"] = r.restore_ms
    return dataclasses.replace(
        tested, findings=tested.findings + Findings(databases=results),
        steps=(*tested.steps, *steps), timings_ms=timings,
        restic_invocations=tested.restic_invocations + restic_runs)


def describe(r: DatabaseProof) -> str:
    """One line of what a database's restore test did and found."""
    if r.result == "not_proven":
        return f"database {r.name}: not proven"
    what = (f"{r.tables_checked} table(s), {r.rows_restored} row(s) compared with the "
            f"backup's counts" if r.mode == "full" else
            f"SHA-256 {'matches' if r.sha256_match else 'DIFFERS'}, {r.tables_checked} "
            "table(s) in the table of contents")
    if r.schema_checked is not None:
        what += f", {r.schema_checked} schema object(s)"
    elif r.mode == "full":
        what += ", no schema fingerprint recorded (rows only)"
    checks = f", {len(r.checks) - len(r.failed_checks)}/{len(r.checks)} check(s) passed" \
        if r.checks else ""
    took = f" in {r.restore_ms / 1000:.1f}s" if r.restore_ms is not None else ""
    return f"database {r.name} ({r.mode}): {what}{checks}{took}: {r.result.replace('_', ' ')}"
