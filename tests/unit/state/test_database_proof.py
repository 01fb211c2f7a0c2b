"""state/database_proof.py: one model for a database's proof, stored exactly as before."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys

from backupctl.evidence.chain import canonical, canonical_v2
from backupctl.state.database_proof import (
    DatabaseCheck,
    DatabaseProof,
    SchemaMismatch,
    SchemaObject,
    TableCount,
    schema_from_json,
    schema_to_json,
)
from backupctl.state.records import DrillDetails, VerifyDetails, read

PROOF = DatabaseProof(
    name="emr", kind="postgresql", mode="full", snapshot_id="9f8e7d6c", sha256_match=True,
    tables_checked=2, rows_expected=5, rows_restored=4,
    mismatches=[TableCount("public.a", 3, 2, "rows"),
                TableCount('public."患者"', 2, None, "missing")],
    checks=[DatabaseCheck("check 1", "SELECT true", True),
            DatabaseCheck("check 2", "SELECT false", False, "returned false")],
    restore_ms=1234, timings_ms={"total": 2000, "pg_restore": 800}, local_version="15.18",
    problems=["could not wipe x"])
# What `DatabaseFindings.record().to_json()` wrote for the same proof before the model was
# one (records.DatabaseProof, records.TableCount, records.DatabaseCheck).
STORED = {
    "name": "emr", "kind": "postgresql", "mode": "full", "result": "bad_data",
    "snapshot_id": "9f8e7d6c", "sha256_match": True, "read_error": None, "tables_checked": 2,
    "rows_expected": 5, "rows_restored": 4,
    "mismatches": [{"table": "public.a", "expected": 3, "restored": 2, "reason": "rows"},
                   {"table": 'public."患者"', "expected": 2, "restored": None,
                    "reason": "missing"}],
    "checks": [{"name": "check 1", "sql": "SELECT true", "passed": True, "detail": ""},
               {"name": "check 2", "sql": "SELECT false", "passed": False,
                "detail": "returned false"}],
    "restore_ms": 1234, "timings_ms": {"total": 2000, "pg_restore": 800},
    "local_version": "15.18", "problems": ["could not wipe x"], "not_proven": None}
# sha256 of the canonical JSON of VerifyDetails(mode="full", databases=[that record]), as
# written before: an evidence record holding it keeps its hash.
DETAILS_HASH = "250408b9054f211bf6652f05f69f4b0c27b6ea7cdd4ae468489055b8edd1719c"


def test_a_proof_is_stored_key_for_key_as_before() -> None:
    assert PROOF.to_json() == STORED
    details = VerifyDetails(mode="full", databases=[PROOF]).to_json()
    assert details["databases"] == [STORED]
    assert hashlib.sha256(canonical(details)).hexdigest() == DETAILS_HASH
    assert hashlib.sha256(canonical_v2(details)).hexdigest() == DETAILS_HASH


def test_a_stored_proof_reads_back_as_it_was_written() -> None:
    for model in (VerifyDetails, DrillDetails):
        [proof] = read(model, json.dumps({"databases": [STORED]})).databases
        assert proof == PROOF and proof.to_json() == STORED


def test_the_result_is_decided_when_made_and_again_when_replaced() -> None:
    assert PROOF.result == "bad_data" and PROOF.bad_data and not PROOF.proven
    fixed = dataclasses.replace(PROOF, mismatches=[], checks=[], problems=[])
    assert fixed.result == "proven" and fixed.to_json()["result"] == "proven"
    unread = dataclasses.replace(fixed, sha256_match=None, not_proven="no PostgreSQL")
    assert unread.result == "not_proven"


def test_a_stored_result_is_read_as_it_was_decided() -> None:
    # A later version's rules never rewrite what an old run decided.
    stored = {**STORED, "mismatches": [], "checks": [], "problems": [], "result": "not_proven"}
    [proof] = read(VerifyDetails, {"databases": [stored]}).databases
    assert proof.result == "not_proven" and proof.judged() == "proven"


def test_what_the_old_record_allowed_still_reads() -> None:
    # records.TableCount defaulted both counts; DatabaseFindings.to_dict() added two keys.
    stored = {**STORED, "bad_data": True, "proven": False,
              "mismatches": [{"table": "public.b", "reason": "missing"}]}
    [proof] = read(VerifyDetails, {"databases": [stored]}).databases
    assert proof.mismatches == [TableCount("public.b", None, None, "missing")]
    assert proof.result == "bad_data"


def test_the_findings_name_the_database_the_table_and_the_check() -> None:
    assert PROOF.findings() == [
        "database emr, table public.a: expected 3 rows, restored 2",
        'database emr, table public."患者": expected 2 rows, the table is missing from the '
        "restored database",
        "database emr, check 2 ('SELECT false'): FAILED: returned false"]
    assert PROOF.unproven() == []


SCHEMA = DatabaseProof(
    name="emr", kind="postgresql", mode="full", snapshot_id="9f8e7d6c", sha256_match=True,
    tables_checked=2, rows_expected=5, rows_restored=5, schema_checked=7,
    schema_mismatches=[SchemaMismatch("primary key", "public.pgbench_accounts",
                                      "pgbench_accounts_pkey", "missing"),
                       SchemaMismatch("trigger", 'public."患者"', '"患者_touch"', "definition"),
                       SchemaMismatch("index", "public.a", "planted", "unexpected")])


def test_the_schema_fields_are_stored_only_when_a_proof_has_them() -> None:
    assert not set(PROOF.to_json()) & {"schema_checked", "schema_mismatches", "schema_note",
                                       "restore_error"}
    stored = SCHEMA.to_json()
    assert stored["schema_checked"] == 7 and "schema_note" not in stored
    assert stored["schema_mismatches"][0] == {
        "kind": "primary key", "table": "public.pgbench_accounts",
        "name": "pgbench_accounts_pkey", "reason": "missing"}
    [back] = read(VerifyDetails, {"databases": [stored]}).databases
    assert back == SCHEMA and back.to_json() == stored
    noted = dataclasses.replace(PROOF, schema_note="compared on rows only")
    assert noted.to_json()["schema_note"] == "compared on rows only"


def test_a_missing_or_changed_object_is_bad_data_named_after_the_rows() -> None:
    assert SCHEMA.result == "bad_data" and not SCHEMA.proven
    assert SCHEMA.findings() == [
        "database emr, primary key pgbench_accounts_pkey of table public.pgbench_accounts: "
        "missing from the restored database",
        'database emr, trigger "患者_touch" of table public."患者": restored with another '
        "definition than the backup recorded",
        "database emr, index planted of table public.a: restored but the backup recorded no "
        "such object"]
    sequence = SchemaMismatch("sequence", "", "public.receipt_no", "missing")
    assert sequence.describe("emr") == ("database emr, sequence public.receipt_no: missing "
                                        "from the restored database")


def test_a_hostile_object_name_cannot_forge_a_line_or_move_the_cursor() -> None:
    """A name is the database's to choose (CREATE INDEX "x<LF>..."): a finding stays one
    printable line."""
    hostile = "idx\n\x1b[2K\rdatabase emr: proven\u202e"
    found = dataclasses.replace(SCHEMA, schema_mismatches=[
        SchemaMismatch("index", 'public."患者"', hostile, "missing")]).findings()
    assert found == ['database emr, index idx\\x0a\\x1b[2K\\x0ddatabase emr: proven\\u202e '
                     'of table public."患者": missing from the restored database']
    assert all(line.isprintable() for line in found)


def test_a_restore_that_exited_non_zero_is_bad_data_even_with_every_row_back() -> None:
    clean = dataclasses.replace(SCHEMA, schema_mismatches=[])
    assert clean.result == "proven"
    failed = dataclasses.replace(clean, restore_error="pg_restore 15.18 exited 1: ERROR:  x")
    assert failed.result == "bad_data" and failed.bad_data and failed.unproven() == []
    assert failed.findings() == ["database emr: pg_restore 15.18 exited 1: ERROR:  x"]


def test_a_fingerprint_is_stored_as_a_compact_list_and_read_back() -> None:
    objects = (SchemaObject("primary key", "public.a", "a_pkey", "cd6797a1545702b6"),
               SchemaObject("sequence", "", 'public."番号"', "0123456789abcdef"))
    text = schema_to_json(objects)
    assert text is not None and '番号' in text  # readable JSON, not \\u escapes
    assert json.loads(text)[0] == ["primary key", "public.a", "a_pkey", "cd6797a1545702b6"]
    assert schema_from_json(text) == objects
    assert schema_from_json(None) is None and schema_to_json(None) is None
    assert schema_from_json("[]") == ()


def test_importing_the_proof_models_builds_none_until_one_is_used() -> None:
    """Every command imports them, only a restore test's proof uses them (issue 25)."""
    code = ("from backupctl.state import database_proof as d; print(sum(c.__pydantic_complete__ "
            "for c in (d.SchemaObject, d.SchemaMismatch, d.TableCount, d.DatabaseCheck, "
            "d.DatabaseProof)))")
    built = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                           text=True, timeout=120).stdout.strip()
    assert built == "0"
