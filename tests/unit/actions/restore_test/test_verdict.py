"""The verdict rules: anything found wrong is bad data; nothing compared is never a pass."""

from __future__ import annotations

import pytest

from backupctl.actions.restore_test.verdict import Findings, verdict
from backupctl.state.database_proof import DatabaseCheck, DatabaseProof, TableCount
from backupctl.state.records import CommandRun, Mismatch
from backupctl.status import ExitStatus

GOOD = Findings(files_checked=12, bytes_checked=4096)


def _judge(found: Findings, *, rto: int | None = None, more: tuple[str, ...] = ()) -> tuple[
        ExitStatus, str]:
    judged = verdict(found, job="emr", what="snapshot 1a2b3c4d of primary", rto_seconds=rto,
                     more_problems=more)
    return judged.status, judged.error or ""


def test_every_file_matching_is_proven() -> None:
    assert _judge(GOOD) == (ExitStatus.OK, "")


@pytest.mark.parametrize("reason", ["missing", "size", "hash", "unreadable", "not a file",
                                    "restore error", "check"])
def test_any_mismatch_is_bad_data_naming_the_path_and_why(reason: str) -> None:
    found = GOOD + Findings(mismatches=(Mismatch(path="/srv/emr/患者 1.dat", reason=reason),))
    status, error = _judge(found)
    assert status is ExitStatus.BAD_DATA
    assert f"/srv/emr/患者 1.dat ({reason})" in error
    assert error.startswith("emr: BAD DATA in snapshot 1a2b3c4d of primary")


def test_a_failed_check_command_is_bad_data() -> None:
    found = GOOD + Findings(failures=("check command 'pg_restore --list x' exited 1: bad",),
                            commands=(CommandRun(command="pg_restore --list x", exit_code=1),))
    status, error = _judge(found)
    assert status is ExitStatus.BAD_DATA and "pg_restore --list x" in error


def test_repository_damage_found_by_restic_check_is_bad_data() -> None:
    found = GOOD + Findings(mismatches=(Mismatch(path="pack " + "ab" * 32, reason="check"),),
                            failures=("restic check found repository errors",))
    assert _judge(found)[0] is ExitStatus.BAD_DATA


def test_a_restore_slower_than_the_rto_is_bad_data() -> None:
    status, error = _judge(GOOD + Findings(restore_ms=7_201_000), rto=7200)
    assert status is ExitStatus.BAD_DATA and "more than the RTO of 7200s" in error
    assert _judge(GOOD + Findings(restore_ms=7_200_000), rto=7200)[0] is ExitStatus.OK


def test_the_rto_is_not_judged_without_a_measured_restore() -> None:
    assert _judge(GOOD, rto=1)[0] is ExitStatus.OK


def test_files_changed_since_the_snapshot_are_not_bad_data_but_nothing_compared_is_no_pass(
        ) -> None:
    found = Findings(changed=("/srv/emr/live.db",))
    status, error = _judge(found)
    assert status is ExitStatus.FAILED
    assert "1 file(s) changed since the snapshot" in error and "not proven" in error


def test_names_that_are_not_utf8_are_listed_never_bad_data() -> None:
    found = GOOD + Findings(unverifiable=("/srv/emr/\ufffd.txt",))
    assert _judge(found)[0] is ExitStatus.OK


def test_a_failed_manual_drill_step_is_bad_data() -> None:
    status, error = _judge(GOOD, more=("manual step 'open the EMR' failed",))
    assert status is ExitStatus.BAD_DATA and "open the EMR" in error


def test_findings_add_up_and_keep_the_measured_restore() -> None:
    total = Findings(restore_ms=900, files_restored=10) + Findings(files_checked=3)
    assert (total.restore_ms, total.files_restored, total.files_checked) == (900, 10, 3)


# -- databases (SPEC §10) ------------------------------------------------------------------

def _db(**found: object) -> DatabaseProof:
    base: dict[str, object] = {"name": "emr", "kind": "postgresql", "mode": "full",
                               "sha256_match": True, "tables_checked": 5,
                               "rows_expected": 100, "rows_restored": 100, "restore_ms": 2000}
    return DatabaseProof(**{**base, **found})  # type: ignore[arg-type]


def test_a_proven_database_keeps_the_pass() -> None:
    assert _judge(GOOD + Findings(databases=(_db(),)), rto=60) == (ExitStatus.OK, "")


def test_a_table_with_other_rows_and_a_false_check_are_bad_data_naming_them() -> None:
    found = GOOD + Findings(databases=(_db(
        mismatches=[TableCount("public.pgbench_history", 40, 0, "rows")],
        checks=[DatabaseCheck("check 1", "SELECT false", False, "returned false")]),))
    status, error = _judge(found)
    assert status is ExitStatus.BAD_DATA
    assert "database emr, table public.pgbench_history: expected 40 rows, restored 0" in error
    assert "database emr, check 1 ('SELECT false'): FAILED: returned false" in error


def test_a_database_not_proven_is_exit_1_even_when_the_files_are_proven() -> None:
    found = GOOD + Findings(databases=(_db(sha256_match=None, not_proven="no manifest"),))
    status, error = _judge(found)
    assert status is ExitStatus.FAILED
    assert error == "emr: not proven in snapshot 1a2b3c4d of primary: database emr: no manifest"


def test_bad_data_wins_and_still_says_what_was_not_proven() -> None:
    found = GOOD + Findings(mismatches=(Mismatch(path="/x", reason="hash"),), databases=(
        _db(name="lab", sha256_match=None, not_proven="PostgreSQL 17 needed"),))
    status, error = _judge(found)
    assert status is ExitStatus.BAD_DATA and "also not proven: database lab: PostgreSQL 17" \
        in error


def test_the_rto_counts_the_files_and_every_database() -> None:
    found = GOOD + Findings(restore_ms=50_000) + Findings(databases=(
        _db(restore_ms=6_000), _db(name="lab", restore_ms=5_000)))
    assert found.rto_ms == 61_000
    status, error = _judge(found, rto=60)
    assert status is ExitStatus.BAD_DATA and "restore took 61.0s" in error
    assert _judge(found, rto=61)[0] is ExitStatus.OK
