"""Restore-test side: prove a database dump from the repository (on the orchestrator).

quick: the dump streams out of the repository (`restic dump`), its SHA-256 is compared with
the one recorded at backup, and (PostgreSQL) `pg_restore --list` reads its table of
contents: every table the backup counted must have its data in the dump. Nothing is
written to disk.

full: the dump is read into the throwaway server's directory (SHA-256 compared on the
way; a file of backupctl's user the server cannot touch) and restored into a throwaway
PostgreSQL server (cluster.py) running as `restore_user` with `pg_restore --jobs 2
--no-owner --no-privileges` as the unprivileged role that owns the restored database; as
that role every table's rows are counted and compared with the backup's counts, and each
of the job's `checks` must return true inside a read-only transaction that is rolled back
(statement_timeout set). The time of reading + restoring is measured (it counts toward
the RTO). The server is stopped and the directory wiped whatever happens. A dump whose
code needs more than that role may do (`COPY ... TO PROGRAM`, a server file) fails in
pg_restore: not proven, never a pass. sqlite: sqlite.py.

The functions return `DatabaseFindings` and never decide an exit code: the engine maps
`bad_data` (changed bytes, a table's rows differ, a failed check) to exit 3 and anything
not proven to exit 1. A PostgreSQL on the orchestrator older than the dump's is "not
proven", never bad data.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backupctl.databases import account, compare, sqlite, streamer
from backupctl.databases.cluster import Cluster, ClusterError, PgBin, find_pg_bin, throwaway
from backupctl.databases.dump import helper_argv, helper_deadline, parse_reply
from backupctl.databases.model import CheckOutcome, DatabaseFindings, DumpManifest
from backupctl.databases.reading import Draft, Read, enough_space, judge_read, read_dump
from backupctl.databases.redact import redact
from backupctl.errors import UsageError
from backupctl.execute import Result, Runner, Secret
from backupctl.restic import commands as restic


def prove_quick(runner: Runner, manifest: DumpManifest, *, repo_url: str, password: Secret,
                timeout: float | None, snapshot: str | None = None,
                pg_bin: Path | None = None) -> DatabaseFindings:
    """Stream the dump out of the repository, compare its SHA-256, list it (pg_restore).

    `snapshot`: the dump's snapshot in this repository when it is a copy (restic copy gives
    it a new id; its `original` is `manifest.snapshot_id`).
    """
    draft = Draft(manifest, "quick", snapshot or manifest.snapshot_id)
    clock = time.monotonic()
    if manifest.kind == "sqlite":
        sqlite.quick(runner, manifest, draft, repo_url=repo_url, password=password,
                     timeout=timeout)
    else:
        _quick_postgresql(runner, manifest, draft, repo_url=repo_url, password=password,
                          timeout=timeout, pg_bin=pg_bin)
    draft.timings["total"] = _ms(clock)
    return draft.done()


def _local_postgresql(runner: Runner, draft: Draft, pg_bin: Path | None) -> PgBin | None:
    """The orchestrator's PostgreSQL (recorded in the draft), or None: not proven."""
    try:
        pg = find_pg_bin(runner, pg_bin)
    except ClusterError as exc:
        draft.not_proven = str(exc)
        return None
    draft.local_version = pg.version
    return pg


def _quick_postgresql(runner: Runner, manifest: DumpManifest, draft: Draft, *, repo_url: str,
                      password: Secret, timeout: float | None, pg_bin: Path | None) -> None:
    if (pg := _local_postgresql(runner, draft, pg_bin)) is None:
        return
    head = json.dumps({"mode": "list", "repo": repo_url, "password": password.reveal(),
                       "snapshot": draft.snapshot_id, "path": manifest.path,
                       "pg_bin": str(pg.path), "restic": restic.RESTIC,
                       "deadline": helper_deadline(timeout)}).encode()
    # The helper pipes `restic dump` through SHA-256 into `pg_restore --list` (the Runner
    # runs one process; the password reaches it on stdin, restic through a pipe).
    result = runner.run(helper_argv(sys.executable), stdin=head, timeout=timeout)
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


def prove_full(runner: Runner, manifest: DumpManifest, *, checks: Sequence[str],
               repo_url: str, password: Secret, scratch_dir: Path, timeout: float | None,
               snapshot: str | None = None, pg_bin: Path | None = None,
               restore_user: str = account.DEFAULT_USER) -> DatabaseFindings:
    """Restore the dump into a throwaway server, compare every table's rows, run `checks`.

    `restore_user`: the system user the server runs as (a problem with it: not proven)."""
    draft = Draft(manifest, "full", snapshot or manifest.snapshot_id)
    clock = time.monotonic()
    if manifest.kind == "sqlite":
        sqlite.full(runner, manifest, draft, checks=checks, repo_url=repo_url,
                    password=password, scratch_dir=scratch_dir, timeout=timeout)
    else:
        _full_postgresql(runner, manifest, draft, checks=checks, repo_url=repo_url,
                         password=password, scratch_dir=scratch_dir, timeout=timeout,
                         pg_bin=pg_bin, restore_user=restore_user)
    draft.timings["total"] = _ms(clock)
    return draft.done()


def _full_postgresql(runner: Runner, manifest: DumpManifest, draft: Draft, *,
                     checks: Sequence[str], repo_url: str, password: Secret,
                     scratch_dir: Path, timeout: float | None, pg_bin: Path | None,
                     restore_user: str) -> None:
    if (pg := _local_postgresql(runner, draft, pg_bin)) is None:
        return
    if (too_old := version_gap(manifest, pg)) is not None:
        draft.not_proven = too_old
        return
    if not enough_space(scratch_dir, manifest, draft):
        return
    try:
        scratch_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        user = account.require(restore_user, scratch_dir=scratch_dir, runner=runner)
    except (UsageError, OSError) as exc:
        draft.not_proven = str(exc)
        return
    try:
        with throwaway(runner, scratch_dir=scratch_dir, job=manifest.job, pg=pg, user=user,
                       timeout=timeout, problems=draft.problems,
                       timings=draft.timings) as cluster:
            _restore_and_compare(runner, manifest, draft, cluster, checks=checks,
                                 repo_url=repo_url, password=password, timeout=timeout)
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


def _restore_and_compare(runner: Runner, manifest: DumpManifest, draft: Draft,
                         cluster: Cluster, *, checks: Sequence[str], repo_url: str,
                         password: Secret, timeout: float | None) -> None:
    import psycopg

    cluster.create_database(manifest.database)
    # In the 0711 directory of backupctl's user, 0600: the server cannot rewrite it.
    target = cluster.root / f"{manifest.database}.pgdump"
    clock = time.monotonic()
    if not read_dump(runner, manifest, draft, repo_url=repo_url, password=password,
                     timeout=timeout, target=target):
        return
    draft.timings["read_dump"] = _ms(clock)
    restore_clock = time.monotonic()
    result = runner.run([cluster.pg.tool("pg_restore"), "--jobs", "2", "--no-owner",
                         "--no-privileges", *cluster.client_args(), "--dbname",
                         manifest.database, str(target)], timeout=timeout)
    draft.timings["pg_restore"] = _ms(restore_clock)
    draft.restore_ms = _ms(clock)
    if not result.ok:
        how = "timed out" if result.timed_out else f"exit {result.returncode}"
        draft.not_proven = (f"pg_restore {cluster.pg.version} did not restore the dump "
                            f"cleanly ({how}); its tables were not compared: "
                            f"{redact(result.stderr, lines=6)}")
        return
    target.unlink()  # the restored database is the copy now; free the space early
    clock = time.monotonic()
    # The restore role, never the superuser: the restored functions, triggers and
    # constraints run as that role; read-only, so a check cannot change the copy either.
    with psycopg.connect(cluster.conninfo(manifest.database)) as conn:
        conn.read_only = True
        restored = _count(conn)
        draft.timings["count"] = _ms(clock)
        draft.tables_checked = len(set(manifest.tables) & set(restored))
        draft.rows_restored = sum(restored.values())
        draft.mismatches = compare.compare_counts(manifest.tables, restored)
        clock = time.monotonic()
        draft.checks = [_check(conn, i, text, timeout) for i, text in enumerate(checks)]
        draft.timings["checks"] = _ms(clock)


def _count(conn: Any) -> dict[str, int]:
    """Every table's rows, with the very statement the backup counted them with."""
    with conn.transaction():
        row = conn.execute(streamer.COUNT_SQL).fetchone()
    return {str(name): int(count) for name, count in (row[0] if row else [])}


def _check(conn: Any, index: int, text: str, timeout: float | None) -> CheckOutcome:
    import psycopg

    name = f"check {index + 1}"
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute(f"SET LOCAL statement_timeout = {_statement_ms(timeout)}")
            row = conn.execute(text).fetchone()
    except psycopg.Error as exc:
        return CheckOutcome(name, text, False, sql_error(exc))
    passed, detail = compare.check_verdict(tuple(row) if row is not None else None,
                                           kind="postgresql")
    return CheckOutcome(name, text, passed, detail)


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
