"""The stream helper, part zero: the schema fingerprint of a database (SPEC §10a).

Sent first of the helper's parts as one program text (`python3 -I -c`, helper.helper_source),
so it needs only the standard library of python3 >= 3.6. The orchestrator imports it too and
reads a restored copy's fingerprint with the very same statement (kinds/postgresql.py,
kinds/sqlite.py), so both sides print every definition alike.

A fingerprint is a list of [kind, table, name, digest]: per table its indexes, constraints
(kinds `primary key`, `unique constraint`, `foreign key`, `check constraint`, `exclusion
constraint`) and triggers, and every sequence, with the first 16 hex digits of the SHA-256 of
its definition (never the definition itself: a CHECK may quote a value). Left out, like the
row counts leave them out: temporary tables, objects of extensions; and what PostgreSQL
derives from another recorded object rather than pg_dump restoring it by itself (the index
behind a primary key, unique or exclusion constraint, which is the constraint; a partition's
copy of its parent's index, foreign key or trigger; a foreign key's internal triggers; NOT
NULL, which is part of the table).
"""

import hashlib
from typing import Any

# Definitions are printed with search_path = pg_catalog (set by the caller in the same
# transaction: SEARCH_PATH), so every user object is written schema-qualified alike on the
# source and on the restored copy, whichever role or search_path each session has.
SEARCH_PATH = "SET LOCAL search_path = pg_catalog"
# Catalog columns used exist in PostgreSQL 13 to 17 (tgparentid: 13; pg_sequence: 10).
SCHEMA_SQL = r"""
WITH t AS (
  SELECT c.oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qualified
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'm') AND c.relpersistence <> 't'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                    AND d.objid = c.oid AND d.deptype = 'e')
), objects AS (
  SELECT 'index' AS kind, t.qualified AS tab, quote_ident(x.relname) AS name,
         pg_get_indexdef(i.indexrelid) AS def
  FROM t JOIN pg_index i ON i.indrelid = t.oid JOIN pg_class x ON x.oid = i.indexrelid
  WHERE NOT x.relispartition
    AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = t.oid
                    AND k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'))
  UNION ALL
  SELECT CASE k.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique constraint'
           WHEN 'f' THEN 'foreign key' WHEN 'c' THEN 'check constraint'
           ELSE 'exclusion constraint' END, t.qualified, quote_ident(k.conname),
         pg_get_constraintdef(k.oid)
  FROM t JOIN pg_constraint k ON k.conrelid = t.oid
  WHERE k.contype IN ('p', 'u', 'f', 'c', 'x') AND k.conparentid = 0
  UNION ALL
  SELECT 'trigger', t.qualified, quote_ident(g.tgname), pg_get_triggerdef(g.oid)
  FROM t JOIN pg_trigger g ON g.tgrelid = t.oid
  WHERE NOT g.tgisinternal AND g.tgparentid = 0
  UNION ALL
  SELECT 'sequence', '', quote_ident(n.nspname) || '.' || quote_ident(s.relname),
         concat_ws(' ', 'AS', format_type(q.seqtypid, NULL), 'INCREMENT', q.seqincrement,
                   'MINVALUE', q.seqmin, 'MAXVALUE', q.seqmax, 'START', q.seqstart,
                   'CACHE', q.seqcache, CASE WHEN q.seqcycle THEN 'CYCLE' END,
                   (SELECT 'OWNED BY ' || d.refobjid::regclass::text || '.'
                           || quote_ident(a.attname)
                    FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid
                         AND a.attnum = d.refobjsubid
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid
                      AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                    LIMIT 1))
  FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
       JOIN pg_sequence q ON q.seqrelid = s.oid
  WHERE s.relkind = 'S' AND s.relpersistence <> 't'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\_temp\_%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                    AND d.objid = s.oid AND d.deptype = 'e')
)
SELECT coalesce(json_agg(json_build_array(kind, tab, name,
         left(encode(sha256(convert_to(def, 'UTF8')), 'hex'), 16))
         ORDER BY kind, tab, name), '[]')
FROM objects;
"""


def digest_of(definition: str) -> str:
    """What SCHEMA_SQL computes in SQL: the first 16 hex digits of the definition's SHA-256."""
    return hashlib.sha256(definition.encode("utf-8")).hexdigest()[:16]


def sqlite_schema(conn: Any) -> "list[list[str]]":  # a string: python3.6 runs this
    """sqlite's fingerprint: every index and trigger written in the schema (an index sqlite
    makes itself for a PRIMARY KEY or UNIQUE has no statement: it is part of its table), each
    with the digest of its CREATE statement."""
    rows = conn.execute(
        "SELECT type, tbl_name, name, sql FROM sqlite_master WHERE type IN ('index', "
        "'trigger') AND sql IS NOT NULL ORDER BY type, tbl_name, name").fetchall()
    return [[str(kind), str(table), str(name), digest_of(str(sql))]
            for kind, table, name, sql in rows]
