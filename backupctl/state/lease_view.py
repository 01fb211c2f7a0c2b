"""Who holds which job's lease, for `status` and the status page; no psycopg import (SQLite
sites never load it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import Connection, select

from backupctl.state.schema import leases as leases_table

_HIGH_BIT = 1 << 62


def lock_key(job: str) -> int:
    """The advisory lock key (bigint) of a job's lease.

    62 bits of SHA-256 (no two of a site's jobs collide in practice) with bit 62 set, so the
    high half is never 0 like the evidence chain's lock key (state/db.py) and the two can
    never be the same lock.
    """
    digest = hashlib.sha256(b"backupctl job lease\0" + job.encode()).digest()
    return (int.from_bytes(digest[:8], "big") & (_HIGH_BIT - 1)) | _HIGH_BIT


@dataclass(frozen=True)
class HeldLease:
    """A row of `leases`, and whether its holder's session still holds the lock."""

    job: str
    kind: str
    orchestrator: str
    pid: int
    since: str
    live: bool


def current_leases(conn: Connection) -> list[HeldLease]:
    """Every lease row, live ones (a run in progress) and stale ones (a holder that died
    since, until the next holder overwrites the row). Empty on SQLite (flock has no rows)."""
    if conn.dialect.name != "postgresql":
        return []
    held = {((int(r.classid) << 32) | int(r.objid), int(r.pid)) for r in conn.exec_driver_sql(
        "SELECT classid, objid, pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND objsubid = 1")}
    return [HeldLease(job=r.job, kind=r.kind, orchestrator=r.orchestrator, pid=r.pid,
                      since=r.since, live=(lock_key(r.job), r.backend_pid) in held)
            for r in conn.execute(select(leases_table).order_by(leases_table.c.job))]
