"""Values of database backups and restore tests: what a dump recorded, what a proof found.

Frozen dataclasses only; no process is started here. A `DumpManifest` is what the backup
stores (state table `database_manifest`) and what a restore test compares against;
`DatabaseFindings` is what a restore test returns. The restore-test engine maps findings to
a verdict: `bad_data` (a table's rows differ, a check failed, the dump's bytes changed) or
`proven`; anything else (not_proven, problems) is a failure that proved nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from backupctl.restic.commands import DATABASE_TAG
from backupctl.state import records
from backupctl.state.dumps import DatabaseManifestRow

TAG_ALL = DATABASE_TAG  # every database snapshot carries this tag …
SUFFIXES = {"postgresql": "pgdump", "sqlite": "sqlite"}
SQL_SUFFIX = "sql"  # sqlite dumped as SQL text (host python3 < 3.11, no serialize())


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
    snapshot the dump was taken from. No row data is ever part of a result.
    """

    job: str
    name: str
    kind: str
    snapshot_id: str | None = None
    path: str | None = None  # inside the snapshot, e.g. /emr-db/emr.pgdump
    sha256: str | None = None
    size: int | None = None
    tables: dict[str, int] = field(default_factory=dict)
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
                            size=self.size, tables=dict(self.tables),
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
                "server_version": self.server_version, "dump_version": self.dump_version,
                **extra}

    @classmethod
    def from_row(cls, row: DatabaseManifestRow) -> DumpManifest:
        """From a `database_manifest` row (state.queries)."""
        return cls(job=row.job, database=row.database, kind=row.kind,
                   snapshot_id=row.snapshot_id, path=row.path, sha256=row.sha256,
                   size=row.size, tables=dict(row.tables), server_version=row.server_version,
                   dump_version=row.dump_version)


@dataclass(frozen=True)
class TableMismatch:
    """One table whose restored rows differ from what the backup counted."""

    table: str
    expected: int | None  # None: not in the manifest
    restored: int | None  # None: missing from the restored database (or the dump)
    reason: str  # rows | missing | unexpected | no data in the dump

    def describe(self, database: str) -> str:
        if self.reason == "rows":
            return (f"database {database}, table {self.table}: expected {self.expected} rows, "
                    f"restored {self.restored}")
        if self.reason == "missing":
            return (f"database {database}, table {self.table}: expected {self.expected} rows, "
                    "the table is missing from the restored database")
        if self.reason == "unexpected":
            return (f"database {database}, table {self.table}: restored {self.restored} rows "
                    "but the backup counted no such table")
        return (f"database {database}, table {self.table}: expected {self.expected} rows, "
                f"the dump holds no data for it ({self.reason})")


@dataclass(frozen=True)
class CheckOutcome:
    """One check on the restored copy: a job's `checks` SQL (`check 1`, …) or a built-in
    one (`integrity_check`). `detail` never shows a returned value."""

    name: str
    sql: str
    passed: bool
    detail: str = ""

    def describe(self, database: str) -> str:
        verdict = "passed" if self.passed else f"FAILED: {self.detail}"
        return f"database {database}, {self.name} ({self.sql!r}): {verdict}"


@dataclass(frozen=True)
class DatabaseFindings:
    """What one database restore test found (quick or full)."""

    name: str
    kind: str
    mode: str  # quick | full
    snapshot_id: str | None = None
    sha256_match: bool | None = None  # None: not compared (could not read the dump)
    read_error: str | None = None  # restic read damaged data where the dump should be
    tables_checked: int = 0
    rows_expected: int = 0
    rows_restored: int = 0
    mismatches: list[TableMismatch] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)
    restore_ms: int | None = None  # reading the dump + pg_restore (counts toward the RTO)
    timings: dict[str, int] = field(default_factory=dict)  # ms per step
    local_version: str | None = None  # the PostgreSQL that restored it
    problems: list[str] = field(default_factory=list)
    not_proven: str | None = None

    @property
    def failed_checks(self) -> list[CheckOutcome]:
        return [c for c in self.checks if not c.passed]

    @property
    def bad_data(self) -> bool:
        """The backup is wrong: changed bytes, a table's rows differ, or a check failed."""
        return self.sha256_match is False or bool(self.mismatches) or bool(self.failed_checks)

    @property
    def proven(self) -> bool:
        """Everything compared matched and nothing kept the test from proving it."""
        return (not self.bad_data and self.not_proven is None and not self.problems
                and self.sha256_match is True)

    def findings(self) -> list[str]:
        """Every bad-data finding as one line naming the database (and table or check)."""
        found = []
        if self.read_error is not None:
            found.append(f"database {self.name}: the dump cannot be read from the repository: "
                         f"{self.read_error}")
        elif self.sha256_match is False:
            found.append(f"database {self.name}: the dump read from the repository differs "
                         "from the one backed up (SHA-256)")
        found += [m.describe(self.name) for m in self.mismatches]
        found += [c.describe(self.name) for c in self.failed_checks]
        return found

    @property
    def result(self) -> Literal["proven", "bad_data", "not_proven"]:
        """proven | bad_data | not_proven (bad data wins: it is what was found)."""
        return "bad_data" if self.bad_data else "proven" if self.proven else "not_proven"

    def unproven(self) -> list[str]:
        """Why nothing bad was found yet the database is not proven (empty when proven)."""
        if self.proven or self.bad_data:
            return []
        reasons = [f"database {self.name}: {p}" for p in self.problems]
        if self.not_proven is not None:
            reasons.insert(0, f"database {self.name}: {self.not_proven}")
        return reasons or [f"database {self.name}: nothing was compared"]

    def record(self) -> records.DatabaseProof:
        return records.DatabaseProof(
            name=self.name, kind=self.kind, mode="full" if self.mode == "full" else "quick",
            result=self.result,
            snapshot_id=self.snapshot_id, sha256_match=self.sha256_match,
            read_error=self.read_error, tables_checked=self.tables_checked,
            rows_expected=self.rows_expected, rows_restored=self.rows_restored,
            mismatches=[records.TableCount(table=m.table, expected=m.expected,
                                           restored=m.restored, reason=m.reason)
                        for m in self.mismatches],
            checks=[records.DatabaseCheck(name=c.name, sql=c.sql, passed=c.passed,
                                          detail=c.detail) for c in self.checks],
            restore_ms=self.restore_ms, timings_ms=dict(self.timings),
            local_version=self.local_version, problems=list(self.problems),
            not_proven=self.not_proven)

    def to_dict(self) -> dict[str, Any]:
        return {**self.record().to_json(), "bad_data": self.bad_data, "proven": self.proven}
