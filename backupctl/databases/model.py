"""Values of database backups: what a dump made, what the backup recorded of it.

Frozen dataclasses only; no process is started here. A `DumpResult` is what dumping one
database returned; its `DumpManifest` is what the backup stores (state table
`database_manifest`) and what a restore test compares against. What a restore test found is
`state.database_proof.DatabaseProof` (the model, its rules and its stored record in one).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from backupctl.restic.commands import DATABASE_TAG
from backupctl.state import records
from backupctl.state.database_proof import SchemaObject, schema_to_json
from backupctl.state.dumps import DatabaseManifestRow

TAG_ALL = DATABASE_TAG  # every database snapshot carries this tag …


def database_tag(name: str) -> str:
    """… and this one, naming its database (`backupctl-db:emr`)."""
    return f"{TAG_ALL}:{name}"


def tags(name: str) -> list[str]:
    return [TAG_ALL, database_tag(name)]


def dump_stem(job: str, name: str) -> str:
    """A dump's file name without its suffix (the helper adds the kind's): `JOB.NAME`."""
    return f"{job}.{name}"


def stdin_filename(job: str, name: str, suffix: str) -> str:
    """restic's `--stdin-filename`: `JOB.NAME.SUFFIX`, the snapshot's path `/JOB.NAME.SUFFIX`.

    A flat name: restic 0.18 refuses one with a directory part (`JOB/NAME.SUFFIX` fails
    with `open /JOB: no such file or directory`). Neither a job nor a database name holds a
    dot, so the name stays unambiguous. Dumps made before hold `/JOB/NAME.SUFFIX`; every
    reader takes the path the backup recorded (`DumpManifest.path`), never rebuilds it."""
    return f"{dump_stem(job, name)}.{suffix}"


@dataclass(frozen=True)
class DumpResult:
    """One database dumped into the repository (or why not).

    `tables` maps each table (`schema.table`, identifiers quoted as PostgreSQL's
    quote_ident does; sqlite: the table name) to its exact row count, counted in the same
    snapshot the dump was taken from; `schema` is the schema fingerprint taken there (SPEC
    §10a; None: the helper recorded none). No row data is ever part of a result.
    """

    job: str
    name: str
    kind: str
    snapshot_id: str | None = None
    path: str | None = None  # inside the snapshot, e.g. /emr-db/emr.pgdump
    sha256: str | None = None
    size: int | None = None
    tables: dict[str, int] = field(default_factory=dict)
    schema: tuple[SchemaObject, ...] | None = None
    server_version: int | None = None  # PostgreSQL server_version_num, e.g. 150018
    dump_version: str | None = None  # pg_dump --version, e.g. "15.18"
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.snapshot_id is not None

    def manifest(self) -> DumpManifest:
        if not self.ok or self.path is None or self.sha256 is None or self.size is None:
            raise ValueError(f"{self.job}: database {self.name} was not dumped: {self.error}")
        assert self.snapshot_id is not None
        return DumpManifest(job=self.job, database=self.name, kind=self.kind,
                            snapshot_id=self.snapshot_id, path=self.path, sha256=self.sha256,
                            size=self.size, tables=dict(self.tables), schema=self.schema,
                            server_version=self.server_version,
                            dump_version=self.dump_version)

    def record(self) -> records.DatabaseDump:
        """For the backup run's details: how many tables and rows, never row data."""
        return records.DatabaseDump(
            name=self.name, kind=self.kind, snapshot_id=self.snapshot_id, path=self.path,
            sha256=self.sha256, size=self.size, tables=len(self.tables),
            rows=sum(self.tables.values()), server_version=self.server_version,
            dump_version=self.dump_version, duration_ms=round(self.seconds * 1000),
            error=self.error)

    def to_dict(self) -> dict[str, Any]:
        return self.record().to_json()


@dataclass(frozen=True)
class DumpManifest:
    """What a backup recorded about one database dump: the restore test's reference."""

    job: str
    database: str
    kind: str
    snapshot_id: str
    path: str
    sha256: str
    size: int
    tables: dict[str, int]
    schema: tuple[SchemaObject, ...] | None = None  # None: recorded by an older backupctl
    server_version: int | None = None
    dump_version: str | None = None

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    @property
    def source_major(self) -> int | None:
        """The newest PostgreSQL major version involved in the dump (server or pg_dump)."""
        majors = [self.server_version // 10000] if self.server_version else []
        if self.dump_version and (m := re.match(r"(\d+)", self.dump_version)):
            majors.append(int(m.group(1)))
        return max(majors) if majors else None

    def row(self, **extra: Any) -> dict[str, Any]:
        """A `database_manifest` row (`extra`: run_id, files_snapshot_id, created_at)."""
        return {"job": self.job, "database": self.database, "kind": self.kind,
                "snapshot_id": self.snapshot_id, "path": self.path, "sha256": self.sha256,
                "size": self.size, "tables": json.dumps(self.tables, sort_keys=True,
                                                        ensure_ascii=False),
                "schema_objects": schema_to_json(self.schema),
                "server_version": self.server_version, "dump_version": self.dump_version,
                **extra}

    @classmethod
    def from_row(cls, row: DatabaseManifestRow) -> DumpManifest:
        """From a `database_manifest` row (state.queries)."""
        return cls(job=row.job, database=row.database, kind=row.kind,
                   snapshot_id=row.snapshot_id, path=row.path, sha256=row.sha256,
                   size=row.size, tables=dict(row.tables), schema=row.schema,
                   server_version=row.server_version,
                   dump_version=row.dump_version)
