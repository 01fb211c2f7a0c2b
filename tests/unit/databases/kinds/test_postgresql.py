"""kinds/postgresql.py: how the runbook restores a PostgreSQL dump by hand; what a failed
pg_restore means; when definitions of the schema fingerprint are compared."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from backupctl.databases.cluster import PgBin
from backupctl.databases.kinds import postgresql
from backupctl.databases.model import DumpManifest
from backupctl.databases.reading import Draft
from backupctl.execute import Result

MANIFEST = DumpManifest(job="emr-db", database="emr", kind="postgresql", snapshot_id="1f753783",
                        path="/emr-db.emr.pgdump", sha256="ab" * 32, size=1000,
                        tables={"public.a": 3}, server_version=150018, dump_version="15.18")


def test_the_runbook_creates_the_database_then_restores_into_it() -> None:
    assert postgresql.restore_commands("emr", "/restore/emr-db.emr.pgdump") == [
        ("createdb --template=template0 emr", "db_createdb"),
        ("pg_restore --jobs 2 --no-owner --dbname=emr /restore/emr-db.emr.pgdump",
         "db_restore")]


def _draft() -> Draft:
    return Draft(MANIFEST, "full", MANIFEST.snapshot_id)


def test_a_pg_restore_that_exits_1_is_bad_data_with_its_redacted_error_and_goes_on() -> None:
    draft = _draft()
    failed = Result("pg_restore", 1, stderr=(
        'pg_restore: error: could not execute query: ERROR:  schema "aux" does not exist\n'
        "Command was: CREATE TRIGGER t BEFORE UPDATE ON public.p FOR EACH ROW EXECUTE "
        "FUNCTION aux.touch('山田太郎');\n"
        "pg_restore: warning: errors ignored on restore: 1"))

    assert postgresql.restore_failed(draft, failed, version="15.18") is True  # compare on
    assert draft.not_proven is None
    assert draft.restore_error == (
        'pg_restore 15.18 exited 1: pg_restore: error: could not execute query: ERROR:  '
        'schema "aux" does not exist\npg_restore: warning: errors ignored on restore: 1')
    proof = dataclasses.replace(draft.done(), sha256_match=True)
    assert proof.result == "bad_data" and "山田" not in json.dumps(proof.to_json())


@pytest.mark.parametrize("result", [
    Result("pg_restore", -9, timed_out=True), Result("pg_restore", -9),
    Result("pg_restore", 127, stderr="No such file or directory"),
    Result("pg_restore", 0, stopped=True)])
def test_a_pg_restore_that_did_not_run_to_its_end_proved_nothing(result: Result) -> None:
    draft = _draft()
    assert postgresql.restore_failed(draft, result, version="15.18") is False
    assert draft.restore_error is None and draft.not_proven is not None
    assert draft.not_proven.startswith("pg_restore 15.18 did not restore the dump")


def test_a_clean_pg_restore_is_no_finding() -> None:
    draft = _draft()
    assert postgresql.restore_failed(draft, Result("pg_restore", 0), version="15.18") is True
    assert draft.restore_error is None and draft.not_proven is None


@pytest.mark.parametrize(("server", "names_only"), [(150018, False), (130015, True),
                                                    (170002, True), (None, False)])
def test_definitions_are_compared_on_the_same_major_only(server: int | None,
                                                         names_only: bool) -> None:
    manifest = dataclasses.replace(MANIFEST, server_version=server)
    why = postgresql._other_major(manifest, PgBin(Path("/usr/lib/postgresql/15/bin"),
                                                  "15.18"))
    assert (why is not None) is names_only
    if why is not None and server is not None:
        assert why.startswith(f"dumped from PostgreSQL {server // 10000}, restored on 15.18")
