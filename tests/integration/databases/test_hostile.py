"""A dump is hostile input (SPEC §10a, issue #24): restored on the orchestrator it runs its
functions, triggers and constraints, which must never run a program or touch a file there.

Real PostgreSQL 15 (the `postgres` fixture is the "hospital's" server), real restic, the real
throwaway server running as `restore_user`. The attack: a table owner on the source adds
`CHECK (h(id))`, where `h()` (SECURITY DEFINER, made by a superuser) runs
`COPY ... TO PROGRAM 'id > MARKER'` only on a server whose port is not the source's: the
backup is fine and the restore test would run the program. The marker's directory is
writable by everyone, so the program would succeed as any user it ran as.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from backupctl.databases import DumpManifest, dump_database, prove_full
from backupctl.execute import Secret
from backupctl.execute.local import LocalRunner
from tests.conftest import Workspace, restic
from tests.integration.databases.conftest import JOB, SourceDb, processes_under
from tests.integration.databases.test_cli import db_job
from tests.integration.verify.conftest import run_json


@pytest.fixture
def marker() -> Iterator[Path]:
    """Where a program run by the restored dump would write (any user could)."""
    where = Path(tempfile.mkdtemp(prefix="bk-pwned-"))
    where.chmod(0o777)
    yield where / "pwned"
    shutil.rmtree(where, ignore_errors=True)


def _program_function(source: SourceDb, marker: Path) -> None:
    """h(id): true; on any server but the source, first runs `id > MARKER`."""
    source.psql(f"""
        CREATE FUNCTION public.h(id int) RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
        AS $f$
        BEGIN
          IF current_setting('port') <> '{source.postgres.port}' THEN
            EXECUTE format('COPY (SELECT %L) TO PROGRAM %L', 'pwned', 'id > {marker}');
          END IF;
          RETURN true;
        END $f$""")


@contextlib.contextmanager
def table_owner(source: SourceDb) -> Iterator[str]:
    """A NOSUPERUSER role that may create tables in the source's public schema."""
    role = f"owner_{source.dbname}"
    source.psql(f"CREATE ROLE {role} LOGIN NOSUPERUSER; GRANT CREATE ON SCHEMA public TO {role}")
    try:
        yield role
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            source.psql(f"DROP OWNED BY {role}")
            SourceDb(source.postgres, "postgres").psql(f"DROP ROLE {role}")


def hostile_check(source: SourceDb, marker: Path, role: str) -> None:
    _program_function(source, marker)
    source.psql(f"SET ROLE {role}; CREATE TABLE public.vitals (id int PRIMARY KEY "
                "CHECK (public.h(id)), note text); INSERT INTO public.vitals "
                "SELECT i, 'ok' FROM generate_series(1, 3) i")
    assert not marker.exists()  # on the source itself h() does nothing


def test_a_hostile_check_constraint_runs_no_program_in_verify_or_drill(
        workspace: Workspace, scratch: Path, source_db: SourceDb, marker: Path) -> None:
    with table_owner(source_db) as role:
        hostile_check(source_db, marker, role)
        db_job(workspace, scratch, source_db)
        code, done, stderr = run_json(workspace, "backup", JOB)
        assert code == 0 and done["databases"][0]["error"] is None, (done, stderr)

        code, verified, stderr = run_json(workspace, "verify", JOB, "--mode", "full")
        drilled = run_json(workspace, "drill", JOB, "--yes", "--operator", "test")

    assert not marker.exists(), marker.read_text()
    # pg_restore could not load the table (the COPY TO PROGRAM was refused) and exited 1:
    # bad data (SPEC §10a), exit 3, with its redacted error; never "data proven good".
    assert code == 3, (verified, stderr)
    [proof] = verified["databases"]
    assert proof["result"] == "bad_data", proof
    assert proof["restore_error"].startswith("pg_restore ") and " exited 1: " in \
        proof["restore_error"]
    assert "pg_execute_server_program" in proof["restore_error"]
    assert proof["mismatches"] == [{"table": "public.vitals", "expected": 3, "restored": 0,
                                    "reason": "rows"}]
    assert drilled[0] == 3, drilled
    assert drilled[1]["databases"][0]["result"] == "bad_data"
    assert list(scratch.iterdir()) == [] and processes_under(scratch) == []


def _full(source: SourceDb, repo: Path, password: Secret, scratch: Path,
          checks: list[str]) -> dict[str, tuple[bool, str]]:
    dumped = dump_database(LocalRunner(), source.database(), job=JOB, repo_url=str(repo),
                           password=password, timeout=300)
    assert dumped.error is None, dumped.error
    found = prove_full(LocalRunner(), dumped.manifest(), checks=checks, repo_url=str(repo),
                       password=password, scratch_dir=scratch, timeout=300)
    assert list(scratch.iterdir()) == [] and processes_under(scratch) == []
    assert found.sha256_match and found.mismatches == [], found
    return {c.sql: (c.passed, c.detail) for c in found.checks}


def test_checks_run_as_a_role_without_superuser_in_a_read_only_transaction(
        source_db: SourceDb, repo: Path, password: Secret, scratch: Path,
        marker: Path) -> None:
    _program_function(source_db, marker)  # no constraint: the dump restores cleanly
    checks = {
        "SELECT NOT rolsuper AND NOT rolcreaterole AND NOT rolcreatedb FROM pg_roles "
        "WHERE rolname = current_user": (True, ""),
        "SELECT NOT pg_has_role(current_user, 'pg_execute_server_program', 'USAGE') AND "
        "NOT pg_has_role(current_user, 'pg_write_server_files', 'USAGE') AND NOT "
        "pg_has_role(current_user, 'pg_read_server_files', 'USAGE')": (True, ""),
        "SELECT public.h(1)": (False, "error 42501"),  # the program is refused
        "SELECT pg_read_file('/etc/hostname') IS NOT NULL": (False, "error 42501"),
        "WITH gone AS (DELETE FROM 患者 RETURNING 1) SELECT count(*) > 0 FROM gone":
            (False, "error 25006"),  # read-only transaction
        "CREATE TABLE planted (id int)": (False, "error 25006"),
        "SELECT count(*) = 3 FROM 患者": (True, ""),  # nothing above changed the copy
    }

    outcomes = _full(source_db, repo, password, scratch, list(checks))

    assert not marker.exists()
    for text, (passed, detail) in checks.items():
        assert outcomes[text][0] is passed, (text, outcomes[text])
        assert outcomes[text][1].startswith(detail), (text, outcomes[text])


def _sqlite_manifest(repo: Path, dump: Path) -> DumpManifest:
    """A hand-made SQL-text dump put into restic, as a host's helper would record it."""
    restic(repo, "backup", "--host", JOB, str(dump))
    [snap] = json.loads(restic(repo, "snapshots", "--json").stdout)
    data = dump.read_bytes()
    return DumpManifest(job=JOB, database="lab", kind="sqlite", snapshot_id=snap["short_id"],
                        path=str(dump), sha256=hashlib.sha256(data).hexdigest(),
                        size=len(data), tables={"t": 1})


@pytest.mark.parametrize("attack", [
    "ATTACH DATABASE '{marker}' AS evil; CREATE TABLE evil.x (i); INSERT INTO evil.x VALUES (1);",
    "CREATE TABLE seed (i); VACUUM INTO '{marker}';",
])
def test_a_hostile_sqlite_text_dump_writes_no_file_elsewhere(
        repo: Path, password: Secret, scratch: Path, marker: Path, tmp_path: Path,
        attack: str) -> None:
    dump = tmp_path / "lab.sql"
    dump.write_text(attack.format(marker=marker) + "\nBEGIN TRANSACTION;\nCREATE TABLE t (i);"
                    "\nINSERT INTO t VALUES (1);\nCOMMIT;\n")

    found = prove_full(LocalRunner(), _sqlite_manifest(repo, dump), checks=[],
                       repo_url=str(repo), password=password, scratch_dir=scratch,
                       timeout=300)

    assert not marker.exists()
    assert found.not_proven is not None and "did not load" in found.not_proven, found
    assert list(scratch.iterdir()) == []

