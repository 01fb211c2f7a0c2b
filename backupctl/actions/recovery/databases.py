"""`restore --databases`: each dump of the snapshot into the target's own PostgreSQL.

`plan` (before anything runs, every refusal exit 2): the job has databases of a kind that
can be restored onto a server (`Kind.ONTO_TARGET`), the snapshot has each one's dump
recorded, `--target-dsn` holds no password, the target's PostgreSQL answers, its role may
create databases, pg_restore is there and not older than the dump, and no
`<name>_restored` exists yet (never restored over a live database). `restore_all` (after the
files' proof, inside the repository's tunnel): `databases.onto.restore` per database (rows,
schema fingerprint, checks), a `DatabaseProof` each, judged by the engine like a full
verify's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from backupctl.actions.context import Context
from backupctl.actions.restore_test import databases as proofs
from backupctl.actions.restore_test.snapshot import References
from backupctl.config.schema import Database, Job
from backupctl.databases import KINDS, DumpManifest, onto
from backupctl.errors import UsageError
from backupctl.execute import Runner
from backupctl.restic.run import Repo
from backupctl.state.database_proof import DatabaseProof
from backupctl.verify.listing import SnapshotRef


@dataclass(frozen=True)
class Onto:
    """One database to restore on the target, and what it is compared with."""

    database: Database
    manifest: DumpManifest

    @property
    def restored(self) -> str:
        return onto.restored_name(self.database.name)


@dataclass(frozen=True)
class Planned:
    dsn: str  # --target-dsn (no password: refused)
    databases: tuple[Onto, ...]
    server_major: int = 0  # the target's PostgreSQL (definitions compared on the same major)


def _kinds(job: Job) -> None:
    if not job.databases:
        raise UsageError(f"{job.name}: --databases: the job has no databases; nothing was run")
    other = [f"{d.name} ({d.kind})" for d in job.databases if not KINDS[d.kind].ONTO_TARGET]
    if other:
        raise UsageError(f"{job.name}: --databases restores PostgreSQL dumps into the target's "
                         f"server; {', '.join(other)} cannot be (restore it by hand as the "
                         "runbook shows, and run without --databases); nothing was run")


def _dsn(job: Job, dsn: str) -> None:
    if (problem := onto.dsn_problem(dsn)) is not None:
        raise UsageError(f"{job.name}: --target-dsn {problem}; nothing was run")


def manifests(ctx: Context, job: Job, snap: SnapshotRef, refs: References) -> tuple[Onto, ...]:
    found = proofs.manifests(ctx, job, snap, refs.manifest_id)
    missing = [d.name for d in job.databases if d.name not in found]
    if missing:
        raise UsageError(f"{job.name}: snapshot {snap.short_id} has no dump of "
                         f"{', '.join(missing)} recorded (the backup that made it did not dump "
                         "it); choose another --snapshot or run without --databases (nothing "
                         "was run)")
    return tuple(Onto(d, found[d.name]) for d in job.databases)


def refuse(job: Job, planned: Planned, looked: onto.Looked, *, shown: str) -> None:
    """Exit 2 for anything the target's PostgreSQL would refuse, or a database there."""
    name = job.name
    if not looked.createdb:
        raise UsageError(f"{name}: --databases: role {looked.user!r} on {shown}'s PostgreSQL "
                         "may not create databases (ALTER ROLE … CREATEDB, or give another "
                         "user in --target-dsn); nothing was run")
    if looked.existing:
        raise UsageError(f"{name}: --databases: {', '.join(sorted(looked.existing))} already "
                         f"exist(s) on {shown}'s PostgreSQL; a recovery never restores over a "
                         "database: rename or drop it first (nothing was run)")
    if looked.pg_restore_major is None:
        raise UsageError(f"{name}: --databases: pg_restore is not installed on {shown} "
                         "(apt install postgresql-client); nothing was run")
    for item in planned.databases:
        source = item.manifest.source_major
        if source is not None and looked.pg_restore_major < source:
            raise UsageError(f"{name}: --databases: the dump of {item.database.name} comes "
                             f"from PostgreSQL {source}, {shown}'s pg_restore is "
                             f"{looked.pg_restore_major}: install PostgreSQL {source} or newer "
                             "there (nothing was run)")


def plan(ctx: Context, job: Job, runner: Runner, *, snap: SnapshotRef, refs: References,
         dsn: str, shown: str) -> Planned:
    """Every check of `--databases` that must pass before anything runs (exit 2)."""
    _kinds(job)
    _dsn(job, dsn)
    planned = Planned(dsn, manifests(ctx, job, snap, refs))
    try:
        looked = onto.look(runner, dsn, [d.restored for d in planned.databases],
                           timeout=ctx.timeout)
    except ValueError as exc:
        raise UsageError(f"{job.name}: --databases: {exc} (--target-dsn {dsn!r}); nothing "
                         "was run") from None
    refuse(job, planned, looked, shown=shown)
    return replace(planned, server_major=looked.server_major)


def restore_all(ctx: Context, runner: Runner, planned: Planned, *, repo: Repo, url: str,
                ) -> Sequence[DatabaseProof]:
    """Each dump into its new database on the target, proven there."""
    return [onto.restore(runner, item.manifest, dsn=planned.dsn, repo_url=url,
                         password=repo.password, snapshot_id=item.manifest.snapshot_id,
                         checks=item.database.checks, server_major=planned.server_major,
                         timeout=ctx.timeout)
            for item in planned.databases]


def describe(dsn: str) -> str:
    """The --dry-run line."""
    return (f"on the target: psql {dsn!r}: CREATE DATABASE <name>{onto.SUFFIX} per database "
            "(refused when it exists); restic dump | SHA-256 | pg_restore --no-owner "
            "--no-privileges into it; every table's rows compared with the backup's counts, "
            "the job's checks read-only")
