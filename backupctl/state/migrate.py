"""Additive schema upgrades of the state database.

A state database made by an older backupctl gains the tables, columns and indexes added
since, in place, the first time the new version opens it. Additions are the only kind of
schema change backupctl makes, so they are the only kind done automatically: a new column
must be nullable or have a server default (existing rows get NULL/the default); anything
else stops with a clear error instead of guessing. Rows, and so the evidence chain, are
never rewritten.

A fingerprint of the schema is kept in `meta` (key `schema`): when it matches, opening the
database costs two queries (does `meta` exist, what does it say), not an inspection of every
table.
"""

from __future__ import annotations

import hashlib
import logging

from sqlalchemy import Connection, MetaData, inspect, select
from sqlalchemy.schema import CreateColumn

from backupctl.errors import BackupctlError
from backupctl.state.schema import meta

log = logging.getLogger(__name__)

SCHEMA_KEY = "schema"


class SchemaError(BackupctlError):
    """The state database's schema cannot be brought up to this version's."""


def fingerprint(metadata: MetaData) -> str:
    """SHA-256 over every table, column (type, nullability) and index of `metadata`."""
    parts = []
    for table in metadata.sorted_tables:
        parts += [f"{table.name}.{c.name}:{c.type!r}:{c.nullable}" for c in table.columns]
        parts += [f"{table.name}@{i.name}:{','.join(c.name for c in i.columns)}"
                  for i in sorted(table.indexes, key=lambda i: str(i.name))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def upgrade(conn: Connection, metadata: MetaData) -> list[str]:
    """Create what `metadata` has and the database lacks; returns what was added.

    Runs inside the caller's (serialized) write transaction, so two processes starting at
    once do not both alter a table."""
    wanted = fingerprint(metadata)
    if inspect(conn).has_table(meta.name) and conn.execute(
            select(meta.c.value).where(meta.c.key == SCHEMA_KEY)).scalar() == wanted:
        return []
    metadata.create_all(conn)  # new tables, with their indexes
    added = _add_missing(conn, metadata)
    conn.execute(meta.delete().where(meta.c.key == SCHEMA_KEY))
    conn.execute(meta.insert().values(key=SCHEMA_KEY, value=wanted))
    if added:
        log.warning("state database upgraded: added %s", ", ".join(added))
    return added


def _add_missing(conn: Connection, metadata: MetaData) -> list[str]:
    inspector = inspect(conn)
    quote = conn.dialect.identifier_preparer
    added: list[str] = []
    for table in metadata.sorted_tables:
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            if not column.nullable and column.server_default is None:
                raise SchemaError(
                    f"state database: column {table.name}.{column.name} is missing and cannot "
                    "be added to existing rows (NOT NULL without a default); this database "
                    "was made by an incompatible backupctl version")
            ddl = CreateColumn(column).compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {quote.format_table(table)} ADD COLUMN {ddl}")
            added.append(f"column {table.name}.{column.name}")
        indexes = {i["name"] for i in inspector.get_indexes(table.name)}
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            if index.name not in indexes:
                index.create(conn)
                added.append(f"index {index.name}")
    return added
