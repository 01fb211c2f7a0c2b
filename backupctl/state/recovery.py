"""What a recovery onto a replacement server records (`runs.kind` = `recovery`, SPEC §11).

Kept beside `records.py` (one model per kind) as a module of its own; read it back with
`records.read(RecoveryDetails, row.details)`; `proven_snapshots` is the one query of
state it adds. A recovery is a proof too (`Proof`): its
`restore_ms` is the real RTO, from start to a proven target.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sqlalchemy import Connection, select

from backupctl.state.records import Proof, VerifyDetails, read
from backupctl.state.schema import runs


class RecoveryDetails(Proof):
    """Where the data went, from which snapshot, who did it, and what the proof found."""

    result: Literal["pass", "fail", "aborted"] = "fail"
    operator: str = ""
    target: str = ""  # ssh://user@host:port/DIR or local:/DIR (never a credential)
    selected: str = "proven"  # what --snapshot asked for: proven | latest | an id
    paths: list[str] = Field(default_factory=list)  # --path: the subtrees brought back
    overwrite: bool = False
    served: bool = False  # the repository reached the target through the SSH tunnel
    files: int = 0  # regular files the snapshot (or --path) holds and the target has
    bytes: int = 0
    directories: int = 0
    symlinks: int = 0
    owners_mapped: int = 0  # entries chowned to the snapshot's user/group by name
    # --databases: the libpq conninfo on the target (never a password: refused); each
    # database `name` of `databases` (Proof) was restored there as `name_restored`
    target_dsn: str | None = None
    # `restic version` on the target (its PATH's restic ran the restore; refused before 0.14)
    target_restic_version: str | None = None
    # restore_ms (Proof): from the start of the command to a proven target, the real RTO
    timings_ms: dict[str, int] = Field(default_factory=dict)


def proven_snapshots(conn: Connection, job: str, *, repository: str) -> list[str]:
    """Snapshot ids whose full restore test (`verify --mode full`) passed in `repository`,
    newest snapshot first: what `restore --snapshot proven` may bring back. (A query of
    state, as in backupctl.state.queries.)"""
    rows = conn.execute(select(runs.c.snapshot_id, runs.c.snapshot_time, runs.c.details).where(
        runs.c.job == job, runs.c.kind == "verify", runs.c.repository == repository,
        runs.c.status == "success", runs.c.snapshot_id.is_not(None),
        runs.c.details.contains('"mode": "full"', autoescape=True)))
    full = [(r.snapshot_time or "", r.snapshot_id) for r in rows
            if read(VerifyDetails, r.details).mode == "full"]
    return list(dict.fromkeys(snapshot_id for _, snapshot_id in sorted(full, reverse=True)))
