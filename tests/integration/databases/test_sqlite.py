"""sqlite databases: online backup API into restic, restore tests of the copy (issue #16)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from backupctl.config.schema import Database
from backupctl.databases import DumpResult, dump_database, prove_full, prove_quick
from backupctl.databases.streamer_schema import digest_of
from backupctl.execute import Runner, Secret
from backupctl.execute.local import LocalRunner
from backupctl.execute.ssh import SshRunner
from backupctl.state.database_proof import SchemaObject, TableCount
from tests.conftest import restic
from tests.integration.databases.conftest import JOB, make_sqlite, snapshots

ROWS = 500
TABLES = {"results": 2 * ROWS, "患者": ROWS}
# make_sqlite's index (its tables' own PRIMARY KEY indexes have no statement: not recorded)
INDEXES = (SchemaObject("index", "results", "results_patient",
                        digest_of("CREATE INDEX results_patient ON results(patient)")),)
PY310 = Path("/root/.pyenv/versions/3.10.13/bin/python3")
PY36 = Path("/root/.pyenv/versions/3.6.15/bin/python3")


@pytest.fixture
def lab(tmp_path: Path) -> Database:
    path = tmp_path / "検査" / "lab db.sqlite3"  # Japanese and a space in the path
    path.parent.mkdir()
    make_sqlite(path, rows=ROWS)
    return Database(name="lab", kind="sqlite", dsn=str(path),
                    checks=["SELECT count(*) > 0 FROM 患者", "SELECT max(value) > 0 FROM results"])


def dump(runner: Runner, lab: Database, repo: Path, password: Secret,
         python: str = "python3") -> DumpResult:
    return dump_database(runner, lab, job=JOB, repo_url=str(repo), password=password,
                         timeout=300, python=python)


def test_a_sqlite_image_is_dumped_counted_and_proven(lab: Database, repo: Path,
                                                     password: Secret, scratch: Path) -> None:
    result = dump(LocalRunner(), lab, repo, password)

    assert result.error is None, result.error
    assert result.path == f"/{JOB}.lab.sqlite" and result.tables == TABLES
    [snap] = snapshots(repo)
    assert snap["tags"] == ["backupctl-db", "backupctl-db:lab"]
    image = restic(repo, "dump", result.snapshot_id or "", result.path).stdout
    assert image.startswith(b"SQLite format 3\x00") and len(image) == result.size

    quick = prove_quick(LocalRunner(), result.manifest(), repo_url=str(repo),
                        password=password, timeout=300)
    full = prove_full(LocalRunner(), result.manifest(), checks=lab.checks, repo_url=str(repo),
                      password=password, scratch_dir=scratch, timeout=300)

    assert quick.proven, quick
    assert full.proven, full
    assert full.tables_checked == 2 and full.rows_restored == 3 * ROWS
    assert result.schema == INDEXES and full.schema_checked == 1
    assert full.schema_mismatches == []
    assert [(c.name, c.passed) for c in full.checks] == [
        ("integrity_check", True), ("check 1", True), ("check 2", True)]
    assert list(scratch.iterdir()) == []


def test_a_host_without_serialize_sends_sql_text_that_proves_the_same(
        lab: Database, repo: Path, password: Secret, scratch: Path) -> None:
    if not PY310.exists():
        pytest.skip("no python 3.10 on this machine")

    result = dump(LocalRunner(), lab, repo, password, python=str(PY310))

    assert result.error is None, result.error
    assert result.path == f"/{JOB}.lab.sql" and result.tables == TABLES
    assert result.schema == INDEXES
    full = prove_full(LocalRunner(), result.manifest(), checks=lab.checks, repo_url=str(repo),
                      password=password, scratch_dir=scratch, timeout=300)
    quick = prove_quick(LocalRunner(), result.manifest(), repo_url=str(repo),
                        password=password, timeout=300)
    assert full.proven, full
    assert quick.proven, quick


def test_a_sqlite_dump_over_ssh(lab: Database, repo: Path, password: Secret,
                                ssh_runner: SshRunner, scratch: Path) -> None:
    result = dump(ssh_runner, lab, repo, password)

    assert result.error is None, result.error
    full = prove_full(LocalRunner(), result.manifest(), checks=[], repo_url=str(repo),
                      password=password, scratch_dir=scratch, timeout=300)
    assert full.proven, full


def test_rows_that_differ_and_a_false_check_are_bad_data(
        lab: Database, repo: Path, password: Secret, scratch: Path) -> None:
    result = dump(LocalRunner(), lab, repo, password)
    gone = SchemaObject("trigger", "患者", "患者_audit", "0123456789abcdef")
    manifest = dataclasses.replace(result.manifest(), tables={**TABLES, "results": 2 * ROWS + 1},
                                   schema=(*INDEXES, gone))

    full = prove_full(LocalRunner(), manifest, checks=["SELECT count(*) = 0 FROM 患者"],
                      repo_url=str(repo), password=password, scratch_dir=scratch, timeout=300)

    assert full.bad_data
    assert full.mismatches == [TableCount("results", 2 * ROWS + 1, 2 * ROWS, "rows")]
    assert full.findings() == [
        f"database lab, table results: expected {2 * ROWS + 1} rows, restored {2 * ROWS}",
        "database lab, trigger 患者_audit of table 患者: missing from the restored database",
        "database lab, check 1 ('SELECT count(*) = 0 FROM 患者'): FAILED: returned false"]


def test_a_missing_sqlite_file_fails_naming_it(tmp_path: Path, repo: Path,
                                               password: Secret) -> None:
    lab = Database(name="lab", kind="sqlite", dsn=str(tmp_path / "gone.sqlite3"))

    result = dump(LocalRunner(), lab, repo, password)

    assert result.error == (f"{JOB}: database lab: no database file at {tmp_path}/gone.sqlite3 "
                            "on local")
    assert not (tmp_path / "gone.sqlite3").exists()  # never created by the dump
    assert snapshots(repo) == []


def test_a_python36_host_is_told_what_sqlite_needs(lab: Database, repo: Path,
                                                   password: Secret) -> None:
    if not PY36.exists():
        pytest.skip("no python 3.6 on this machine")

    result = dump(LocalRunner(), lab, repo, password, python=str(PY36))

    assert result.error == (f"{JOB}: database lab: sqlite databases need python3 >= 3.7 on "
                            "the host (sqlite's online backup API) on local")
