"""Which snapshot a restore test proves, and the source manifest it is proven against."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from backupctl.errors import CommandFailed, DataError, ResticError
from backupctl.execute import Runner
from backupctl.restic import commands
from backupctl.restic import run as restic
from backupctl.restic.codes import ResticExit
from backupctl.restic.run import Repo
from backupctl.state import queries
from backupctl.state.db import Store
from backupctl.state.records import BackupDetails, ManifestSummary, read
from backupctl.verify import listing, names
from backupctl.verify.listing import SnapshotRef

PRIMARY = "primary"


def held(runner: Runner, repo: Repo, *, job: str, timeout: float,
         dumps: bool = False) -> list[SnapshotRef]:
    """The job's file snapshots in the repository, oldest first (stale locks removed if
    needed); with `dumps`, its database dumps' snapshots too."""
    result, outcome = restic.attempt(runner, commands.snapshots(repo.url, repo.password,
                                                                host=job),
                                     timeout=timeout, unlock=repo)
    if outcome is not ResticExit.OK:
        raise ResticError(f"{job}: listing snapshots of {repo.name} failed ({outcome.value}) "
                          f"{result.describe()}" + restic.hint(job, outcome),
                          reason=restic.reason_of(result, outcome))
    refs = listing.snapshot_refs(result.stdout)
    return refs if dumps else [r for r in refs if not commands.is_database(r.tags)]


def resolve(runner: Runner, store: Store, repo: Repo, *, job: str, wanted: str,
            timeout: float) -> SnapshotRef:
    """`latest` or an id, in `repo`. For `latest` of the primary repository the newest
    successful backup's snapshot must still be there: a restore test never quietly falls
    back to an older snapshot when the newest one was deleted (that is bad data)."""
    snapshots = held(runner, repo, job=job, timeout=timeout)
    if wanted == "latest" and repo.name == PRIMARY:
        newest = newest_backup(store, job)
        if newest is not None and newest.snapshot_id and not any(
                s.id.startswith(newest.snapshot_id) for s in snapshots):
            raise DataError(f"{job}: BAD DATA: snapshot {newest.snapshot_id} of the last "
                            f"successful backup ({newest.finished_at}) is missing from "
                            f"repository {repo.name} ({repo.url}): it was deleted or the "
                            "repository was replaced")
    found = listing.pick(snapshots, wanted)
    if found is None:
        raise CommandFailed(f"{job}: no snapshot {wanted!r} of host {job} in repository "
                            f"{repo.name} ({repo.url})")
    return found


def newest_backup(store: Store, job: str) -> queries.RunRow | None:
    """The job's newest successful backup to the primary repository."""
    return store.query(queries.last_run, job, "backup", repository=PRIMARY, status="success")


def guess_latest(store: Store, repo: Repo, *, job: str, wanted: str) -> SnapshotRef | None:
    """For `latest` of the primary: the snapshot of the newest source manifest when it is
    also the newest successful backup's, which is restic's latest unless something happened
    since (the caller confirms that restic's latest is this snapshot: then the newest
    backup's snapshot is still there). None: resolve the slow way."""
    if wanted != "latest" or repo.name != PRIMARY:
        return None
    newest = store.query(queries.newest_manifest_snapshot, job)
    backup = newest_backup(store, job)
    if newest is None or backup is None or not backup.snapshot_id \
            or not newest[0].startswith(backup.snapshot_id):
        return None
    snapshot_id, time = newest
    return SnapshotRef(id=snapshot_id, short_id=snapshot_id[:8], time=time, original=None)


@dataclass(frozen=True)
class Reference:
    """A file whose content was hashed on the source right after the backup."""

    path: str  # as restic lists it (the manifest's key)
    size: int
    sha256: str
    name: str = ""  # the name's bytes (surrogate escapes) when they are not UTF-8

    @property
    def on_disk(self) -> str:
        """What to restore and open: the name itself, not restic's listed form of it."""
        return self.name or self.path


@dataclass(frozen=True)
class References:
    """The source manifest of a snapshot: what a restore test compares against."""

    manifest_id: str  # the snapshot the manifest was taken for (the original of a copy)
    refs: tuple[Reference, ...]
    changed: tuple[str, ...]  # changed on the source since the snapshot: not compared
    summary: ManifestSummary | None  # from the backup run: files_total, bytes_total, coverage

    @property
    def paths(self) -> list[str]:
        """The names to restore (their bytes, for names that are not UTF-8)."""
        return [r.on_disk for r in self.refs]


def references(store: Store, snap: SnapshotRef, *, job: str, repository: str) -> References:
    """The manifest of `snap` (or of the snapshot it was copied from)."""
    ids = {snap.id, snap.id[:8]}
    if snap.original:
        ids |= {snap.original, snap.original[:8]}
    with store.read() as conn:
        rows = queries.manifest_of(conn, job, sorted(ids))
        if not rows:
            raise CommandFailed(
                f"{job}: snapshot {snap.short_id} of {repository} has no source manifest "
                "(it was taken before backupctl recorded manifests, or by another tool), so "
                f"its data cannot be proven; verify a snapshot taken by `backupctl backup "
                f"{job}`")
        manifest_id = rows[-1].snapshot_id  # several stored: the newest rows win
        summary = summary_of(conn, job, manifest_id)
    refs: dict[str, Reference] = {}
    changed: list[str] = []
    for row in rows:
        if row.snapshot_id != manifest_id:
            continue
        if row.state == "ok" and row.sha256:
            name = names.decode_raw(row.path, row.raw_path) if row.raw_path else ""
            refs[name or row.path] = Reference(row.path, row.size, row.sha256, name)
        elif row.state == "changed":
            changed.append(names.shown(names.decode_raw(row.path, row.raw_path)))
    return References(manifest_id, tuple(refs.values()), tuple(changed), summary)


def summary_of(conn: Connection, job: str, manifest_id: str) -> ManifestSummary | None:
    """What the backup that took the manifest of `manifest_id` recorded of it (file and byte
    totals, listing digest), without its rows: a manifest of many files takes seconds to
    load, which a full restore test does beside the restore."""
    backup = queries.backup_of_snapshot(conn, job, manifest_id)
    return read(BackupDetails, backup.details).manifest if backup is not None else None
