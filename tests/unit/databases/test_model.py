"""Values of database backups and restore tests: verdicts, manifest rows (model.py)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from backupctl.databases.model import DumpManifest, DumpResult, tags
from backupctl.state.database_proof import DatabaseCheck, DatabaseProof, TableCount

MANIFEST = DumpManifest(job="emr-db", database="emr", kind="postgresql", snapshot_id="1f753783",
                        path="/emr-db/emr.pgdump", sha256="ab" * 32, size=286923,
                        tables={"public.a": 3, 'public."患者"': 2}, server_version=150018,
                        dump_version="15.18")
PROVEN = DatabaseProof(name="emr", kind="postgresql", mode="full", sha256_match=True,
                       tables_checked=2, rows_expected=5, rows_restored=5,
                       checks=[DatabaseCheck("check 1", "SELECT true", True)])


def test_a_clean_proof_is_proven_and_not_bad_data() -> None:
    assert PROVEN.proven and not PROVEN.bad_data and PROVEN.findings() == []


@pytest.mark.parametrize("change", [
    {"sha256_match": False},
    {"mismatches": [TableCount("public.a", 3, 0, "rows")]},
    {"checks": [DatabaseCheck("check 1", "SELECT false", False, "returned false")]},
])
def test_bad_data_is_never_proven(change: dict[str, object]) -> None:
    findings = dataclasses.replace(PROVEN, **change)  # type: ignore[arg-type]
    assert findings.bad_data and not findings.proven and len(findings.findings()) == 1


@pytest.mark.parametrize("change", [
    {"not_proven": "pg_restore failed"}, {"problems": ["could not wipe"]},
    {"sha256_match": None}])
def test_what_kept_the_test_from_proving_is_not_bad_data(change: dict[str, object]) -> None:
    findings = dataclasses.replace(PROVEN, **change)  # type: ignore[arg-type]
    assert not findings.proven and not findings.bad_data


def test_a_read_error_is_named() -> None:
    findings = dataclasses.replace(PROVEN, sha256_match=False, read_error="ciphertext failed")
    assert findings.findings() == ["database emr: the dump cannot be read from the repository: "
                                   "ciphertext failed"]


def test_a_manifest_row_round_trips() -> None:
    row = MANIFEST.row(run_id=7, files_snapshot_id="deadbeef")

    assert row["run_id"] == 7 and json.loads(row["tables"]) == MANIFEST.tables
    assert "患者" in row["tables"]  # readable JSON, not \\u escapes
    assert row["snapshot_id"] == MANIFEST.snapshot_id and row["size"] == MANIFEST.size
    assert MANIFEST.rows == 5 and MANIFEST.source_major == 15


@pytest.mark.parametrize(("server", "dump", "major"), [
    (150018, "15.18", 15), (150018, "16.2", 16), (None, "17beta1", 17), (None, None, None),
    (90624, None, 9)])
def test_source_major_is_the_newest_involved(server: int | None, dump: str | None,
                                             major: int | None) -> None:
    manifest = dataclasses.replace(MANIFEST, server_version=server, dump_version=dump)
    assert manifest.source_major == major


def test_a_failed_dump_has_no_manifest_and_its_dict_no_rows() -> None:
    failed = DumpResult(job="emr-db", name="emr", kind="postgresql", error="pg_dump exited 1")
    with pytest.raises(ValueError, match="was not dumped: pg_dump exited 1"):
        failed.manifest()
    done = DumpResult(job="emr-db", name="emr", kind="postgresql", snapshot_id="1f753783",
                      path="/emr-db/emr.pgdump", sha256="ab" * 32, size=10,
                      tables={"public.a": 3, "public.b": 4})
    assert done.to_dict()["tables"] == 2 and done.to_dict()["rows"] == 7
    assert done.manifest().tables == {"public.a": 3, "public.b": 4}


def test_database_snapshots_never_carry_the_file_snapshot_tag() -> None:
    assert tags("emr") == ["backupctl-db", "backupctl-db:emr"]
    assert "backupctl" not in tags("emr")
