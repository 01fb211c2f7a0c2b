"""Proof freshness in the state database (SPEC §12): the reads and writes of `proofs`.

`proofs` mirrors the files of each job's newest snapshot (`proof_trees` says which one): a
backup writes only what changed (`apply`), a restore test only the files it proved
(`mark_proven`). Everything the metrics, `status` and the report show is a range of the
`(job, proven_at, seen_at)` index (`freshness`), so it costs the same after years.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, select

from backupctl.state.schema import proof_trees, proofs, runs

NOT_UTF8 = "\ufffd"  # as verify.listing: restic's stand-in for bytes that are not UTF-8

BATCH = 500  # paths per DELETE … IN (…): far below every backend's parameter limit


@dataclass(frozen=True, slots=True)  # a backup holds one per file: a million of them
class Known:
    """What the state says of one file of the newest snapshot."""

    size: int
    mtime: str
    sha256: str | None
    seen_at: str
    proven_at: str | None


@dataclass(frozen=True)
class Tree:
    snapshot_id: str
    files: int
    changed: int
    updated_at: str
    untracked: int = 0


@dataclass(frozen=True)
class Due:
    """A file a restore test can prove: its identity has a source hash."""

    path: str
    size: int
    sha256: str
    proven_at: str | None


@dataclass(frozen=True)
class Freshness:
    """How fresh the proofs of a job's newest snapshot are."""

    files: int
    unproven: int
    oldest_proof: str | None  # the oldest proven_at (None: nothing proven)
    oldest_unproven: str | None  # seen_at of the longest-unproven file (None: none)
    snapshot_id: str


def tree(conn: Connection, job: str) -> Tree | None:
    row = conn.execute(select(proof_trees).where(proof_trees.c.job == job)).first()
    return Tree(row.snapshot_id, int(row.files), int(row.changed), row.updated_at,
                int(row.untracked)) if row is not None else None


def known(conn: Connection, job: str) -> dict[str, Known]:
    """Every file the state holds for the job's newest snapshot."""
    p = proofs.c
    times: dict[str | None, str | None] = {}  # a few runs' times, shared by many rows
    return {r.path: Known(int(r.size), r.mtime, r.sha256,
                          times.setdefault(r.seen_at, r.seen_at) or "",
                          times.setdefault(r.proven_at, r.proven_at))
            for r in conn.execute(select(p.path, p.size, p.mtime, p.sha256, p.seen_at,
                                         p.proven_at).where(p.job == job))}


def apply(conn: Connection, job: str, *, snapshot_id: str, remove: Sequence[str],
          add: Sequence[dict[str, Any]], files: int, changed: int, untracked: int,
          at: str) -> None:
    """Bring the job's rows to a new snapshot: `remove` paths, then insert `add` rows
    (path, size, mtime, sha256, seen_at, proven_at)."""
    for start in range(0, len(remove), BATCH):
        conn.execute(proofs.delete().where(proofs.c.job == job,
                                           proofs.c.path.in_(remove[start:start + BATCH])))
    if add:
        conn.execute(proofs.insert(), [{"job": job, **row} for row in add])
    conn.execute(proof_trees.delete().where(proof_trees.c.job == job))
    conn.execute(proof_trees.insert().values(job=job, snapshot_id=snapshot_id, files=files,
                                             changed=changed, untracked=untracked,
                                             updated_at=at))


def due(conn: Connection, job: str, *, limit: int | None) -> list[Due]:
    """Files with a source hash, unproven first (longest-waiting first), then the
    longest-unproven. A name restic lists with U+FFFD is left to the backup's sample, whose
    manifest keeps its bytes. Two ranges of the (job, proven_at, seen_at) index in its own
    order (ascending sorts NULL first on SQLite and last on PostgreSQL), no sort."""
    p = proofs.c
    found: list[Due] = []
    for unproven in (True, False):
        if limit is not None and len(found) >= limit:
            break
        query = (select(p.path, p.size, p.sha256, p.proven_at)
                 .where(p.job == job, p.sha256.is_not(None), ~p.path.contains(NOT_UTF8),
                        p.proven_at.is_(None) if unproven else p.proven_at.is_not(None))
                 .order_by(p.seen_at if unproven else p.proven_at))
        if limit is not None:
            query = query.limit(limit - len(found))
        found += [Due(r.path, int(r.size), r.sha256, r.proven_at) for r in conn.execute(query)]
    return found


def mark_proven(conn: Connection, job: str, proven: Iterable[tuple[str, int, str]], *,
                at: str) -> int:
    """Record (path, size, sha256) as proven at `at`; a row whose identity or hash changed
    meanwhile is left alone. Returns how many were given."""
    rows = [{"j": job, "p": path, "s": size, "h": sha256, "at": at}
            for path, size, sha256 in proven]
    if rows:
        p = proofs.c
        conn.execute(proofs.update().where(
            p.job == bindparam("j"), p.path == bindparam("p"), p.size == bindparam("s"),
            p.sha256 == bindparam("h")).values(proven_at=bindparam("at")), rows)
    return len(rows)


def freshness(conn: Connection, jobs: Iterable[str]) -> dict[str, Freshness]:
    """Per job with a proof tree: unproven count, oldest proof, longest-unproven file."""
    found: dict[str, Freshness] = {}
    p = proofs.c
    for job in jobs:
        current = tree(conn, job)
        if current is None:
            continue
        unproven = conn.execute(select(func.count()).select_from(proofs).where(
            p.job == job, p.proven_at.is_(None))).scalar_one()
        oldest = conn.execute(select(func.min(p.proven_at)).where(
            p.job == job, p.proven_at.is_not(None))).scalar()
        waiting = conn.execute(select(func.min(p.seen_at)).where(
            p.job == job, p.proven_at.is_(None))).scalar()
        found[job] = Freshness(current.files, int(unproven) + current.untracked, oldest,
                               waiting or (current.updated_at if current.untracked else None),
                               current.snapshot_id)
    return found


def verifies_of(conn: Connection, job: str, repository: str) -> int:
    """How many quick restore tests of the repository the job has run (the read-data
    rotation): a full one measured its restore (`restore_ms`) and does not take a turn."""
    return int(conn.execute(select(func.count()).select_from(runs).where(
        runs.c.job == job, runs.c.kind == "verify", runs.c.repository == repository,
        runs.c.restore_ms.is_(None))).scalar_one())


@dataclass(frozen=True)
class Standing:
    """Whether every file of the newest snapshot was proven within the window, and since
    when (what `status`, the status page and the inspector's report say)."""

    window_seconds: int
    files: int
    unproven: int
    oldest_proof: str | None
    waiting_since: str | None  # the longest-unproven file's first backup
    age_seconds: float | None  # the longest wait for a proof (as backupctl_proof_age_seconds)
    # no file has waited longer than the window for a proof (its newest proof, or its first
    # backup while unproven, is within it): the policy held; `unproven` says how many newer
    # files still wait, inside their window
    met: bool

    def to_json(self) -> dict[str, Any]:
        return {"window_seconds": self.window_seconds, "files": self.files,
                "unproven": self.unproven, "oldest_proof": self.oldest_proof,
                "waiting_since": self.waiting_since, "age_seconds": self.age_seconds,
                "met": self.met}


def standing(fresh: Freshness, *, window: int, now: datetime) -> Standing:
    ages = [(now - datetime.fromisoformat(t)).total_seconds()
            for t in (fresh.oldest_proof, fresh.oldest_unproven) if t]
    age = max(0.0, *ages) if ages else None
    met = age is None or age <= window
    return Standing(window, fresh.files, fresh.unproven, fresh.oldest_proof,
                    fresh.oldest_unproven, age, met)


def directory_files(conn: Connection, job: str, directory: str) -> tuple[int, int]:
    """(files under `directory`, of them in its subdirectories) in the newest snapshot: a
    range of the (job, path) index, not a scan."""
    p = proofs.c
    prefix = directory.rstrip("/") + "/"
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    deeper = p.path.like(escaped + "%/%", escape="\\")
    row = conn.execute(select(func.count(), func.count(case((deeper, 1)))).where(
        p.job == job, p.path >= prefix, p.path < prefix[:-1] + "0")).one()
    return int(row[0]), int(row[1])
