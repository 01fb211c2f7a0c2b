"""Pure helpers of the restore tests: compare row counts, judge a check's value, read a
pg_restore table of contents, classify a failed `restic dump`. No process, no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping

from backupctl.state.database_proof import TableCount

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
