"""What a restore test proved of one database (SPEC §10): one model, its rules and its record.

The proofs (backupctl.databases) build a `DatabaseProof`, the restore-test engine judges by
its rules (`bad_data`, `proven`, `findings()`, `unproven()`), and the same value is stored in
a verify's or a drill's details (`records.Proof.databases`), where metrics, reports, the
runbook and `status` read it back. The fields are written once, here.

`result` is decided once, when a proof is made (or `dataclasses.replace`d), by the rules
over its fields, stored with them, and read back as it was stored: a reader never judges
again (a later version's rules do not rewrite what an old run decided).

Pydantic dataclasses: frozen values built like the engine's other values (positionally,
`dataclasses.replace`), validated and serialised like the records (`records.Record`: unknown
keys ignored, no floats). The stored JSON is key for key the one written before this model
was one (`DatabaseFindings.record()` → `records.DatabaseProof`), so evidence hashes hold; the
schema fingerprint's fields (SPEC §10a) are written only when a proof has them.

The schema fingerprint: what a backup recorded of a database's schema in the dump's own
snapshot (`SchemaObject`: per table its indexes, constraints and triggers, and every
sequence, each with a digest of its definition), compared with the restored copy's by
`databases.compare.compare_schema` into `SchemaMismatch`es: a missing object is bad data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from functools import cache
from typing import Any, Literal, get_args

from pydantic import (
    ConfigDict,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    model_serializer,
    model_validator,
)
from pydantic.dataclasses import dataclass

from backupctl.fmt import one_line

# As records.Record: unknown keys are ignored, and a validator is built when first used (only
# a restore test's proof holds these; every command imports them, issue 25).
_CONFIG = ConfigDict(extra="ignore", defer_build=True)
Result = Literal["proven", "bad_data", "not_proven"]
# Written only when set (a proof without them is stored key for key as before).
_SCHEMA_FIELDS = ("schema_checked", "schema_mismatches", "schema_note", "restore_error")


@dataclass(frozen=True, config=_CONFIG)
class SchemaObject:
    """One object of a database's schema fingerprint (SPEC §10a).

    `kind`: index | primary key | unique constraint | foreign key | check constraint |
    exclusion constraint | trigger | sequence (sqlite: index | trigger); `table` the
    table it belongs to, written like `TableCount.table` ('' for a sequence, whose `name` is
    schema-qualified); `digest`: the first 16 hex digits of the SHA-256 of its definition
    (PostgreSQL's pg_get_indexdef/pg_get_constraintdef/pg_get_triggerdef, a sequence's
    parameters; sqlite's CREATE statement): the definition itself is never stored."""

    kind: str
    table: str
    name: str
    digest: str

    @property
    def key(self) -> tuple[str, str, str]:
        return self.kind, self.table, self.name

    def to_list(self) -> list[str]:
        return [self.kind, self.table, self.name, self.digest]


def schema_from_json(text: str | None) -> tuple[SchemaObject, ...] | None:
    """A manifest's stored fingerprint (a JSON list of [kind, table, name, digest]); None:
    the backup recorded none (an older backupctl)."""
    if text is None:
        return None
    import json

    return tuple(SchemaObject(*map(str, item)) for item in json.loads(text))


def schema_to_json(objects: tuple[SchemaObject, ...] | None) -> str | None:
    import json

    if objects is None:
        return None
    return json.dumps([o.to_list() for o in objects], ensure_ascii=False)


def describe_object(kind: str, table: str, name: str) -> str:
    """`primary key pgbench_accounts_pkey of table public.pgbench_accounts`, `sequence s`."""
    return f"{kind} {name}" + (f" of table {table}" if table else "")


@dataclass(frozen=True, config=_CONFIG)
class SchemaMismatch:
    """An object of the backup's schema fingerprint the restored copy lacks (`missing`), has
    with another definition (`definition`), or has beyond it (`unexpected`); or, in a quick
    proof, one the dump's table of contents lacks (`not in the dump`)."""

    kind: str
    table: str
    name: str
    reason: str  # missing | definition | unexpected | not in the dump

    def describe(self, database: str) -> str:
        what = describe_object(self.kind, self.table, self.name)
        if self.reason == "missing":
            return f"database {database}, {what}: missing from the restored database"
        if self.reason == "not in the dump":
            return f"database {database}, {what}: the dump holds no definition of it"
        if self.reason == "definition":
            return (f"database {database}, {what}: restored with another definition than the "
                    "backup recorded")
        return (f"database {database}, {what}: restored but the backup recorded no such "
                "object")


@dataclass(frozen=True, config=_CONFIG)
class TableCount:
    """A table whose restored rows differ from the backup's count (None: not there)."""

    table: str
    expected: int | None  # None: not in the manifest
    restored: int | None  # None: missing from the restored database (or the dump)
    reason: str  # rows | missing | unexpected | no data in the dump

    @model_validator(mode="before")
    @classmethod
    def _absent_counts(cls, data: Any) -> Any:
        """The record this replaces defaulted both counts to None."""
        if isinstance(data, dict):
            return {"expected": None, "restored": None, **data}
        return data

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


@dataclass(frozen=True, config=_CONFIG)
class DatabaseCheck:
    """One check on the restored copy: a job's `checks` SQL (`check 1`, …) or a built-in
    one (`integrity_check`). `detail` never shows a returned value."""

    name: str
    sql: str
    passed: bool
    detail: str = ""

    def describe(self, database: str) -> str:
        verdict = "passed" if self.passed else f"FAILED: {self.detail}"
        return f"database {database}, {self.name} ({self.sql!r}): {verdict}"


@dataclass(frozen=True, config=_CONFIG)
class DatabaseProof:
    """What one database restore test found (quick: the dump's SHA-256 and table of contents;
    full: restored into a throwaway server or a read-only copy, every table's rows, the
    checks). `result`: bad_data (changed bytes, a table's rows differ, a check failed) wins,
    then proven (everything compared matched), else not_proven."""

    name: str
    kind: str
    mode: Literal["quick", "full"] = "quick"
    snapshot_id: str | None = None  # the dump's snapshot in the tested repository
    sha256_match: bool | None = None  # None: not compared (could not read the dump)
    read_error: str | None = None  # restic read damaged data where the dump should be
    tables_checked: int = 0
    rows_expected: int = 0
    rows_restored: int = 0
    mismatches: list[TableCount] = field(default_factory=list)
    checks: list[DatabaseCheck] = field(default_factory=list)
    restore_ms: int | None = None  # reading the dump + restoring (counts toward the RTO)
    timings_ms: dict[str, int] = field(default_factory=dict)  # per step
    local_version: str | None = None  # the PostgreSQL that restored it
    problems: list[str] = field(default_factory=list)
    not_proven: str | None = None
    # the schema fingerprint (SPEC §10a): objects of the backup's fingerprint compared (None:
    # none compared; a quick proof looks in the table of contents), what differed, what was
    # not compared
    schema_checked: int | None = None
    schema_mismatches: list[SchemaMismatch] = field(default_factory=list)
    schema_note: str | None = None
    restore_error: str | None = None  # the restore exited non-zero: its redacted error
    # decided when made (never an argument: `judged()`), stored, read back as stored
    result: Result = field(default="not_proven", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "result", self.judged())

    @model_validator(mode="wrap")
    @classmethod
    def _as_stored(cls, data: Any, handler: Callable[[Any], DatabaseProof]) -> DatabaseProof:
        """Read from a record (a dict), the stored decision stands."""
        proof = handler(data)
        if isinstance(data, dict) and data.get("result") in get_args(Result):
            object.__setattr__(proof, "result", data["result"])
        return proof

    @model_serializer(mode="wrap")
    def _schema_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The schema fields only when a proof has them: older proofs' JSON is unchanged."""
        data: dict[str, Any] = handler(self)
        for key in _SCHEMA_FIELDS:
            if data.get(key) in (None, []):
                data.pop(key, None)
        return data

    @property
    def failed_checks(self) -> list[DatabaseCheck]:
        return [c for c in self.checks if not c.passed]

    @property
    def bad_data(self) -> bool:
        """The backup is wrong: changed bytes, a table's rows differ, a check failed, an
        object of the schema is missing or differs, or the restore exited non-zero."""
        return (self.sha256_match is False or bool(self.mismatches) or bool(self.failed_checks)
                or bool(self.schema_mismatches) or self.restore_error is not None)

    @property
    def proven(self) -> bool:
        """Everything compared matched and nothing kept the test from proving it."""
        return (not self.bad_data and self.not_proven is None and not self.problems
                and self.sha256_match is True)

    def judged(self) -> Result:
        """proven | bad_data | not_proven (bad data wins: it is what was found)."""
        return "bad_data" if self.bad_data else "proven" if self.proven else "not_proven"

    def findings(self) -> list[str]:
        """Every bad-data finding as one line naming the database (and table or check)."""
        found = []
        if self.read_error is not None:
            found.append(f"database {self.name}: the dump cannot be read from the repository: "
                         f"{self.read_error}")
        elif self.sha256_match is False:
            found.append(f"database {self.name}: the dump read from the repository differs "
                         "from the one backed up (SHA-256)")
        if self.restore_error is not None:
            found.append(f"database {self.name}: {self.restore_error}")
        named = [m.describe(self.name) for m in self.mismatches] + [
            m.describe(self.name) for m in self.schema_mismatches]
        return found + [one_line(f) for f in named] + [
            c.describe(self.name) for c in self.failed_checks]

    def unproven(self) -> list[str]:
        """Why nothing bad was found yet the database is not proven (empty when proven)."""
        if self.proven or self.bad_data:
            return []
        reasons = [f"database {self.name}: {p}" for p in self.problems]
        if self.not_proven is not None:
            reasons.insert(0, f"database {self.name}: {self.not_proven}")
        return reasons or [f"database {self.name}: nothing was compared"]

    def to_json(self) -> dict[str, Any]:
        """The stored JSON (as in a run's details)."""
        return _adapter().dump_python(self, mode="json")  # type: ignore[no-any-return]


@cache
def _adapter() -> TypeAdapter[DatabaseProof]:
    return TypeAdapter(DatabaseProof)
