"""Every read and write of the state database, as named functions of a connection.

Actions, reports and metrics call these instead of writing SQL: reads take any connection
(`Store.read()` or `Store.query(fn, …)`), writes take the connection of a serialized write
transaction (`Store.transaction()`), so several of them (a run's row, its evidence record,
its manifest) commit together.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select, update

from backupctl.state.records import Record, VerifyDetails, read
from backupctl.state.schema import (
    canaries,
    evidence,
    flags,
    generations,
    manifest,
    media,
    runs,
)

RUNNING = "running"


# -- runs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunRow:
    id: int
    job: str
    kind: str
    repository: str
    status: str  # running | success | failed | bad_data | interrupted
    started_at: str
    finished_at: str | None
    exit_code: int | None
    snapshot_id: str | None
    snapshot_time: str | None
    error: str | None
    details: str  # JSON: read it with records.read(Model, row.details)
    orchestrator: str
    pid: int
    operator: str
    restore_ms: int | None
    job_file_sha256: str | None
    reason: str | None = None  # errors.Reason of a failed run

    @classmethod
    def of(cls, row: Any) -> RunRow:
        m = row._mapping
        return cls(**{k: m[k] for k in cls.__dataclass_fields__})


def start_run(conn: Connection, *, job: str, kind: str, repository: str, operator: str,
              orchestrator: str, pid: int, started_at: str,
              job_file_sha256: str | None = None) -> int:
    result = conn.execute(runs.insert().returning(runs.c.id).values(
        job=job, kind=kind, repository=repository, status=RUNNING, started_at=started_at,
        orchestrator=orchestrator, pid=pid, operator=operator, details="{}",
        job_file_sha256=job_file_sha256))
    return int(result.scalar_one())


def run(conn: Connection, run_id: int) -> RunRow:
    return RunRow.of(conn.execute(select(runs).where(runs.c.id == run_id)).one())


def finish_run(conn: Connection, run_id: int, *, status: str, exit_code: int,
               finished_at: str, details: Record | None, error: str | None = None,
               snapshot_id: str | None = None, snapshot_time: str | None = None,
               restore_ms: int | None = None, reason: str | None = None) -> RunRow | None:
    """Close a running run; None when it is no longer running (another process closed it,
    e.g. recorded it interrupted), so it is never closed twice."""
    done = conn.execute(update(runs).where(runs.c.id == run_id, runs.c.status == RUNNING)
                        .values(status=status, exit_code=exit_code, finished_at=finished_at,
                                snapshot_id=snapshot_id, snapshot_time=snapshot_time,
                                error=error, restore_ms=restore_ms, reason=reason,
                                details=json.dumps(details.to_json() if details else {},
                                                   ensure_ascii=False)))
    if done.rowcount != 1:
        return None
    return run(conn, run_id)


def interrupt_running(conn: Connection, job: str, *, orchestrator: str | None,
                      finished_at: str, error: Callable[[str], str]) -> list[RunRow]:
    """Mark `running` rows of `job` interrupted (of one orchestrator, or of any when None);
    `error(orchestrator of the row)` is each row's error.

    Call only while holding the job's lock: no run of the job is then alive, so a `running`
    row is what a killed process left behind."""
    query = select(runs.c.id, runs.c.orchestrator).where(runs.c.job == job,
                                                         runs.c.status == RUNNING)
    if orchestrator is not None:
        query = query.where(runs.c.orchestrator == orchestrator)
    stale = {r.id: r.orchestrator for r in conn.execute(query)}
    for run_id, owner in stale.items():
        conn.execute(update(runs).where(runs.c.id == run_id, runs.c.status == RUNNING).values(
            status="interrupted", exit_code=1, finished_at=finished_at, error=error(owner)))
    return [RunRow.of(r) for r in conn.execute(
        select(runs).where(runs.c.id.in_(stale)).order_by(runs.c.id))] if stale else []


def last_started(conn: Connection, job: str, kind: str, *, finished: bool = False,
                 mode: str | None = None) -> str | None:
    """`started_at` of the job's newest run of `kind` on any orchestrator (`--due`): running
    or finished, or only finished ones. An interrupted run does not count: its work is still
    to be done. `mode`: only restore tests of that mode (recorded in the finished run's
    details; a running row has none yet)."""
    excluded = ["interrupted", RUNNING] if finished else ["interrupted"]
    where = (runs.c.job == job, runs.c.kind == kind, runs.c.status.not_in(excluded))
    if mode is None:
        return conn.execute(select(func.max(runs.c.started_at)).where(*where)).scalar()
    # LIKE narrows the rows; the parsed details decide (a nested proof has a mode too).
    rows = conn.execute(select(runs.c.started_at, runs.c.details).where(
        *where, runs.c.details.contains(f'"mode": {json.dumps(mode)}', autoescape=True))
        .order_by(runs.c.started_at.desc()))
    return next((r.started_at for r in rows if read(VerifyDetails, r.details).mode == mode), None)


def job_file_hashes(conn: Connection) -> dict[str, dict[str, str]]:
    """job → orchestrator → the job file SHA-256 of that orchestrator's newest run that
    recorded one (runs from before hashes were recorded are left out)."""
    newest = (select(func.max(runs.c.id).label("id")).where(runs.c.job_file_sha256.is_not(None))
              .group_by(runs.c.job, runs.c.orchestrator).subquery())
    found: dict[str, dict[str, str]] = {}
    for r in conn.execute(select(runs.c.job, runs.c.orchestrator, runs.c.job_file_sha256)
                          .join(newest, runs.c.id == newest.c.id).order_by(runs.c.id)):
        found.setdefault(r.job, {})[r.orchestrator] = r.job_file_sha256
    return found


def last_run(conn: Connection, job: str, kind: str, *, repository: str | None = None,
             status: str | None = None, finished: bool = False) -> RunRow | None:
    """The newest run of a job and kind (optionally of one repository/status, or finished)."""
    query = select(runs).where(runs.c.job == job, runs.c.kind == kind)
    if repository is not None:
        query = query.where(runs.c.repository == repository)
    if status is not None:
        query = query.where(runs.c.status == status)
    if finished:
        query = query.where(runs.c.status != RUNNING)
    row = conn.execute(query.order_by(runs.c.id.desc()).limit(1)).first()
    return RunRow.of(row) if row is not None else None


def recent_runs(conn: Connection, job: str, kind: str, *, limit: int,
                status: str | None = None) -> list[RunRow]:
    """The newest `limit` finished runs of a job and kind, newest first."""
    query = select(runs).where(runs.c.job == job, runs.c.kind == kind,
                               runs.c.status != RUNNING)
    if status is not None:
        query = query.where(runs.c.status == status)
    return [RunRow.of(r) for r in conn.execute(query.order_by(runs.c.id.desc()).limit(limit))]


def last_measured_restore(conn: Connection, job: str, kind: str) -> RunRow | None:
    """The newest finished run of `kind` that measured a full restore."""
    row = conn.execute(select(runs).where(
        runs.c.job == job, runs.c.kind == kind, runs.c.status != RUNNING,
        runs.c.restore_ms.is_not(None)).order_by(runs.c.id.desc()).limit(1)).first()
    return RunRow.of(row) if row is not None else None


def backup_of_snapshot(conn: Connection, job: str, snapshot_id: str) -> RunRow | None:
    """The newest backup run that made `snapshot_id` (full id or its short form)."""
    row = conn.execute(select(runs).where(
        runs.c.job == job, runs.c.kind == "backup",
        runs.c.snapshot_id.in_([snapshot_id, snapshot_id[:8]])).order_by(
        runs.c.id.desc()).limit(1)).first()
    return RunRow.of(row) if row is not None else None


def backup_times_since(conn: Connection, job: str, since: str | None) -> list[str]:
    """Snapshot times of the job's backups that finished after `since` (None: ever)."""
    query = select(runs.c.snapshot_time).where(
        runs.c.job == job, runs.c.kind == "backup", runs.c.snapshot_time.is_not(None))
    if since is not None:
        query = query.where(runs.c.finished_at >= since)
    return [t for (t,) in conn.execute(query)]


# -- source manifests ---------------------------------------------------------------------

@dataclass(frozen=True)
class ManifestRow:
    snapshot_id: str
    path: str
    size: int
    mtime: str
    sha256: str | None
    role: str
    state: str
    raw_path: str | None = None  # base64 of the name's bytes when they are not UTF-8


def insert_manifest(conn: Connection, job: str, snapshot_id: str,
                    entries: Sequence[dict[str, Any]]) -> None:
    if entries:
        conn.execute(manifest.insert(), [{"job": job, "snapshot_id": snapshot_id, **e}
                                         for e in entries])


def manifest_of(conn: Connection, job: str, snapshot_ids: Sequence[str]) -> list[ManifestRow]:
    """The manifest rows stored for any of `snapshot_ids`, oldest first."""
    m = manifest.c
    return [ManifestRow(r.snapshot_id, r.path, int(r.size), r.mtime, r.sha256, r.role, r.state,
                        r.raw_path)
            for r in conn.execute(select(m.snapshot_id, m.path, m.size, m.mtime, m.sha256,
                                         m.role, m.state, m.raw_path)
                                  .where(m.job == job, m.snapshot_id.in_(sorted(snapshot_ids)))
                                  .order_by(m.id))]


def newest_manifest_snapshot(conn: Connection, job: str) -> tuple[str, str] | None:
    """(snapshot id, snapshot time) of the job's newest source manifest."""
    row = conn.execute(select(manifest.c.snapshot_id).where(manifest.c.job == job)
                       .order_by(manifest.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    run = conn.execute(select(runs.c.snapshot_time).where(
        runs.c.job == job, runs.c.kind == "backup",
        runs.c.snapshot_id.in_([row.snapshot_id, row.snapshot_id[:8]]),
        runs.c.snapshot_time.is_not(None)).order_by(runs.c.id.desc()).limit(1)).first()
    return (row.snapshot_id, run.snapshot_time) if run is not None else None


def sampled_before(conn: Connection, job: str, *,
                   window: int) -> tuple[int, set[tuple[str, int, str]]]:
    """How many manifests the job has, and the (path, size, mtime) references of the newest
    `window` of them (the sample rotation's memory)."""
    newest = func.max(manifest.c.id)
    ids = [r.snapshot_id for r in conn.execute(
        select(manifest.c.snapshot_id, newest.label("last")).where(manifest.c.job == job)
        .group_by(manifest.c.snapshot_id).order_by(newest.desc()))]
    seen: set[tuple[str, int, str]] = set()
    if ids[:window]:
        seen = {(r.path, int(r.size), r.mtime) for r in conn.execute(
            select(manifest.c.path, manifest.c.size, manifest.c.mtime).where(
                manifest.c.job == job, manifest.c.state == "ok",
                manifest.c.snapshot_id.in_(ids[:window])))}
    return len(ids), seen


# -- tripwires: flags and canaries --------------------------------------------------------

@dataclass(frozen=True)
class FlagRow:
    job: str
    raised_at: str
    reason: str


def open_flags(conn: Connection, job: str | None = None) -> list[FlagRow]:
    """Raised, uncleared `suspicious` flags (of one job, or of every job)."""
    query = select(flags).where(flags.c.name == "suspicious", flags.c.cleared_at.is_(None))
    if job is not None:
        query = query.where(flags.c.job == job)
    return [FlagRow(r.job, r.raised_at, r.reason)
            for r in conn.execute(query.order_by(flags.c.id))]


def raise_flag(conn: Connection, job: str, *, raised_at: str, reason: str) -> None:
    conn.execute(flags.insert().values(job=job, name="suspicious", raised_at=raised_at,
                                       reason=reason))


def clear_flags(conn: Connection, job: str, *, cleared_at: str, operator: str,
                reason: str) -> None:
    conn.execute(update(flags).where(
        flags.c.job == job, flags.c.name == "suspicious", flags.c.cleared_at.is_(None))
        .values(cleared_at=cleared_at, cleared_by=operator, clear_reason=reason))


def canary_hashes(conn: Connection, job: str) -> dict[str, str]:
    """path → recorded SHA-256 of the job's armed canaries."""
    return {path: digest for path, digest in conn.execute(
        select(canaries.c.path, canaries.c.sha256).where(canaries.c.job == job))}


def replace_canaries(conn: Connection, job: str, rows: Sequence[dict[str, Any]]) -> None:
    conn.execute(canaries.delete().where(canaries.c.job == job))
    if rows:
        conn.execute(canaries.insert(), [{"job": job, **r} for r in rows])


# -- offline media ------------------------------------------------------------------------

@dataclass(frozen=True)
class MediumRow:
    label: str
    fs_uuid: str | None
    created_at: str
    last_attached: str | None


def media_of(conn: Connection, job: str, copy: str) -> list[MediumRow]:
    """Media recorded for a copy, most recently attached first."""
    rows = [MediumRow(r.label, r.fs_uuid, r.created_at, r.last_attached)
            for r in conn.execute(select(media).where(media.c.job == job,
                                                      media.c.copy == copy))]
    return sorted(rows, key=lambda m: m.last_attached or "", reverse=True)


def all_media(conn: Connection) -> list[tuple[str, str, MediumRow]]:
    """(job, copy, medium) of every recorded medium."""
    return [(r.job, r.copy, MediumRow(r.label, r.fs_uuid, r.created_at, r.last_attached))
            for r in conn.execute(select(media))]


def medium_seen(conn: Connection, job: str, copy: str, *, label: str, fs_uuid: str | None,
                at: str) -> None:
    """Record that a labelled medium is attached now (registering a label made elsewhere)."""
    key = (media.c.job == job, media.c.copy == copy, media.c.label == label)
    row = conn.execute(select(media).where(*key)).first()
    if row is None:
        conn.execute(media.insert().values(job=job, copy=copy, label=label, fs_uuid=fs_uuid,
                                           created_at=at, last_attached=at))
    else:
        conn.execute(update(media).where(*key).values(last_attached=at,
                                                      fs_uuid=fs_uuid or row.fs_uuid))


# -- generations --------------------------------------------------------------------------

@dataclass(frozen=True)
class GenerationsRow:
    job: str
    repository: str
    count: int
    expected: int
    observed_at: str
    finding: str | None
    medium: str | None
    snapshots: list[str]  # snapshot times it should hold


def _generations_row(r: Any) -> GenerationsRow:
    return GenerationsRow(r.job, r.repository, int(r.count), int(r.expected), r.observed_at,
                          r.finding, r.medium, list(json.loads(r.snapshots or "[]")))


def insert_generations(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(generations.insert(), list(rows))


def last_generations(conn: Connection, job: str, repository: str, *,
                     medium: str | None = None) -> GenerationsRow | None:
    """The last observation of a repository (and, for offline copies, of one medium)."""
    query = select(generations).where(generations.c.job == job,
                                      generations.c.repository == repository)
    if medium is not None:
        query = query.where(generations.c.medium == medium)
    row = conn.execute(query.order_by(generations.c.id.desc()).limit(1)).first()
    return _generations_row(row) if row is not None else None


def newest_generations(conn: Connection, job: str | None = None) -> list[GenerationsRow]:
    """The newest observation of each (job, repository, medium)."""
    query = select(generations).order_by(generations.c.id)
    if job is not None:
        query = query.where(generations.c.job == job)
    newest: dict[tuple[str, str, str | None], GenerationsRow] = {}
    for row in conn.execute(query):
        newest[(row.job, row.repository, row.medium)] = _generations_row(row)
    return list(newest.values())


# -- evidence -----------------------------------------------------------------------------

def evidence_head(conn: Connection) -> str | None:
    """The newest record's hash (None for an empty chain)."""
    row = conn.execute(select(evidence.c.hash).order_by(evidence.c.seq.desc()).limit(1)).first()
    return str(row[0]) if row else None


def evidence_hash_at(conn: Connection, seq: int) -> str | None:
    """The hash of the record at `seq` (None when there is none)."""
    row = conn.execute(select(evidence.c.hash).where(evidence.c.seq == seq)).first()
    return str(row[0]) if row else None


def first_signed_seq(conn: Connection) -> int | None:
    """The seq of the first record that carries a signature."""
    value = conn.execute(select(func.min(evidence.c.seq)).where(
        evidence.c.signature.is_not(None), evidence.c.signature != "")).scalar()
    return int(value) if value is not None else None


def insert_evidence(conn: Connection, row: dict[str, Any]) -> int:
    """Insert a record; its `seq` (its place in the chain)."""
    return int(conn.execute(evidence.insert().returning(evidence.c.seq).values(**row))
               .scalar_one())


def finished_runs_without_evidence(conn: Connection) -> list[RunRow]:
    """Finished runs that have no evidence record (every finished run must have one)."""
    recorded = select(evidence.c.run_id).where(evidence.c.run_id.is_not(None))
    return [RunRow.of(r) for r in conn.execute(
        select(runs).where(runs.c.status != RUNNING, runs.c.id.not_in(recorded))
        .order_by(runs.c.id))]


def evidence_orchestrators(conn: Connection, *, since: str, until: str) -> dict[str, str]:
    """Record id → the orchestrator of its run, for records finished in [since, until) (the
    fallback for v1 records, which do not name it themselves)."""
    return {r.id: r.orchestrator for r in conn.execute(
        select(evidence.c.id, runs.c.orchestrator).join(runs, runs.c.id == evidence.c.run_id)
        .where(evidence.c.finished_at >= since, evidence.c.finished_at < until))}


def evidence_rows(conn: Connection, *, after: int = 0,
                  batch: int = 5000) -> Iterator[dict[str, Any]]:
    """Every evidence row after `after` in chain order (by `seq`), read in batches."""
    last = after
    while True:
        rows = conn.execute(select(evidence).where(evidence.c.seq > last)
                            .order_by(evidence.c.seq).limit(batch)).fetchall()
        if not rows:
            return
        for row in rows:
            yield dict(row._mapping)
        last = int(rows[-1].seq)


def finished_before(conn: Connection, job: str, kind: str, repository: str, *,
                    before: int) -> RunRow | None:
    """The newest finished run of the same job, kind and repository older than run `before`."""
    row = conn.execute(select(runs).where(
        runs.c.job == job, runs.c.kind == kind, runs.c.repository == repository,
        runs.c.status != RUNNING, runs.c.id < before).order_by(runs.c.id.desc()).limit(1)
    ).first()
    return RunRow.of(row) if row is not None else None


def newest_run(conn: Connection, job: str, kinds: Sequence[str]) -> RunRow | None:
    """The newest run (running or not) of a job of any of these kinds."""
    row = conn.execute(select(runs).where(runs.c.job == job, runs.c.kind.in_(kinds))
                       .order_by(runs.c.id.desc()).limit(1)).first()
    return RunRow.of(row) if row is not None else None
