"""PostgreSQL dumps into restic and their restore tests, against a real PostgreSQL 15 cluster,
real restic and a real sshd (issue #16)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from backupctl.databases import (
    DumpResult,
    cleanup_leftovers,
    dump_database,
    prove_full,
    prove_quick,
)
from backupctl.execute import Runner, Secret
from backupctl.execute.local import LocalRunner
from backupctl.execute.ssh import SshRunner
from backupctl.state.database_proof import TableCount
from tests.conftest import restic
from tests.integration.databases.conftest import (
    JAPANESE,
    JOB,
    SourceDb,
    Wrapper,
    processes_under,
    snapshots,
)
from tests.repo_damage import flip_byte_in_largest_pack

PGBENCH_TABLES = {"public.pgbench_accounts": 100000, "public.pgbench_branches": 1,
                  "public.pgbench_history": 0, "public.pgbench_tellers": 10}
PATIENTS = 'public."患者"'
CHECKS = ["SELECT count(*) = 100000 FROM pgbench_accounts",
          "SELECT 名前 = '山田太郎' FROM 患者 WHERE id = 1"]


def dump(source: SourceDb, repo: Path, password: Secret, *, runner: Runner | None = None,
         options: list[str] | None = None) -> DumpResult:
    return dump_database(runner or LocalRunner(), source.database(options=options), job=JOB,
                         repo_url=str(repo), password=password, timeout=300)


def test_dump_counts_every_table_and_a_full_prove_compares_them_all(
        source_db: SourceDb, repo: Path, password: Secret, scratch: Path) -> None:
    result = dump(source_db, repo, password)

    assert result.error is None, result.error
    assert result.tables == {**PGBENCH_TABLES, PATIENTS: len(JAPANESE)}
    assert result.path == f"/{JOB}.emr.pgdump"
    assert result.server_version is not None and result.server_version // 10000 == 15
    [snap] = snapshots(repo)
    assert snap["short_id"] == result.snapshot_id
    assert snap["paths"] == [f"/{JOB}.emr.pgdump"] and snap["hostname"] == JOB
    assert snap["tags"] == ["backupctl-db", "backupctl-db:emr"]
    stored = restic(repo, "dump", result.snapshot_id or "", result.path).stdout
    assert len(stored) == result.size

    findings = prove_full(LocalRunner(), result.manifest(), checks=CHECKS, repo_url=str(repo),
                          password=password, scratch_dir=scratch, timeout=300)

    assert findings.proven, findings
    assert findings.sha256_match is True
    assert findings.tables_checked == 5 and findings.mismatches == []
    assert findings.rows_expected == findings.rows_restored == 100011 + len(JAPANESE)
    # the schema fingerprint, taken beside the counts: pgbench's and 患者's primary keys
    assert result.schema is not None
    assert {(o.kind, o.name) for o in result.schema} == {
        ("primary key", name) for name in ("pgbench_accounts_pkey", "pgbench_branches_pkey",
                                           "pgbench_tellers_pkey", '"患者_pkey"')}
    assert findings.schema_checked == 4 and findings.schema_mismatches == []
    assert findings.schema_note is None and findings.restore_error is None
    assert [c.passed for c in findings.checks] == [True, True]
    assert findings.restore_ms is not None and findings.local_version is not None
    assert {"initdb", "server_start", "read_dump", "pg_restore", "count", "checks",
            "stop_wipe"} <= set(findings.timings_ms)
    assert list(scratch.iterdir()) == [] and processes_under(scratch) == []


def test_a_dump_over_ssh_passes_a_quick_prove(source_db: SourceDb, repo: Path,
                                              password: Secret, ssh_runner: SshRunner) -> None:
    result = dump(source_db, repo, password, runner=ssh_runner)

    assert result.error is None, result.error
    assert result.tables[PATIENTS] == len(JAPANESE)

    findings = prove_quick(LocalRunner(), result.manifest(), repo_url=str(repo),
                           password=password, timeout=300)

    assert findings.proven, findings
    assert findings.tables_checked == 5 and findings.mismatches == []
    assert findings.schema_checked == 4 and findings.schema_mismatches == []  # primary keys


def test_rows_left_out_by_the_options_are_a_mismatch_naming_the_table(
        source_db: SourceDb, repo: Path, password: Secret, scratch: Path) -> None:
    source_db.pgbench("-t", "20", "-c", "1")
    assert source_db.psql("SELECT count(*) FROM pgbench_history") == "20"
    result = dump(source_db, repo, password, options=["--exclude-table-data=pgbench_history"])
    assert result.error is None and result.tables["public.pgbench_history"] == 20

    full = prove_full(LocalRunner(), result.manifest(), checks=[], repo_url=str(repo),
                      password=password, scratch_dir=scratch, timeout=300)
    quick = prove_quick(LocalRunner(), result.manifest(), repo_url=str(repo),
                        password=password, timeout=300)

    assert full.mismatches == [TableCount("public.pgbench_history", 20, 0, "rows")]
    assert full.bad_data and not full.proven
    assert full.findings() == ["database emr, table public.pgbench_history: expected 20 rows, "
                               "restored 0"]
    assert quick.mismatches == [TableCount("public.pgbench_history", 20, None,
                                              "no data in the dump")]
    assert quick.bad_data
    assert list(scratch.iterdir()) == []


def test_a_check_that_returns_false_fails_naming_the_check(
        source_db: SourceDb, repo: Path, password: Secret, scratch: Path) -> None:
    result = dump(source_db, repo, password)
    checks = ["SELECT count(*) > 0 FROM 患者",
              "SELECT count(*) = 0 FROM pgbench_branches",
              "SELECT count(*) > 0 FROM no_such_table",
              "SELECT 名前 FROM 患者 WHERE id = 1",
              "SELECT id::int FROM 患者 WHERE 名前 = '山田太郎' AND 1 / 0 = 1"]

    findings = prove_full(LocalRunner(), result.manifest(), checks=checks, repo_url=str(repo),
                          password=password, scratch_dir=scratch, timeout=300)

    assert findings.mismatches == [] and findings.bad_data
    assert [(c.name, c.passed) for c in findings.checks] == [
        ("check 1", True), ("check 2", False), ("check 3", False), ("check 4", False),
        ("check 5", False)]
    assert findings.checks[1].detail == "returned false"
    assert findings.checks[2].detail == ('error 42P01: relation "no_such_table" does not '
                                         "exist")
    assert findings.checks[3].detail.startswith("returned a value of type str, not a boolean")
    assert findings.checks[4].detail.startswith("error 22012 (the message may quote data")
    assert findings.findings()[0] == (
        "database emr, check 2 ('SELECT count(*) = 0 FROM pgbench_branches'): FAILED: "
        "returned false")
    text = repr(findings)
    assert "山田太郎" not in text.replace(checks[4], "")  # the returned name is never shown


@pytest.mark.parametrize(("body", "why"), [
    ('"$REAL" "$@" | head -c 65536\nkill -9 $$', "pg_dump was killed by signal 9"),
    ('"$REAL" "$@" | head -c 65536\nexit 1', "pg_dump exited 1"),
])
def test_a_dump_that_breaks_off_fails_and_leaves_no_snapshot(
        source_db: SourceDb, repo: Path, password: Secret, pg_bin_with: Wrapper, body: str,
        why: str) -> None:
    bindir = pg_bin_with(body)

    result = dump_database(LocalRunner(), source_db.database(), job=JOB, repo_url=str(repo),
                           password=password, timeout=300, pg_bin=str(bindir))

    assert result.error is not None and not result.ok
    assert result.error.startswith(f"{JOB}: database emr: {why}; no snapshot was made")
    assert snapshots(repo) == []


def _hanging_pg_dump(pg_bin_with: Wrapper, tmp_path: Path) -> tuple[Path, Path]:
    """A pg_dump that writes 64 KiB and then hangs (its wrapper's pid in the pid file)."""
    pidfile = tmp_path / "wrapper.pid"
    return pg_bin_with(f'echo $$ > {pidfile}\n"$REAL" "$@" | head -c 65536\nexec sleep 30'), \
        pidfile


def test_a_helper_killed_mid_stream_leaves_no_snapshot(
        source_db: SourceDb, repo: Path, password: Secret, pg_bin_with: Wrapper,
        tmp_path: Path) -> None:
    """SIGKILL of the helper itself: its guard kills restic before restic sees EOF."""
    from backupctl.databases.dump import header
    from backupctl.databases.helper import helper_argv

    bindir, pidfile = _hanging_pg_dump(pg_bin_with, tmp_path)
    head = header(source_db.database(), job=JOB, repo_url=str(repo), password=password,
                  deadline=None, pg_bin=str(bindir))

    result = LocalRunner().run(helper_argv(), stdin=head, timeout=4)

    assert result.timed_out
    _wait_until_gone("restic", str(repo))
    _kill(pidfile)
    assert snapshots(repo) == []


def test_the_helper_stops_a_hanging_dump_at_its_own_deadline(
        source_db: SourceDb, repo: Path, password: Secret, pg_bin_with: Wrapper,
        tmp_path: Path) -> None:
    bindir, _ = _hanging_pg_dump(pg_bin_with, tmp_path)

    result = dump_database(LocalRunner(), source_db.database(), job=JOB, repo_url=str(repo),
                           password=password, timeout=4, pg_bin=str(bindir))

    assert result.error is not None
    assert "pg_dump was stopped at the helper's deadline; no snapshot was made" in result.error
    assert "ran out of time (command_timeout)" in result.error
    assert snapshots(repo) == []


def test_a_python36_host_dumps_postgresql(source_db: SourceDb, repo: Path,
                                          password: Secret) -> None:
    python = Path("/root/.pyenv/versions/3.6.15/bin/python3")
    if not python.exists():
        pytest.skip("no python 3.6 on this machine (the helper's oldest supported host)")

    result = dump_database(LocalRunner(), source_db.database(), job=JOB, repo_url=str(repo),
                           password=password, timeout=300, python=str(python))

    assert result.error is None, result.error
    assert result.tables[PATIENTS] == len(JAPANESE)


def test_a_wrong_repository_password_fails_naming_the_database(
        source_db: SourceDb, repo: Path) -> None:
    result = dump_database(LocalRunner(), source_db.database(), job=JOB, repo_url=str(repo),
                           password=Secret("not-the-password"), timeout=300)

    assert result.error is not None
    assert re.match(rf"{JOB}: database emr: restic backup stopped reading the dump \(exit "
                    r"(1|12)\) on local: Fatal: wrong password", result.error), result.error
    # (restic 0.14 exits 1, 0.17+ 12)
    assert "Check the job's password_file" in result.error
    assert snapshots(repo) == []


def test_an_unreachable_database_fails_with_psql_s_reason(
        source_db: SourceDb, repo: Path, password: Secret) -> None:
    database = source_db.database().model_copy(update={"dsn": source_db.dsn + "_nope"})

    result = dump_database(LocalRunner(), database, job=JOB, repo_url=str(repo),
                           password=password, timeout=300)

    assert result.error is not None
    assert "psql failed" in result.error and "does not exist" in result.error
    assert "Check dsn" in result.error


def test_a_newer_dump_than_the_local_postgresql_is_not_proven(
        source_db: SourceDb, repo: Path, password: Secret, scratch: Path) -> None:
    manifest = dataclasses.replace(dump(source_db, repo, password).manifest(),
                                   server_version=170002, dump_version="17.2")

    findings = prove_full(LocalRunner(), manifest, checks=[], repo_url=str(repo),
                          password=password, scratch_dir=scratch, timeout=300)

    assert findings.not_proven is not None and not findings.bad_data and not findings.proven
    assert "comes from PostgreSQL 17" in findings.not_proven
    assert "install PostgreSQL 17 or newer" in findings.not_proven
    assert list(scratch.iterdir()) == []


def test_a_damaged_repository_is_bad_data(source_db: SourceDb, repo: Path, password: Secret,
                                          scratch: Path) -> None:
    result = dump(source_db, repo, password)
    flip_byte_in_largest_pack(repo)

    quick = prove_quick(LocalRunner(), result.manifest(), repo_url=str(repo),
                        password=password, timeout=300)
    full = prove_full(LocalRunner(), result.manifest(), checks=[], repo_url=str(repo),
                      password=password, scratch_dir=scratch, timeout=300)

    for findings in (quick, full):
        assert findings.bad_data and findings.sha256_match is False, findings
        assert findings.read_error is not None
        assert "ciphertext verification failed" in findings.read_error
    assert list(scratch.iterdir()) == [] and processes_under(scratch) == []


def test_cleanup_of_an_empty_scratch_dir_does_nothing(scratch: Path) -> None:
    assert cleanup_leftovers(scratch, JOB) == []


def _wait_until_gone(name: str, needle: str, seconds: float = 20) -> None:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _running(name, needle):
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} still running: {_running(name, needle)}")


def _running(name: str, needle: str) -> list[str]:
    import os

    found = []
    for pid in os.listdir("/proc"):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and Path(cmd[0].decode(errors="replace")).name == name and \
                any(needle.encode() in part for part in cmd):
            found.append(pid)
    return found


def _kill(pidfile: Path) -> None:
    import contextlib
    import os
    import signal

    with contextlib.suppress(OSError, ValueError):
        os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_a_read_only_backup_role_dumps_and_a_row_security_policy_fails_loudly(
        source_db: SourceDb, repo: Path, password: Secret) -> None:
    role = f"backup_{source_db.dbname}"
    source_db.psql(f"DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN; "
                   f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    database = source_db.database().model_copy(
        update={"dsn": source_db.dsn.replace("user=postgres", f"user={role}")})
    try:
        ok = dump_database(LocalRunner(), database, job=JOB, repo_url=str(repo),
                           password=password, timeout=300)
        source_db.psql("ALTER TABLE 患者 ENABLE ROW LEVEL SECURITY; CREATE POLICY only_one ON "
                       "患者 USING (id = 1)")
        hidden = dump_database(LocalRunner(), database, job=JOB, repo_url=str(repo),
                               password=password, timeout=300)
    finally:
        source_db.psql(f"DROP OWNED BY {role}; DROP ROLE {role}")

    assert ok.error is None and ok.tables[PATIENTS] == len(JAPANESE)
    assert hidden.error is not None and "row-level security" in hidden.error, hidden.error
    assert [s["short_id"] for s in snapshots(repo)] == [ok.snapshot_id]


def test_a_scratch_dir_the_restore_user_cannot_reach_is_not_proven_with_the_fix(
        source_db: SourceDb, repo: Path, password: Secret) -> None:
    """Called directly (the CLI refuses it before restoring: exit 2, test_account.py)."""
    import shutil
    import tempfile

    private = Path(tempfile.mkdtemp(prefix="bk-private-"))  # 0700, like the default
    try:
        findings = prove_full(LocalRunner(), dump(source_db, repo, password).manifest(),
                              checks=[], repo_url=str(repo), password=password,
                              scratch_dir=private, timeout=300)

        assert findings.not_proven is not None and not findings.bad_data
        assert (f"restore_user 'backupctl-restore' cannot pass through {private} "
                "(scratch_dir, mode 0700") in findings.not_proven
        assert f"chmod o+x {private}" in findings.not_proven
        assert list(private.iterdir()) == []
    finally:
        shutil.rmtree(private, ignore_errors=True)


def test_a_socket_path_beyond_the_unix_limit_is_not_proven(
        source_db: SourceDb, repo: Path, password: Secret, scratch: Path) -> None:
    deep = scratch / ("d" * 90)
    deep.mkdir()
    deep.chmod(0o711)  # the restore user passes through; the socket path is the problem

    findings = prove_full(LocalRunner(), dump(source_db, repo, password).manifest(), checks=[],
                          repo_url=str(repo), password=password, scratch_dir=deep, timeout=300)

    assert findings.not_proven is not None and "longer than 107 bytes" in findings.not_proven
    assert list(deep.iterdir()) == []
