"""dump_database with a FakeRunner: what reaches the host, how its answer is read (dump.py)."""

from __future__ import annotations

import ast
import json
from typing import Any

import pytest

from backupctl.config.schema import Database
from backupctl.databases.dump import dump_database, plan
from backupctl.databases.helper import helper_deadline, helper_source
from backupctl.databases.model import DumpManifest, DumpResult
from backupctl.execute import Secret
from backupctl.execute.fake import Call, FakeRunner
from backupctl.state.database_proof import SchemaObject, schema_from_json
from backupctl.state.dumps import DatabaseManifestRow

PASSWORD = "unit-test-password-3b1f"
EMR = Database(name="emr", kind="postgresql", dsn="host=/run/postgresql dbname=emr",
               options=["--exclude-table-data=audit", "-Z6"])
OK = {"ok": True, "snapshot_id": "1f753783", "sha256": "ab" * 32, "size": 1000,
      "restic_bytes": 1000, "tables": [["public.a", 3], ['public."患者"', 2]],
      "server_version": 150018, "dump_version": "15.18", "suffix": "pgdump"}


def run(reply: dict[str, Any] | None = None, *, returncode: int = 0, stderr: str = "",
        timed_out: bool = False, stdout: bytes | None = None,
        timeout: float | None = 100.0) -> tuple[DumpResult, FakeRunner]:
    runner = FakeRunner(host="backupctl@192.0.2.10:22")
    out = stdout if stdout is not None else (json.dumps(reply).encode() + b"\n" if reply else b"")
    runner.on("python3", "-I", returncode=returncode, stdout=out, stderr=stderr,
              timed_out=timed_out)
    result = dump_database(runner, EMR, job="emr-db", repo_url="sftp:backup01:/r/emr-db",
                           password=Secret(PASSWORD), timeout=timeout)
    return result, runner


def header(call: Call) -> dict[str, Any]:
    assert call.stdin is not None
    return dict(json.loads(call.stdin))


def test_one_helper_process_gets_everything_on_stdin_and_nothing_secret_in_argv() -> None:
    result, runner = run(OK)

    [call] = runner.calls
    assert call.words[:3] == ["python3", "-I", "-c"] and call.words[3] == helper_source()
    assert PASSWORD not in " ".join(call.words) and call.env is None
    assert header(call) == {
        "mode": "postgresql", "dsn": "host=/run/postgresql dbname=emr",
        "options": ["--exclude-table-data=audit", "-Z6"], "repo": "sftp:backup01:/r/emr-db",
        "password": PASSWORD, "host": "emr-db", "tags": ["backupctl-db", "backupctl-db:emr"],
        "filename": "emr-db.emr", "pg_bin": None, "restic": "restic", "deadline": 95.0}
    assert call.timeout == 100.0
    assert result.ok and result.error is None
    assert (result.snapshot_id, result.path, result.size) == ("1f753783", "/emr-db.emr.pgdump",
                                                              1000)
    assert result.tables == {"public.a": 3, 'public."患者"': 2}
    assert (result.server_version, result.dump_version) == (150018, "15.18")


def test_the_helper_program_is_python36_syntax() -> None:
    ast.parse(helper_source(), feature_version=(3, 6))


@pytest.mark.parametrize(("record", "says"), [
    ({"ok": False, "stage": "pg_dump", "error": "pg_dump exited 1; no snapshot was made",
      "returncode": 1, "stderr": 'pg_dump: error: query failed: ERROR:  permission denied for '
                                 'table audit\nDETAIL: secret row (1, "山田")'},
     "emr-db: database emr: pg_dump exited 1; no snapshot was made on backupctl@192.0.2.10:22:"
     " pg_dump: error: query failed: ERROR:  permission denied for table audit"),
    ({"ok": False, "stage": "restic", "error": "restic backup exited 1", "returncode": 1,
      "stderr": "Fatal: unable to open config file: Is there a repository at the following "
                "location?"},
     "To create the repository, run: backupctl init emr-db"),
    ({"ok": False, "stage": "psql", "error": "psql failed (exit 2)", "returncode": 2,
      "stderr": 'psql: error: FATAL:  database "emr" does not exist'},
     "Check dsn and the backup user's access"),
    # restic 0.18 with --json ends in an exit_error object, not its message
    ({"ok": False, "stage": "restic", "error": "restic backup stopped reading the dump (exit 12)",
      "returncode": 12, "stderr": '{"message_type":"exit_error","code":12,"message":"Fatal: '
      'wrong password or no key found\\n"}\n'},
     "exit 12) on backupctl@192.0.2.10:22: Fatal: wrong password or no key found\nCheck the "
     "job's password_file"),
    ({"ok": False, "stage": "pg_dump", "error": "pg_dump was stopped at the helper's deadline",
      "returncode": -9, "stderr": "", "deadline_expired": True},
     "the dump ran out of time (command_timeout)"),
])
def test_a_failed_dump_names_the_database_and_why(record: dict[str, Any], says: str) -> None:
    result, _ = run(record, returncode=1)

    assert not result.ok and result.error is not None and says in result.error
    assert result.error.startswith("emr-db: database emr: ")
    assert "山田" not in result.error and "DETAIL" not in result.error


def test_no_python_on_the_host() -> None:
    result, _ = run(returncode=127, stderr="sh: 1: python3: not found")

    assert result.error == ("emr-db: database emr: python3 is not installed on "
                            "backupctl@192.0.2.10:22 (the database dump helper needs python3 "
                            ">= 3.6 there)")


def test_a_helper_that_answers_nothing_useful() -> None:
    for result, _ in (run(returncode=-9, timed_out=True), run(stdout=b"Traceback\n"),
                      run(stdout=b"[1, 2]\n")):
        assert result.error is not None and "without a result" in result.error


def test_bytes_that_restic_did_not_store_fail_the_dump() -> None:
    result, _ = run({**OK, "restic_bytes": 999})

    assert result.error == ("emr-db: database emr: restic stored 999 bytes but the dump had "
                            "1000 on backupctl@192.0.2.10:22")


def test_a_dump_made_by_restic_0_18_is_recorded_by_its_short_id() -> None:
    full = "1f753783" + "0c" * 28  # 0.17+'s summary gives the full id, 0.14 the short one
    result, _ = run({**OK, "snapshot_id": full})
    assert result.ok and result.snapshot_id == "1f753783"


def test_an_incomplete_record_fails_the_dump() -> None:
    result, _ = run({k: v for k, v in OK.items() if k != "sha256"})

    assert result.error is not None and "incomplete record" in result.error


def test_no_timeout_means_no_deadline() -> None:
    _, runner = run(OK, timeout=None)
    assert header(runner.calls[0])["deadline"] is None


@pytest.mark.parametrize(("timeout", "deadline"), [
    (6 * 3600, 6 * 3600 * 0.95),  # long runs: 5 % (18 min) to report before the runner
    (30, 28),  # at least 2 s
    (3, 1.5),  # at most half
])
def test_the_helper_stops_before_the_runner_with_time_to_say_so(timeout: float,
                                                                  deadline: float) -> None:
    assert helper_deadline(timeout) == pytest.approx(deadline)
    _, runner = run(OK, timeout=timeout)
    assert header(runner.calls[0])["deadline"] == pytest.approx(deadline)


def test_plan_names_what_runs_without_the_password() -> None:
    steps = plan(EMR, job="emr-db", where="backupctl@192.0.2.10:22")

    assert steps[0].startswith("on backupctl@192.0.2.10:22: python3 -I -c <stream helper>")
    assert "pg_dump --format=custom --no-password --snapshot=ID --dbname=DSN "\
           "--exclude-table-data=audit -Z6" in steps[2]
    assert "--stdin-filename emr-db.emr.pgdump --host emr-db --tag backupctl-db --tag "\
           "backupctl-db:emr" in steps[3]


def test_the_schema_fingerprint_reaches_the_manifest_and_its_row() -> None:
    schema = [["primary key", "public.a", "a_pkey", "cd6797a1545702b6"],
              ["trigger", 'public."患者"', '"患者_touch"', "6a45dc53e5f19dc9"]]
    result, _ = run({**OK, "schema": schema})

    assert result.ok and result.schema == tuple(SchemaObject(*o) for o in schema)
    row = result.manifest().row(run_id=1, files_snapshot_id="deadbeef", created_at="t")
    assert json.loads(row["schema_objects"]) == schema
    stored = DatabaseManifestRow(**{**{k: v for k, v in row.items()
                                       if k not in ("tables", "schema_objects")},
                                    "tables": json.loads(row["tables"]),
                                    "schema": schema_from_json(row["schema_objects"])})
    assert DumpManifest.from_row(stored).schema == result.schema


def test_a_helper_of_an_older_backupctl_records_no_fingerprint() -> None:
    result, _ = run(OK)  # no "schema" in its answer
    assert result.ok and result.schema is None
    assert result.manifest().row()["schema_objects"] is None
