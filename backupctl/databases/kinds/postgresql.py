"""PostgreSQL: dumped with pg_dump on the host, proven with pg_restore on the orchestrator.

Needs on the source host: psql and pg_dump (the helper's `postgresql` mode: counts every
table in the dump's own exported snapshot, `pg_dump --format=custom` into restic). Needs on
the orchestrator: initdb, pg_ctl, postgres and pg_restore of the same or a newer major
version (cluster.find_pg_bin), and the unprivileged `restore_user` for full proofs.

quick: the dump streams out of the repository (`restic dump`), its SHA-256 is compared with
the one recorded at backup, and `pg_restore --list` reads its table of contents: every table
the backup counted must have its data in the dump, and every index, constraint (but a check
constraint, which is inside its table's definition), trigger and sequence of the schema
fingerprint its entry. Nothing is written to disk.

full: the dump is read into the throwaway server's directory (SHA-256 compared on the
way; a file of backupctl's user the server cannot touch) and restored into a throwaway
PostgreSQL server (cluster.py) running as `restore_user` with `pg_restore --jobs 2
--no-owner --no-privileges` as the unprivileged role that owns the restored database; as
that role every table's rows are counted with the backup's own statement and compared, and
each of the job's `checks` must return true inside a read-only transaction that is rolled
back (statement_timeout set). The time of reading + restoring is measured (it counts toward
the RTO). The server is stopped and the directory wiped whatever happens. A dump whose code
needs more than that role may do (`COPY ... TO PROGRAM`, a server file) fails in
pg_restore. A PostgreSQL on the orchestrator older than the dump's is "not proven", never
bad data.

Schema, not only rows (SPEC §10a): the restored copy's schema fingerprint (`fingerprint`:
the backup's own statement, streamer_schema.SCHEMA_SQL) is compared with the one recorded
in the dump's snapshot (compare.judge_schema): a missing index, constraint, trigger or
sequence is bad data naming it; definitions are compared when the dump's server and the
orchestrator's have the same major version (another major may print one differently:
names only then, and the proof says so). A pg_restore that exits non-zero is bad data with
its redacted error, even when every row came back; the rows and the schema are still
compared, so the findings name what is missing. One that timed out, was killed or did not
start proved nothing: not proven.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backupctl.config.schema import Database
from backupctl.databases import account, compare, streamer, streamer_schema
from backupctl.databases.cluster import Cluster, ClusterError, PgBin, find_pg_bin, throwaway
from backupctl.databases.helper import helper_argv, helper_deadline, parse_reply
from backupctl.databases.kinds.protocol import Proving
from backupctl.databases.model import DumpManifest
from backupctl.databases.reading import Draft, Read, enough_space, judge_read, read_dump
from backupctl.databases.redact import redact
from backupctl.errors import UsageError
from backupctl.execute import Result, Runner, program
from backupctl.restic import commands as restic
from backupctl.state.database_proof import DatabaseCheck, SchemaObject

SUFFIX = "pgdump"
HELPER_MODE = "postgresql"
LIST_MODE = "list"  # the helper's quick proof: restic dump → SHA-256 → pg_restore --list
RESTORE_USER = True
ONTO_TARGET = True  # restore --databases: databases/onto.py on the target's server
QUICK_PLAN = ("pg_restore --list (every counted table has its data, every recorded index, "
              "constraint, trigger and sequence its entry)")
FULL_PLAN = "restored into a throwaway PostgreSQL (pg_restore --jobs 2)"


def dump_plan(database: Database, backup: str) -> list[str]:
    options = "".join(f" {o}" for o in database.options)
    return ["  psql: BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
            "SELECT pg_export_snapshot(); count every table",
            f"  pg_dump --format=custom --no-password --snapshot=ID --dbname=DSN{options}",
            f"  | sha256 | {backup}"]


def restore_commands(database: str, dump: str) -> list[tuple[str, str]]:
    """createdb, then pg_restore (PostgreSQL's password: ~/.pgpass or peer authentication)."""
    return [(shlex.join(["createdb", "--template=template0", database]), "db_createdb"),
            (shlex.join(["pg_restore", "--jobs", "2", "--no-owner", f"--dbname={database}",
                         dump]), "db_restore")]


def _local_postgresql(runner: Runner, draft: Draft, pg_bin: Path | None) -> PgBin | None:
    """The orchestrator's PostgreSQL (recorded in the draft), or None: not proven."""
    try:
        pg = find_pg_bin(runner, pg_bin)
    except ClusterError as exc:
        draft.not_proven = str(exc)
        return None
    draft.local_version = pg.version
    return pg


def quick(runner: Runner, draft: Draft, *, proving: Proving) -> None:
    if (pg := _local_postgresql(runner, draft, proving.pg_bin)) is None:
        return
    manifest = draft.manifest
    head = json.dumps({"mode": LIST_MODE, "repo": proving.repo_url,
                       "password": proving.password.reveal(), "snapshot": draft.snapshot_id,
                       "path": manifest.path, "pg_bin": str(pg.path),
                       "restic": program(runner, restic.RESTIC),  # the configured one
                       "deadline": helper_deadline(proving.timeout)}).encode()
    # The helper pipes `restic dump` through SHA-256 into `pg_restore --list` (the Runner
    # runs one process; the password reaches it on stdin, restic through a pipe).
    result = runner.run(helper_argv(sys.executable), stdin=head, timeout=proving.timeout)
    record = parse_reply(result)
    if record is None or not record.get("ok"):
        why = (f"{record.get('error')}: {redact(str(record.get('stderr') or ''))}" if record
               else result.describe())
        draft.not_proven = f"could not read the dump from the repository: {why}"
        return
    read = Read(str(record["sha256"]), int(record["size"]),
                Result(result.argv, int(record["restic_rc"]),
                       stderr=str(record["restic_stderr"]), timed_out=bool(record["stopped"]),
                       host=result.host))
    if not judge_read(manifest, draft, read):
        return
    toc = str(record["list"])
    if record["list_rc"] != 0:
        draft.not_proven = (f"pg_restore --list ({pg.version}) could not read the dump: "
                            f"{redact(str(record['list_stderr']), lines=3)}")
        return
    draft.mismatches = compare.tables_without_data(manifest.tables, toc)
    draft.tables_checked = len(manifest.tables)
    if manifest.schema is not None:  # every object of the fingerprint has its entry
        draft.schema_checked, draft.schema_mismatches = compare.schema_not_in_toc(
            manifest.schema, toc)


def full(runner: Runner, draft: Draft, *, proving: Proving, scratch_dir: Path,
         checks: Sequence[str]) -> None:
    manifest = draft.manifest
    if (pg := _local_postgresql(runner, draft, proving.pg_bin)) is None:
        return
    if (too_old := version_gap(manifest, pg)) is not None:
        draft.not_proven = too_old
        return
    if not enough_space(scratch_dir, manifest, draft):
        return
    try:
        scratch_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        user = account.require(proving.restore_user, scratch_dir=scratch_dir, runner=runner)
    except (UsageError, OSError) as exc:
        draft.not_proven = str(exc)
        return
    try:
        with throwaway(runner, scratch_dir=scratch_dir, job=manifest.job, pg=pg, user=user,
                       timeout=proving.timeout, problems=draft.problems,
                       timings=draft.timings_ms) as cluster:
            _restore_and_compare(runner, draft, cluster, proving=proving, checks=checks)
    except ClusterError as exc:
        draft.not_proven = str(exc)


def version_gap(manifest: DumpManifest, pg: PgBin) -> str | None:
    """Why this PostgreSQL cannot prove the dump (older major than the dump's), or None."""
    source = manifest.source_major
    if source is None or source <= pg.major:
        return None
    return (f"the dump of {manifest.database} comes from PostgreSQL {source} "
            f"(server_version_num {manifest.server_version}, pg_dump {manifest.dump_version}) "
            f"but the orchestrator's newest PostgreSQL is {pg.version}: install PostgreSQL "
            f"{source} or newer on the orchestrator; nothing was restored")


def _restore_and_compare(runner: Runner, draft: Draft, cluster: Cluster, *, proving: Proving,
                         checks: Sequence[str]) -> None:
    import psycopg

    manifest = draft.manifest
    cluster.create_database(manifest.database)
    # In the 0711 directory of backupctl's user, 0600: the server cannot rewrite it.
    target = cluster.root / f"{manifest.database}.{SUFFIX}"
    clock = time.monotonic()
    if not read_dump(runner, manifest, draft, repo_url=proving.repo_url,
                     password=proving.password, timeout=proving.timeout, target=target):
        return
    draft.timings_ms["read_dump"] = _ms(clock)
    restore_clock = time.monotonic()
    result = runner.run([cluster.pg.tool("pg_restore"), "--jobs", "2", "--no-owner",
                         "--no-privileges", *cluster.client_args(), "--dbname",
                         manifest.database, str(target)], timeout=proving.timeout)
    draft.timings_ms["pg_restore"] = _ms(restore_clock)
    draft.restore_ms = _ms(clock)
    if not restore_failed(draft, result, version=cluster.pg.version):
        return
    target.unlink()  # the restored database is the copy now; free the space early
    clock = time.monotonic()
    # The restore role, never the superuser: the restored functions, triggers and
    # constraints run as that role; read-only, so a check cannot change the copy either.
    with psycopg.connect(cluster.conninfo(manifest.database)) as conn:
        conn.read_only = True
        restored = count_rows(conn)
        draft.timings_ms["count"] = _ms(clock)
        draft.tables_checked = len(set(manifest.tables) & set(restored))
        draft.rows_restored = sum(restored.values())
        draft.mismatches = compare.compare_counts(manifest.tables, restored)
        draft.take_schema(compare.judge_schema(manifest.schema, fingerprint(conn),
                                               names_only=_other_major(manifest, cluster.pg)))
        clock = time.monotonic()
        draft.checks = [_check(conn, i, text, proving.timeout) for i, text in enumerate(checks)]
        draft.timings_ms["checks"] = _ms(clock)


def restore_failed(draft: Draft, result: Result, *, version: str) -> bool:
    """False when pg_restore proved nothing (timed out, killed, did not start: not proven);
    else True, with a non-zero exit recorded as bad data (its redacted error): the rows may
    all be back, yet the restore is not the database that was backed up."""
    if result.ok:
        return True
    if result.timed_out or result.stopped or result.returncode < 0 or result.returncode >= 126:
        how = "timed out" if result.timed_out else f"exit {result.returncode}"
        draft.not_proven = (f"pg_restore {version} did not restore the dump ({how}); its "
                            f"tables were not compared: {redact(result.stderr, lines=6)}")
        return False
    draft.restore_error = (f"pg_restore {version} exited {result.returncode}: "
                           f"{redact(result.stderr, lines=6)}")
    return True


def _other_major(manifest: DumpManifest, pg: PgBin) -> str | None:
    """Why definitions cannot be compared (the dump's server had another major version than
    the restoring one), or None."""
    if manifest.server_version is None or manifest.server_version // 10000 == pg.major:
        return None
    return (f"dumped from PostgreSQL {manifest.server_version // 10000}, restored on "
            f"{pg.version}, which may print a definition differently")


def fingerprint(conn: Any) -> tuple[SchemaObject, ...]:
    """A restored copy's schema fingerprint, with the very statement the backup took it with
    (SPEC §10a; search_path pg_catalog: every name printed schema-qualified alike)."""
    with conn.transaction():
        conn.execute(streamer_schema.SEARCH_PATH)
        row = conn.execute(streamer_schema.SCHEMA_SQL).fetchone()
    return tuple(SchemaObject(*map(str, o)) for o in (row[0] if row else []))


def count_rows(conn: Any) -> dict[str, int]:
    """Every table's rows, with the very statement the backup counted them with."""
    with conn.transaction():
        row = conn.execute(streamer.COUNT_SQL).fetchone()
    return {str(name): int(count) for name, count in (row[0] if row else [])}


def _check(conn: Any, index: int, text: str, timeout: float | None) -> DatabaseCheck:
    import psycopg

    name = f"check {index + 1}"
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute(f"SET LOCAL statement_timeout = {_statement_ms(timeout)}")
            row = conn.execute(text).fetchone()
    except psycopg.Error as exc:
        return DatabaseCheck(name, text, False, sql_error(exc))
    passed, detail = compare.check_verdict(tuple(row) if row is not None else None)
    return DatabaseCheck(name, text, passed, detail)


def _statement_ms(timeout: float | None) -> int:
    """A check may run this long: the command timeout, else an hour."""
    return int((timeout or 3600) * 1000)


def sql_error(exc: Any) -> str:
    """A failed check's error: the SQLSTATE, and the message only when it is about the SQL
    itself (class 42: syntax, unknown table or column), never a value from the data."""
    state = getattr(exc, "sqlstate", None) or "?"
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if state.startswith("42") and primary:
        return f"error {state}: {primary}"
    return f"error {state} (the message may quote data, so it is not shown; run the check " \
           "by hand on a restored copy to see it)"


def _ms(since: float) -> int:
    return round((time.monotonic() - since) * 1000)
