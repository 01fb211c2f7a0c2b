"""Database dumps of backup runs (SPEC §10): the manifests the restore tests prove against.

Functions of a connection, as in backupctl.state.queries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from backupctl.state.database_proof import SchemaObject, schema_from_json
from backupctl.state.schema import database_manifest


@dataclass(frozen=True)
class DatabaseManifestRow:
    """What a backup recorded of one database dump: the restore tests' reference."""

    job: str
    database: str
    kind: str
    snapshot_id: str  # the dump's own snapshot
    path: str  # inside it: /JOB/NAME.pgdump
    sha256: str
    size: int
    tables: dict[str, int]  # table → exact row count in the dump's snapshot
    schema: tuple[SchemaObject, ...] | None  # its fingerprint there (None: not recorded)
    server_version: int | None
    dump_version: str | None
    files_snapshot_id: str | None  # the job's file snapshot of the same backup run
    run_id: int | None
    created_at: str


def _database_manifest_row(r: Any) -> DatabaseManifestRow:
    tables = json.loads(r.tables or "{}")
    return DatabaseManifestRow(
        job=r.job, database=r.database, kind=r.kind, snapshot_id=r.snapshot_id, path=r.path,
        sha256=r.sha256, size=int(r.size), tables={str(k): int(v) for k, v in tables.items()},
        schema=schema_from_json(r.schema_objects),
        server_version=r.server_version, dump_version=r.dump_version,
        files_snapshot_id=r.files_snapshot_id, run_id=r.run_id, created_at=r.created_at)


def insert_database_manifests(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Rows as `DumpManifest.row(run_id=, files_snapshot_id=, created_at=)` makes them."""
    if rows:
        conn.execute(database_manifest.insert(), list(rows))


def database_manifests_of(conn: Connection, job: str, files_snapshot_ids: Sequence[str],
                          ) -> dict[str, DatabaseManifestRow]:
    """database → the newest dump recorded with any of these file snapshots (full ids or
    their short forms)."""
    d = database_manifest.c
    ids = sorted({i for full in files_snapshot_ids for i in (full, full[:8])})
    found: dict[str, DatabaseManifestRow] = {}
    for row in conn.execute(select(database_manifest).where(
            d.job == job, d.files_snapshot_id.in_(ids)).order_by(d.id)):
        found[row.database] = _database_manifest_row(row)
    return found


def newest_database_manifest(conn: Connection, job: str,
                             database: str) -> DatabaseManifestRow | None:
    d = database_manifest.c
    row = conn.execute(select(database_manifest).where(d.job == job, d.database == database)
                       .order_by(d.id.desc()).limit(1)).first()
    return _database_manifest_row(row) if row is not None else None
