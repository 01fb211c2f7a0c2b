"""A PostgreSQL dump restored into another server's PostgreSQL (`restore --databases`, §11).

Everything runs on the replacement server, through its Runner (the recovery's own SSH
connection), as libpq client programs connecting with the admin's `--target-dsn` (a
key=value conninfo without a password: ~/.pgpass or peer authentication on the target):

1. `look` (before anything runs): may the role create databases, which `<name>_restored`
   already exist (never restored over: exit 2 by the caller), the server's and pg_restore's
   versions;
2. `restore`: `CREATE DATABASE "<name>_restored"`; the stream helper's `restore` mode pipes
   the target's own `restic dump` through SHA-256 into `pg_restore --dbname` (the password
   in the helper's stdin header, the dump never on the target's disk); every table's rows
   counted with the backup's own statement (`streamer.COUNT_SQL`) and compared with the
   manifest, so is the schema fingerprint (SPEC §10a: `streamer_schema.SCHEMA_SQL`,
   `compare.judge_schema`; definitions compared only on the dump's own major version); the
   job's `checks` each in a read-only transaction that is rolled back.

Builds a `DatabaseProof` (mode full) by the rules of a full verify (a pg_restore that exits
non-zero is bad data with its redacted error, rows and schema still compared); decides no
exit code.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from backupctl.config.dsn import ConninfoError, conninfo_pairs
from backupctl.databases import compare, streamer, streamer_schema
from backupctl.databases.helper import helper_argv, helper_deadline, parse_reply
from backupctl.databases.model import DumpManifest
from backupctl.databases.reading import Draft, Read, judge_read
from backupctl.databases.redact import redact
from backupctl.execute import Result, Runner, Secret
from backupctl.state.database_proof import DatabaseCheck, DatabaseProof, SchemaObject

SUFFIX = "_restored"
DEFAULT_DSN = "dbname=postgres"  # libpq's defaults on the target: its socket, the SSH user
PSQL = ["psql", "-X", "-q", "-A", "-t", "--no-password", "-v", "ON_ERROR_STOP=1"]


def restored_name(name: str) -> str:
    """The new database a dump is restored into: never the live one's name."""
    return f"{name}{SUFFIX}"


def dsn_problem(dsn: str) -> str | None:
    """Why `--target-dsn` cannot be used (never quoting a value), or None."""
    if "://" in dsn.split("=", 1)[0]:  # a URI (postgresql://u:pw@h/db): it is not echoed
        return ("is a URI; write it as libpq key=value words (host=/var/run/postgresql "
                "dbname=postgres user=NAME), never with a password")
    try:
        keys = [key for key, _ in conninfo_pairs(dsn)]
    except ConninfoError as exc:
        return f"not a libpq key=value connection string ({exc})"
    # sslpassword (the client key's) is a password too; a keyword libpq does not know
    # (PASSWORD) would fail there with the whole string in the error: refused here.
    if any("password" in key.lower() for key in keys):
        return ("holds a password; put it in ~/.pgpass of the SSH user on the target (or use "
                "peer authentication): it would show in the target's process list")
    return None


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def with_dbname(dsn: str, dbname: str) -> str:
    """`dsn` connecting to `dbname` instead of its own database."""
    pairs = [(k, v) for k, v in conninfo_pairs(dsn) if k != "dbname"]
    return " ".join(f"{k}={_quoted(v)}" for k, v in [*pairs, ("dbname", dbname)])


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


@dataclass(frozen=True)
class Looked:
    """What the target's PostgreSQL says before anything runs."""

    user: str
    createdb: bool
    server_major: int
    existing: tuple[str, ...]  # of the names asked for
    pg_restore_major: int | None  # None: pg_restore is not installed on the target


def _psql(runner: Runner, dsn: str, *sql: str, timeout: float | None) -> Result:
    argv = [*PSQL, f"--dbname={dsn}"]
    for statement in sql:
        argv += ["-c", statement]
    return runner.run(argv, timeout=timeout)


def failed(result: Result) -> str:
    """A failed client program, redacted (PostgreSQL's messages can quote data)."""
    how = ("timed out" if result.timed_out else "not installed" if result.returncode == 127
           else f"exit {result.returncode}")
    text = redact(result.stderr, lines=3)
    return f"{how}: {text}" if text else how


def look(runner: Runner, dsn: str, names: Sequence[str], *, timeout: float | None) -> Looked:
    """The role's rights, the server's version, which of `names` exist, pg_restore's major
    version; ValueError (its message safe to show) when the server cannot be asked."""
    wanted = ", ".join(_literal(n) for n in names) or "NULL"
    sql = ("SELECT json_build_object('user', current_user, 'createdb', "  # noqa: S608 (quoted)
           "r.rolcreatedb OR r.rolsuper, 'version', "
           "current_setting('server_version_num')::int, 'existing', (SELECT "
           f"coalesce(json_agg(datname), '[]') FROM pg_database WHERE datname IN ({wanted})))"
           " FROM pg_roles r WHERE r.rolname = current_user")
    result = _psql(runner, dsn, sql, timeout=timeout)
    if not result.ok:
        raise ValueError(f"psql on the target could not ask its PostgreSQL ({failed(result)})")
    data = json.loads(result.stdout.decode().strip().splitlines()[-1])
    version = runner.run(["pg_restore", "--version"], timeout=timeout)
    found = re.search(rb"(\d+)(?:\.\d+)?", version.stdout) if version.ok else None
    return Looked(str(data["user"]), bool(data["createdb"]), int(data["version"]) // 10000,
                  tuple(str(n) for n in data["existing"]),
                  int(found.group(1)) if found else None)


def restore(runner: Runner, manifest: DumpManifest, *, dsn: str, repo_url: str,
            password: Secret, snapshot_id: str, checks: Sequence[str], server_major: int,
            timeout: float | None) -> DatabaseProof:
    """Restore the dump into a new `<name>_restored` on the target (its PostgreSQL of
    `server_major`) and prove it there."""
    draft = Draft(manifest, "full", snapshot_id)
    clock = time.monotonic()
    name = restored_name(manifest.database)
    created = _psql(runner, dsn, f"CREATE DATABASE {_ident(name)} TEMPLATE template0",
                    timeout=timeout)
    draft.timings_ms["create"] = _ms(clock)
    if not created.ok:
        draft.not_proven = f"CREATE DATABASE {name} on the target failed ({failed(created)})"
    elif _piped(runner, draft, dsn=with_dbname(dsn, name), repo_url=repo_url,
                password=password, timeout=timeout):
        draft.restore_ms = _ms(clock)
        _compare(runner, draft, with_dbname(dsn, name), checks=checks,
                 server_major=server_major, timeout=timeout)
    draft.timings_ms["total"] = _ms(clock)
    return draft.done()


def _piped(runner: Runner, draft: Draft, *, dsn: str, repo_url: str, password: Secret,
           timeout: float | None) -> bool:
    """The helper on the target: restic dump → SHA-256 → pg_restore --dbname."""
    manifest = draft.manifest
    head = json.dumps({"mode": "restore", "repo": repo_url, "password": password.reveal(),
                       "snapshot": draft.snapshot_id, "path": manifest.path, "dsn": dsn,
                       "restic": "restic", "deadline": helper_deadline(timeout)}).encode()
    started = time.monotonic()
    result = runner.run(helper_argv(), stdin=head, timeout=timeout)
    draft.timings_ms["pg_restore"] = _ms(started)
    record = parse_reply(result)
    if record is None or not record.get("ok"):
        why = (f"{record.get('error')}: {redact(str(record.get('stderr') or ''))}" if record
               else result.describe())
        draft.not_proven = f"could not restore the dump on the target: {why}"
        return False
    read = Read(str(record["sha256"]), int(record["size"]),
                Result(result.argv, int(record["restic_rc"]),
                       stderr=str(record["restic_stderr"]), timed_out=bool(record["stopped"]),
                       host=result.host))
    if not judge_read(manifest, draft, read):
        return False
    code, errors = int(record["list_rc"]), redact(str(record["list_stderr"]), lines=6)
    if code < 0 or code >= 126 or record["stopped"]:  # killed, or never started
        draft.not_proven = (f"pg_restore on the target did not restore the dump (exit "
                            f"{code}); its tables were not compared: {errors}")
        return False
    if code != 0:  # as a full verify: not the database that was backed up
        draft.restore_error = f"pg_restore on the target exited {code}: {errors}"
    return True


def _json(result: Result) -> Any:
    """psql -A -t's one value (BEGIN, SET and ROLLBACK print nothing under -q)."""
    return json.loads(result.stdout.decode("utf-8").strip())


def _compare(runner: Runner, draft: Draft, dsn: str, *, checks: Sequence[str],
             server_major: int, timeout: float | None) -> None:
    clock = time.monotonic()
    counted = _psql(runner, dsn, "BEGIN READ ONLY", streamer.COUNT_SQL, "ROLLBACK",
                    timeout=timeout)
    if not counted.ok:
        draft.not_proven = f"counting the restored rows on the target failed ({failed(counted)})"
        return
    restored = {str(table): int(n) for table, n in _json(counted)}
    draft.timings_ms["count"] = _ms(clock)
    draft.tables_checked = len(set(draft.manifest.tables) & set(restored))
    draft.rows_restored = sum(restored.values())
    draft.mismatches = compare.compare_counts(draft.manifest.tables, restored)
    compare_schema(runner, draft, dsn, server_major=server_major, timeout=timeout)
    draft.checks = [_check(runner, dsn, i, text, timeout) for i, text in enumerate(checks)]


def compare_schema(runner: Runner, draft: Draft, dsn: str, *, server_major: int,
                   timeout: float | None) -> None:
    """The schema fingerprint (SPEC §10a: per table its indexes, constraints and triggers,
    every sequence) of the restored database, read with the very statement the backup took
    it with, against the manifest's."""
    manifest = draft.manifest
    read = _psql(runner, dsn, "BEGIN READ ONLY", streamer_schema.SEARCH_PATH,
                 streamer_schema.SCHEMA_SQL, "ROLLBACK", timeout=timeout)
    if not read.ok:
        draft.problems.append(f"reading the restored schema on the target failed "
                              f"({failed(read)})")
        return
    found = tuple(SchemaObject(*map(str, o)) for o in _json(read))
    source = manifest.server_version // 10000 if manifest.server_version else None
    other = None if source in (None, server_major) else (
        f"dumped from PostgreSQL {source}, restored on the target's {server_major}, which may "
        "print a definition differently")
    draft.take_schema(compare.judge_schema(manifest.schema, found, names_only=other))


def _check(runner: Runner, dsn: str, index: int, text: str,
           timeout: float | None) -> DatabaseCheck:
    """One of the job's checks, read-only and rolled back; only `t` passes (psql -A -t)."""
    name = f"check {index + 1}"
    ms = int((timeout or 3600) * 1000)
    result = _psql(runner, dsn, "BEGIN READ ONLY", f"SET LOCAL statement_timeout = {ms}",
                   text, "ROLLBACK", timeout=timeout)
    if not result.ok:
        return DatabaseCheck(name, text, False, "error (the message may quote data, so it is "
                             "not shown; run the check by hand on the restored database)")
    lines = result.stdout.decode("utf-8", "replace").splitlines()
    value = lines[0].strip() if lines else None
    if value == "t":
        return DatabaseCheck(name, text, True)
    return DatabaseCheck(name, text, False, "returned false" if value == "f" else
                         "returned no row or NULL; a check must return true"
                         if not value else "did not return a boolean")


def _ms(since: float) -> int:
    return round((time.monotonic() - since) * 1000)
