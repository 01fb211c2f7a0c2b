"""databases.onto: the target's connection string, what its PostgreSQL says, and the
restored database's checks (a FakeRunner plays the target)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import pytest

from backupctl.config.dsn import conninfo_pairs
from backupctl.databases import onto, streamer, streamer_schema
from backupctl.databases.model import DumpManifest
from backupctl.execute import Secret
from backupctl.execute.fake import FakeRunner
from backupctl.state.database_proof import DatabaseProof, SchemaObject


@pytest.mark.parametrize(("dsn", "said"), [
    ("host=/run/postgresql user=backup password=s3cret", "holds a password"),
    ("host=/run/postgresql user", "not a libpq key=value"),
    ("postgresql://backup:s3cret@db01/emr", "is a URI"),
    ("s3cret host=/run/postgresql", "missing '=' after the word at character 1"),
    ("host=/run/postgresql  password = 's3cret'", "holds a password"),
    ("host=/run/postgresql sslpassword=s3cret", "holds a password"),
    ("host=/run/postgresql PASSWORD=s3cret", "holds a password"),
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


def _manifest(**changes: Any) -> DumpManifest:
    return DumpManifest(job="emr", database="emr", kind="postgresql", snapshot_id="ab12cd34",
                        path="/emr.emr.pgdump", sha256="0" * 64, size=3,
                        tables={"public.t": 2}, server_version=150004,
                        schema=(SchemaObject("index", "public.t", "t_idx", "1" * 16),
                                SchemaObject("sequence", "", "public.s", "2" * 16)),
                        **changes)


def _target(*, restore_rc: int = 0, schema: list[list[str]] | None = None) -> FakeRunner:
    """The target: psql answers CREATE DATABASE, the counts and the fingerprint; the helper
    restores (pg_restore exiting `restore_rc`)."""
    runner = FakeRunner()
    runner.on("psql", stdout=b"")
    runner.on("psql", streamer.COUNT_SQL, stdout=b'[["public.t", 2]]\n')
    runner.on("psql", streamer_schema.SCHEMA_SQL, stdout=json.dumps(
        schema if schema is not None else [["index", "public.t", "t_idx", "1" * 16],
                                           ["sequence", "", "public.s", "2" * 16]]).encode())
    reply = {"ok": True, "sha256": hashlib.sha256(b"abc").hexdigest(), "size": 3,
             "restic_rc": 0, "restic_stderr": "", "list_rc": restore_rc, "list": "",
             "list_stderr": "pg_restore: error: could not execute query: ERROR: value 'x'",
             "stopped": False}
    runner.on("python3", stdout=json.dumps(reply).encode() + b"\n")
    return runner


def _restored(runner: FakeRunner, **changes: Any) -> DatabaseProof:
    manifest = _manifest(**changes)
    manifest = replace(manifest, sha256=hashlib.sha256(b"abc").hexdigest())
    return onto.restore(runner, manifest, dsn="dbname=postgres", repo_url="rest:http://x/",
                        password=Secret("s3cr3t-pw-zz"), snapshot_id="ab12cd34", checks=[],
                        server_major=15, timeout=10)


def test_rows_and_the_schema_fingerprint_are_compared_on_the_target() -> None:
    proof = _restored(_target())
    assert (proof.result, proof.tables_checked, proof.schema_checked) == ("proven", 1, 2)
    missing = _restored(_target(schema=[["sequence", "", "public.s", "2" * 16]]))
    assert missing.result == "bad_data"
    assert [m.name for m in missing.schema_mismatches] == ["t_idx"]
    assert any("t_idx" in line for line in missing.findings())


def test_a_pg_restore_that_exits_non_zero_is_bad_data_without_the_value() -> None:
    proof = _restored(_target(restore_rc=1))
    assert proof.result == "bad_data" and proof.restore_error is not None
    assert "exited 1" in proof.restore_error and "'x'" not in proof.restore_error
    killed = _restored(_target(restore_rc=-9))
    assert killed.result == "not_proven" and killed.tables_checked == 0


def test_the_password_reaches_the_target_on_stdin_only() -> None:
    runner = _target()
    _restored(runner)
    [helper] = runner.commands("python3")
    assert "s3cr3t-pw-zz" not in helper.text and helper.stdin is not None
    assert b"s3cr3t-pw-zz" in helper.stdin and all("s3cr3t" not in c.text for c in runner.calls)
    assert b"--dbname" not in helper.stdin and b'"dbname=\'emr_restored\'"' in helper.stdin
