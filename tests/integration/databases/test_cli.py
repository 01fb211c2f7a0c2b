"""Database backups and restore tests through the real CLI (issue #16): a pgbench-loaded
PostgreSQL source (the `postgres` fixture), real restic, real sshd, the throwaway server.

Wall time: each test backs up once (~3 s) and runs one or two full restore tests (~4 s
each: initdb, start, pg_restore of 100 000 rows, stop).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PASSWORD, PG_BIN, Sshd, Workspace, need, restic
from tests.integration.databases.conftest import JAPANESE, JOB, SourceDb, processes_under
from tests.integration.verify.conftest import run_json

TABLES = {"public.pgbench_accounts": 100000, "public.pgbench_branches": 1,
          "public.pgbench_history": 0, "public.pgbench_tellers": 10,
          'public."患者"': len(JAPANESE)}
ROWS = sum(TABLES.values())
CHECKS = ["SELECT count(*) = 100000 FROM pgbench_accounts",
          "SELECT 名前 = '山田太郎' FROM 患者 WHERE id = 1"]


def db_job(ws: Workspace, scratch: Path, source: SourceDb, *, sshd: Sshd | None = None,
           copies: list[dict[str, Any]] | None = None, **database: Any) -> None:
    """A job with one file and database `emr`; scratch_dir the postgres user can reach."""
    ws.write_config(scratch_dir=str(scratch))
    src = ws.root / "src" / JOB
    src.mkdir(parents=True, exist_ok=True)
    (src / "カルテ.txt").write_text("患者データ\n" * 50)
    entry = {"name": "emr", "kind": "postgresql", "dsn": source.dsn, **database}
    ws.job(JOB, source=src, sshd=sshd, verify={"sample": "all", "rto": "1h"},
           databases=[entry], copies=copies or [])


def backup(ws: Workspace) -> dict[str, Any]:
    code, job, stderr = run_json(ws, "backup", JOB)
    assert code == 0, (job, stderr)
    [dumped] = job["databases"]
    assert dumped["error"] is None and dumped["tables"] == len(TABLES), dumped
    return job


def evidence_details(ws: Workspace, kind: str) -> dict[str, Any]:
    """The details of the newest evidence record of `kind`, as stored in the chain."""
    with sqlite3.connect(ws.state_dir / "state.db") as conn:
        (details,) = conn.execute("SELECT details FROM evidence WHERE kind = ? ORDER BY seq "
                                  "DESC LIMIT 1", (kind,)).fetchone()
    found: dict[str, Any] = json.loads(details)
    return found


def test_a_local_job_backs_up_and_proves_every_table_in_json_evidence_report_and_metrics(
        workspace: Workspace, scratch: Path, source_db: SourceDb, tmp_path: Path) -> None:
    ws = workspace
    db_job(ws, scratch, source_db, checks=CHECKS)
    done = backup(ws)
    [dumped] = done["databases"]
    assert dumped["rows"] == ROWS and dumped["path"] == f"/{JOB}.emr.pgdump"
    assert dumped["size"] > 0 and dumped["snapshot_id"] != done["snapshot_id"]
    tags = {s["short_id"]: s["tags"] for s in json.loads(
        restic(ws.root / "repos" / JOB, "snapshots", "--json").stdout)}
    assert tags == {done["snapshot_id"][:8]: ["backupctl"],
                    dumped["snapshot_id"][:8]: ["backupctl-db", "backupctl-db:emr"]}
    assert done["generations"] == 1  # the dump is not a generation of the files

    code, result, stderr = run_json(ws, "verify", JOB, "--mode", "full")

    assert code == 0, (result, stderr)
    assert result["snapshot_id"].startswith(done["snapshot_id"]), "the files, not the dump"
    [proof] = result["databases"]
    assert proof["result"] == "proven" and proof["mode"] == "full"
    assert proof["tables_checked"] == len(TABLES)
    assert proof["rows_expected"] == proof["rows_restored"] == ROWS
    assert proof["mismatches"] == [] and [c["passed"] for c in proof["checks"]] == [True, True]
    assert 0 < proof["restore_ms"] <= result["restore_ms"], "the RTO counts the database"
    assert evidence_details(ws, "verify")["databases"][0]["rows_restored"] == ROWS
    assert evidence_details(ws, "backup")["databases"][0]["tables"] == len(TABLES)
    assert list(scratch.iterdir()) == [] and processes_under(scratch) == []

    text = ws.run("verify", JOB, "--mode", "full")
    assert (f"database emr: {len(TABLES)} table(s) compared, {ROWS} of {ROWS} row(s) restored, "
            "4 schema object(s) compared") in text.stderr  # pgbench's and 患者's primary keys

    report = _report(ws)
    [emr] = report["jobs"][0]["databases"]
    assert emr["last_proven_restore"]["tables"] == len(TABLES)
    assert emr["last_proven_restore"]["rows"] == ROWS and emr["failed"] == 0
    _metrics_are_valid(ws, tmp_path)
    _runbook_restores(ws, source_db, tmp_path)


def _report(ws: Workspace) -> dict[str, Any]:
    today = time.strftime("%Y-%m-%d")
    out = ws.root / "report.json"
    done = ws.run("report", "--from", today, "--to", today, "--format", "json", "-o", str(out))
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return report


def _metrics_are_valid(ws: Workspace, tmp_path: Path) -> None:
    done = ws.run("metrics")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for name, value in (("restore_duration_seconds", None), ("tables_checked", len(TABLES)),
                        ("row_mismatches", 0)):
        [line] = [x for x in lines if x.startswith(f"backupctl_database_{name}{{")]
        assert f'backup_job="{JOB}"' in line and 'database="emr"' in line
        if value is not None:
            assert float(line.rsplit(" ", 1)[1]) == value
    check = subprocess.run([need("promtool"), "check", "metrics"], input=done.stdout,
                           capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout + check.stderr == "", check


def _runbook_restores(ws: Workspace, source: SourceDb, tmp_path: Path) -> None:
    """The runbook's restic + pg_restore steps, run as printed, bring the database back."""
    text = ws.run("runbook", JOB, "--lang", "en").stdout
    assert PASSWORD not in text and "Database emr (postgresql)" in text
    steps = [line.strip() for line in text.splitlines()
             if line.strip().startswith(("mkdir -p /srv/restore", "createdb ", "pg_restore "))]
    assert len(steps) == 3, text
    target = tmp_path / "restored"
    name = f"rb_{source.dbname}"
    env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(source.postgres.port),
           "PGUSER": "postgres", "PATH": f"{PG_BIN}:{os.environ['PATH']}"}
    for step in steps:
        step = step.replace(f"/srv/restore/{JOB}", str(target))
        step = step.replace("createdb --template=template0 emr", f"createdb "
                            f"--template=template0 {name}").replace("--dbname=emr",
                                                                    f"--dbname={name}")
        done = subprocess.run(["sh", "-c", step], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, (step, done.stderr)
    assert (target / f"{JOB}.emr.pgdump").stat().st_mode & 0o077 == 0
    restored = SourceDb(source.postgres, name)
    try:
        assert restored.psql("SELECT count(*) FROM pgbench_accounts") == "100000"
        assert restored.psql("SELECT 名前 FROM 患者 WHERE id = 1") == "山田太郎"
    finally:
        SourceDb(source.postgres, "postgres").psql(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_a_job_over_ssh_is_proven_quick_full_and_from_its_copy(
        ssh_workspace: Workspace, sshd: Sshd, scratch: Path, source_db: SourceDb) -> None:
    ws = ssh_workspace
    usb = ws.root / "usb" / JOB
    shutil.copytree(ws.repo_template, usb)
    db_job(ws, scratch, source_db, sshd=sshd, copies=[{
        "name": "usb", "kind": "offline", "url": str(usb),
        "password_file": str(ws.password_file()), "max_age": "7d"}])
    [dumped] = backup(ws)["databases"]
    copied = ws.run("copy", JOB)
    assert copied.returncode == 0, copied.stderr

    runs: list[tuple[str, ...]] = [("--mode", "full"), ("--mode", "quick"), ("--from", "usb")]
    for args in runs:
        code, result, stderr = run_json(ws, "verify", JOB, *args)
        assert code == 0, (args, result, stderr)
        [proof] = result["databases"]
        assert proof["result"] == "proven" and proof["tables_checked"] == len(TABLES), proof
        assert proof["sha256_match"] is True
        if args[0] == "--from":  # the dump's copy has its own id, found by its original
            assert proof["snapshot_id"] not in (None, dumped["snapshot_id"])
    assert PASSWORD not in sshd.log.read_text()
    assert list(scratch.iterdir()) == []


def test_rows_left_out_by_the_options_and_a_false_check_are_bad_data_in_verify_and_drill(
        workspace: Workspace, scratch: Path, source_db: SourceDb) -> None:
    source_db.pgbench("-t", "40", "-c", "1", "-n")
    history = int(source_db.psql("SELECT count(*) FROM pgbench_history"))
    assert history == 40
    db_job(workspace, scratch, source_db, options=["--exclude-table-data=pgbench_history"],
           checks=["SELECT count(*) = 0 FROM pgbench_accounts", "SELECT true"])
    backup(workspace)

    code, result, stderr = run_json(workspace, "verify", JOB, "--mode", "full")

    assert code == 3, (result, stderr)
    [proof] = result["databases"]
    assert proof["result"] == "bad_data"
    assert proof["mismatches"] == [{"table": "public.pgbench_history", "expected": history,
                                    "restored": 0, "reason": "rows"}]
    assert [c["passed"] for c in proof["checks"]] == [False, True]
    error = result["error"]
    assert (f"database emr, table public.pgbench_history: expected {history} rows, "
            "restored 0") in error
    assert "database emr, check 1 ('SELECT count(*) = 0 FROM pgbench_accounts'): FAILED: " \
           "returned false" in error
    assert "check 2" not in error
    assert list(scratch.iterdir()) == []

    code, drilled, stderr = run_json(workspace, "drill", JOB, "--yes", "--operator", "test")

    assert code == 3, (drilled, stderr)  # the drill restores the database too: same finding
    [step] = [s for s in drilled["steps"] if s["name"] == "database emr"]
    assert step["result"] == "fail" and "BAD DATA" not in step["detail"]
    assert drilled["databases"][0]["mismatches"] == proof["mismatches"]
    assert "public.pgbench_history: expected 40 rows, restored 0" in drilled["error"]
    assert list(scratch.iterdir()) == []


def test_pg_dump_killed_mid_stream_fails_the_backup_and_keeps_no_dump(
        workspace: Workspace, scratch: Path, source_db: SourceDb, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "pg_dump").write_text(
        f'#!/bin/sh\ncase "$1" in --version) exec {PG_BIN}/pg_dump "$@";; esac\n'
        f'{PG_BIN}/pg_dump "$@" | head -c 65536\nkill -9 $$\n')
    (bindir / "pg_dump").chmod(0o755)
    db_job(workspace, scratch, source_db)

    proc = workspace.run("backup", JOB, "--json",
                         env={"PATH": f"{bindir}:{os.environ['PATH']}"})

    assert proc.returncode == 1, proc.stderr
    [result] = json.loads(proc.stdout)["jobs"]
    assert result["status"] == "failed"
    assert f"{JOB}: database emr: pg_dump was killed by signal 9; no snapshot was made" \
        in result["error"]
    [dumped] = result["databases"]
    assert dumped["snapshot_id"] is None and dumped["error"] is not None
    # the failed run leaves nothing that looks like a backup: its files' snapshot is gone too
    assert result["removed_snapshots"] == [result["snapshot_id"]]
    held = json.loads(restic(workspace.root / "repos" / JOB, "snapshots", "--json").stdout)
    assert held == []

    code, verified, stderr = run_json(workspace, "verify", JOB)
    assert code == 1, (verified, stderr)  # nothing to prove: no backup has succeeded


def test_a_stopped_database_restore_leaves_no_server_and_no_files(
        workspace: Workspace, scratch: Path, source_db: SourceDb) -> None:
    """SIGKILL mid-restore: the next run stops the server before wiping; SIGTERM: at once."""
    from tests.integration.databases.test_interrupted import _wait_for_the_slow_check

    db_job(workspace, scratch, source_db, checks=["SELECT pg_sleep(120) IS NOT NULL"])
    backup(workspace)

    for sig in (signal.SIGKILL, signal.SIGTERM):
        proc = subprocess.Popen([*workspace_cli(workspace), "verify", JOB, "--mode", "full"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait_for_the_slow_check(scratch, proc)
            assert processes_under(scratch) != []
            proc.send_signal(sig)
            proc.wait(timeout=120)
        finally:
            proc.kill()
            proc.wait()
        if sig is signal.SIGKILL:
            assert processes_under(scratch) != [], "SIGKILL leaves the server running"
            status = workspace.run("status")  # the next run recovers the job
            assert status.returncode == 0, status.stderr
        assert processes_under(scratch) == [], sig
        assert list(scratch.iterdir()) == [], sig

    runs = json.loads(workspace.run("status", "--json").stdout)
    assert runs["jobs"][0]["job"] == JOB
    with sqlite3.connect(workspace.state_dir / "state.db") as conn:
        statuses = [s for (s,) in conn.execute(
            "SELECT status FROM runs WHERE kind = 'verify' ORDER BY id")]
    assert statuses == ["interrupted", "interrupted"]


def workspace_cli(ws: Workspace) -> list[str]:
    from tests.conftest import BACKUPCTL

    return [*BACKUPCTL, "-c", str(ws.config)]


@pytest.fixture(autouse=True)
def _tools() -> None:
    need("pgbench")
