"""Queries for several orchestrators sharing one state: when a job last ran, how large its
restore is, and which orchestrators run it from a different job file.

Every query reads the runs of all orchestrators: the shared database is the one place that
knows what every orchestrator did.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from backupctl.state.schema import runs


def last_started(conn: Connection, job: str, kind: str) -> str | None:
    """`started_at` of the job's newest run of `kind` that is running or finished, on any
    orchestrator; None when there is none.

    An `interrupted` run does not count: its orchestrator stopped before it finished, so the
    work it was scheduled for is still to be done (the job is due again).
    """
    return conn.execute(select(func.max(runs.c.started_at)).where(
        runs.c.job == job, runs.c.kind == kind, runs.c.status != "interrupted")).scalar()


def _details(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None


def restore_size(conn: Connection, job: str) -> int | None:
    """Bytes a full restore test of the job's latest snapshot will write; None if unknown.

    The newest successful backup's manifest knows the size of the snapshot a scheduled full
    verify restores (`bytes_total`); before any such backup, the newest full verify's
    `bytes_restored` is the best guess.
    """
    backup = conn.execute(select(runs.c.details).where(
        runs.c.job == job, runs.c.kind == "backup", runs.c.status == "success")
        .order_by(runs.c.id.desc()).limit(1)).scalar()
    if backup is not None:
        details = _details(backup)
        manifest = details.get("manifest")
        size = _positive_int(manifest.get("bytes_total")) if isinstance(manifest, dict) \
            else None
        if size is not None:
            return size
    for text in conn.execute(select(runs.c.details).where(
            runs.c.job == job, runs.c.kind == "verify",
            runs.c.status.in_(("success", "bad_data"))).order_by(runs.c.id.desc()).limit(50)
            ).scalars():
        details = _details(text)
        if details.get("mode") == "full" and (
                size := _positive_int(details.get("bytes_restored"))) is not None:
            return size
    return None


@dataclass(frozen=True)
class Drift:
    """A job that orchestrators run from different job files."""

    job: str
    reference: str  # the SHA-256 the others are compared with
    by_orchestrator: dict[str, str]  # each orchestrator's latest run: its job file's SHA-256
    differing: list[str]  # orchestrators whose latest run used another file than `reference`


def job_file_drift(conn: Connection, *,
                   current: Mapping[str, str] | None = None) -> list[Drift]:
    """Jobs whose orchestrators' latest runs used different job files.

    Each orchestrator's newest run of the job that recorded a hash is compared with
    `current[job]` (this orchestrator's file as it is now) when given, else with the job's
    newest recorded hash. Runs from before hashes were recorded are ignored.
    """
    newest = (select(runs.c.job, runs.c.orchestrator, func.max(runs.c.id).label("id"))
              .where(runs.c.job_file_sha256.is_not(None))
              .group_by(runs.c.job, runs.c.orchestrator).subquery())
    rows = conn.execute(select(runs.c.job, runs.c.orchestrator, runs.c.job_file_sha256,
                               runs.c.id).join(newest, runs.c.id == newest.c.id)
                        .order_by(runs.c.job, runs.c.id)).all()
    by_job: dict[str, dict[str, str]] = {}
    newest_hash: dict[str, str] = {}
    for row in rows:
        by_job.setdefault(row.job, {})[row.orchestrator] = row.job_file_sha256
        newest_hash[row.job] = row.job_file_sha256  # ordered by id: the last one wins
    found = []
    for job, hashes in sorted(by_job.items()):
        reference = (current or {}).get(job, newest_hash[job])
        differing = sorted(o for o, h in hashes.items() if h != reference)
        if differing:
            found.append(Drift(job=job, reference=reference, by_orchestrator=hashes,
                               differing=differing))
    return found
