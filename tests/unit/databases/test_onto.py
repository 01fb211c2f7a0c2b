"""databases.onto: the target's connection string, what its PostgreSQL says, and the
restored database's checks (a FakeRunner plays the target)."""

from __future__ import annotations

import json

import pytest

from backupctl.config.dsn import conninfo_pairs
from backupctl.databases import onto
from backupctl.execute.fake import FakeRunner


@pytest.mark.parametrize(("dsn", "said"), [
    ("host=/run/postgresql user=backup password=s3cret", "holds a password"),
    ("host=/run/postgresql user", "not a libpq key=value"),
])
def test_a_bad_target_dsn_is_named_without_its_values(dsn: str, said: str) -> None:
    problem = onto.dsn_problem(dsn)
    assert problem is not None and said in problem and "s3cret" not in problem


def test_a_good_target_dsn_passes_and_gets_the_restored_database() -> None:
    dsn = "host=/run/postgresql user='o\\'k' dbname=emr"
    assert onto.dsn_problem(dsn) is None
    assert onto.dsn_problem(onto.DEFAULT_DSN) is None
    pairs = conninfo_pairs(onto.with_dbname("host='/a b' user=x\\'y dbname=emr",
                                            "emr_restored"))
    assert pairs == [("host", "/a b"), ("user", "x'y"), ("dbname", "emr_restored")]
    assert onto.restored_name("emr") == "emr_restored"


def test_look_reads_the_role_the_databases_there_and_pg_restores_version() -> None:
    runner = FakeRunner()
    runner.on("psql", stdout=json.dumps({"user": "rec", "createdb": True, "version": 150004,
                                         "existing": ["emr_restored"]}).encode() + b"\n")
    runner.on("pg_restore", "--version", stdout=b"pg_restore (PostgreSQL) 16.2\n")

    looked = onto.look(runner, "dbname=postgres", ["emr_restored", "o'k_restored"],
                       timeout=10)

    assert looked == onto.Looked("rec", True, 15, ("emr_restored",), 16)
    [call] = runner.commands("psql")
    assert "'o''k_restored'" in call.words[-1] and "--no-password" in call.words


def test_look_without_pg_restore_or_an_answer() -> None:
    runner = FakeRunner()
    runner.on("psql", stdout=b'{"user": "r", "createdb": false, "version": 130000, '
              b'"existing": []}\n')
    runner.on("pg_restore", returncode=127)
    assert onto.look(runner, "dbname=postgres", [], timeout=10).pg_restore_major is None
    runner.on("psql", returncode=2, stderr="psql: error: connection refused")
    with pytest.raises(ValueError, match="could not ask"):
        onto.look(runner, "dbname=postgres", [], timeout=10)


@pytest.mark.parametrize(("out", "rc", "passed", "detail"), [
    (b"t\n", 0, True, ""),
    (b"f\n", 0, False, "returned false"),
    (b"\n", 0, False, "returned no row or NULL"),
    (b"42\n", 0, False, "did not return a boolean"),
    (b"", 3, False, "not shown"),
])
def test_a_check_passes_only_on_true_and_never_shows_a_value(
        out: bytes, rc: int, passed: bool, detail: str) -> None:
    runner = FakeRunner()
    runner.on("psql", stdout=out, returncode=rc, stderr="ERROR: value '患者 1' is bad")

    check = onto._check(runner, "dbname=x", 0, "SELECT true", 10)

    assert (check.name, check.passed) == ("check 1", passed)
    assert detail in check.detail and "患者" not in check.detail
    [call] = runner.calls
    assert call.words[-8:] == ["-c", "BEGIN READ ONLY", "-c",
                               "SET LOCAL statement_timeout = 10000", "-c", "SELECT true",
                               "-c", "ROLLBACK"]
