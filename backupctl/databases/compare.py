"""Pure helpers of the restore tests: compare row counts and schema fingerprints, judge a
check's value, read a pg_restore table of contents, classify a failed `restic dump`. No
process, no I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from backupctl.state.database_proof import SchemaMismatch, SchemaObject, TableCount

# restic read something, but not the bytes it stored: the repository is damaged.
_DAMAGED = re.compile(r"ciphertext verification failed|hash mismatch|decrypting blob|"
                      r"wrong data returned|invalid data returned|checksum|"
                      r"not found in snapshot|unexpected EOF", re.IGNORECASE)
_GONE = re.compile(r"no matching ID found")
_TOC_DATA = re.compile(r"^\d+; \d+ \d+ TABLE DATA (.*)$")


def compare_counts(expected: Mapping[str, int], restored: Mapping[str, int]
                   ) -> list[TableCount]:
    """Every table whose restored row count differs from the backup's, sorted by name."""
    found = []
    for table in sorted(set(expected) | set(restored)):
        want, got = expected.get(table), restored.get(table)
        if want is None:
            found.append(TableCount(table, None, got, "unexpected"))
        elif got is None:
            found.append(TableCount(table, want, None, "missing"))
        elif want != got:
            found.append(TableCount(table, want, got, "rows"))
    return found


def compare_schema(expected: Iterable[SchemaObject], restored: Iterable[SchemaObject], *,
                   definitions: bool = True) -> list[SchemaMismatch]:
    """Every object of the backup's schema fingerprint the restored copy lacks or has with
    another definition, and every object it has beyond it, sorted (kind, table, name).

    The one comparison of schema fingerprints (SPEC §10a): full verify, drill and `restore
    --databases` call it on what `KINDS[kind].fingerprint` read from their restored copy.
    `definitions=False` compares names only (a dump restored on another PostgreSQL major
    version, whose catalog may print the same definition differently)."""
    want = {o.key: o.digest for o in expected}
    got = {o.key: o.digest for o in restored}
    found = []
    for key in sorted(want.keys() | got.keys()):
        if key not in got:
            found.append(SchemaMismatch(*key, "missing"))
        elif key not in want:
            found.append(SchemaMismatch(*key, "unexpected"))
        elif definitions and want[key] != got[key]:
            found.append(SchemaMismatch(*key, "definition"))
    return found


NO_FINGERPRINT = ("the backup recorded no schema fingerprint (made by an older backupctl): "
                  "compared on rows only")


@dataclass(frozen=True)
class SchemaComparison:
    """A proof's schema fields (`DatabaseProof.schema_checked`, `schema_mismatches`,
    `schema_note`): what was compared, what differed, what was not compared and why."""

    checked: int | None
    mismatches: list[SchemaMismatch] = field(default_factory=list)
    note: str | None = None


def judge_schema(expected: Sequence[SchemaObject] | None, restored: Sequence[SchemaObject],
                 *, names_only: str | None = None) -> SchemaComparison:
    """The backup's fingerprint (None: it recorded none) against a restored copy's.

    `names_only`: why definitions cannot be compared (e.g. restored on another PostgreSQL
    major version); the names still are, and the note says so."""
    if expected is None:
        return SchemaComparison(None, note=NO_FINGERPRINT)
    return SchemaComparison(len(expected), compare_schema(expected, restored,
                                                          definitions=names_only is None),
                            None if names_only is None else
                            f"definitions not compared ({names_only}); names compared")


def check_verdict(row: tuple[object, ...] | None, *, integer_booleans: bool = False
                  ) -> tuple[bool, str]:
    """(passed, detail) for the first row a check returned; the value itself is never shown.

    Only boolean true passes. `integer_booleans`: the database has no boolean type (sqlite),
    so 1 is true and 0 false.
    """
    if row is None or len(row) == 0:
        return False, "returned no row; a check must return true"
    value = row[0]
    if integer_booleans and isinstance(value, int) and not isinstance(value, bool) \
            and value in (0, 1):
        value = bool(value)
    if value is True:
        return True, ""
    if value is False:
        return False, "returned false"
    if value is None:
        return False, "returned NULL"
    return False, (f"returned a value of type {type(value).__name__}, not a boolean; make "
                   "the check a comparison that returns true, e.g. count(*) > 0")


def parse_qualified(name: str) -> tuple[str, str]:
    """(schema, table) of `schema.table` written with PostgreSQL identifier quoting, e.g.
    `"my schema"."Odd Table"` (a doubled quote inside quotes is one quote)."""
    parts: list[str] = []
    i = 0
    while True:
        if i < len(name) and name[i] == '"':
            j, word = i + 1, []
            while j < len(name):
                if name[j] == '"':
                    if name[j + 1:j + 2] == '"':
                        word.append('"')
                        j += 2
                        continue
                    break
                word.append(name[j])
                j += 1
            parts.append("".join(word))
            i = j + 1
        else:
            j = name.find(".", i)
            j = len(name) if j < 0 else j
            parts.append(name[i:j])
            i = j
        if i >= len(name):
            break
        if name[i] != ".":
            raise ValueError(f"not a qualified table name: {name!r}")
        i += 1
    if len(parts) != 2:
        raise ValueError(f"not a qualified table name: {name!r}")
    return parts[0], parts[1]


def toc_data_entries(toc: str) -> list[str]:
    """The `schema name owner` part of every TABLE DATA line of `pg_restore --list`."""
    return [m.group(1) for line in toc.splitlines() if (m := _TOC_DATA.match(line))]


def tables_without_data(tables: Mapping[str, int], toc: str) -> list[TableCount]:
    """Tables the backup counted that have no TABLE DATA entry in the dump."""
    entries = toc_data_entries(toc)
    missing = []
    for table, rows in sorted(tables.items()):
        try:
            schema, name = parse_qualified(table)
        except ValueError:
            schema, name = "", table
        prefix = f"{schema} {name} " if schema else f"{name} "
        if not any(e.startswith(prefix) for e in entries):
            missing.append(TableCount(table, rows, None, "no data in the dump"))
    return missing


# How pg_restore --list names each kind of the fingerprint: `DESC SCHEMA [TABLE] NAME OWNER`.
# A check constraint is part of its table's CREATE TABLE (no entry of its own), so only a
# restore shows whether it came back.
_TOC_DESC = {"index": "INDEX", "primary key": "CONSTRAINT", "unique constraint": "CONSTRAINT",
             "exclusion constraint": "CONSTRAINT", "foreign key": "FK CONSTRAINT",
             "trigger": "TRIGGER", "sequence": "SEQUENCE"}
_TOC_ENTRY = re.compile(r"^\d+; \d+ \d+ (.*)$")


def unquote_ident(name: str) -> str:
    """`"患者_pkey"` → `患者_pkey` (quote_ident's quoting undone)."""
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name


def toc_prefix(obj: SchemaObject) -> str | None:
    """The start of the object's entry in `pg_restore --list`, or None (no entry of its own:
    a check constraint; or a kind this version does not know)."""
    desc = _TOC_DESC.get(obj.kind)
    if desc is None:
        return None
    try:
        schema, table = parse_qualified(obj.name if obj.kind == "sequence" else obj.table)
    except ValueError:
        return None
    if obj.kind == "sequence":
        return f"{desc} {schema} {table} "
    if obj.kind == "index":
        return f"{desc} {schema} {unquote_ident(obj.name)} "
    return f"{desc} {schema} {table} {unquote_ident(obj.name)} "


def schema_not_in_toc(schema: Iterable[SchemaObject], toc: str
                      ) -> tuple[int, list[SchemaMismatch]]:
    """(objects looked for, those without an entry) of the backup's fingerprint in the dump's
    table of contents: the quick verify's view of the schema (check constraints need a
    restore)."""
    entries = [m.group(1) + " " for line in toc.splitlines() if (m := _TOC_ENTRY.match(line))]
    looked, missing = 0, []
    for obj in sorted(schema, key=lambda o: o.key):
        if (prefix := toc_prefix(obj)) is None:
            continue
        looked += 1
        if not any(e.startswith(prefix) for e in entries):
            missing.append(SchemaMismatch(*obj.key, "not in the dump"))
    return looked, missing


def toc_header(toc: str, key: str) -> str | None:
    """A `;     Key: value` header line of `pg_restore --list` (e.g. "Dumped from …")."""
    for line in toc.splitlines():
        stripped = line.lstrip(";").strip()
        if stripped.startswith(key + ":"):
            return stripped[len(key) + 1:].strip()
    return None


def restic_read_damaged(stderr: str) -> bool:
    """A failed `restic dump` that read damaged data (bad data), not one that could not
    start or reach the repository (not proven)."""
    return bool(_DAMAGED.search(stderr))


def snapshot_gone(stderr: str) -> bool:
    """restic was asked for a snapshot id the repository does not hold."""
    return bool(_GONE.search(stderr))
