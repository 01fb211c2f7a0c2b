"""Schema, not only rows (SPEC §10a, issue #27): the schema fingerprint taken in the dump's
own snapshot, compared after the throwaway restore of full verify and drill (and with the
dump's table of contents by the quick verify).

Real PostgreSQL 15 (`pgbench -i`: pgbench_accounts has the primary key
pgbench_accounts_pkey), real restic, the real throwaway server as `restore_user`. Each test
dumps once and restores once or twice (~4 s each).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from backupctl.actions.restore_test.databases import describe
from backupctl.databases import DumpManifest, dump_database, prove_full
from backupctl.databases.compare import NO_FINGERPRINT
from backupctl.execute import Secret
from backupctl.execute.local import LocalRunner
from backupctl.state.database_proof import SchemaMismatch, schema_from_json
from backupctl.state.dumps import DatabaseManifestRow
from tests.conftest import Workspace
from tests.integration.databases.conftest import JOB, SourceDb, processes_under
from tests.integration.databases.test_cli import db_job
from tests.integration.verify.conftest import run_json

# what pg_dump --section=post-data would have restored: pgbench's primary keys, and what the
# test adds (an index, a trigger, a foreign key); names quoted as quote_ident quotes them
POST_DATA = sorted([
    SchemaMismatch("primary key", "public.pgbench_accounts", "pgbench_accounts_pkey", "missing"),
    SchemaMismatch("primary key", "public.pgbench_branches", "pgbench_branches_pkey", "missing"),
    SchemaMismatch("primary key", "public.pgbench_tellers", "pgbench_tellers_pkey", "missing"),
    SchemaMismatch("primary key", 'public."患者"', '"患者_pkey"', "missing"),
    SchemaMismatch("foreign key", 'public."患者"', '"患者_branch_fkey"', "missing"),
    SchemaMismatch("index", 'public."患者"', '"患者_名前"', "missing"),
    SchemaMismatch("trigger", 'public."患者"', '"患者_touch"', "missing")],
    key=lambda m: (m.kind, m.table, m.name))  # as compare_schema sorts them


def _schema(source: SourceDb) -> None:
    """An index, a foreign key and a trigger on 患者 besides pgbench's primary keys."""
    source.psql("""
        ALTER TABLE 患者 ADD COLUMN branch int DEFAULT 1 CONSTRAINT 患者_branch_fkey
            REFERENCES pgbench_branches (bid);
        CREATE INDEX 患者_名前 ON 患者 (名前);
        CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql
            AS $f$BEGIN RETURN NEW; END$f$;
        CREATE TRIGGER 患者_touch BEFORE UPDATE ON 患者 FOR EACH ROW
            EXECUTE FUNCTION public.touch()""")


def test_a_dump_without_post_data_restores_every_row_but_is_bad_data_naming_the_primary_key(
        workspace: Workspace, scratch: Path, source_db: SourceDb) -> None:
    _schema(source_db)
    db_job(workspace, scratch, source_db, options=["--section=pre-data", "--section=data"])
    code, done, stderr = run_json(workspace, "backup", JOB)
    assert code == 0 and done["databases"][0]["error"] is None, (done, stderr)

    quick = workspace.run("verify", JOB)  # the table of contents lacks the post-data entries
    code, verified, stderr = run_json(workspace, "verify", JOB, "--mode", "full")
    drilled = workspace.run("drill", JOB, "--yes", "--operator", "test")

    assert code == 3, (verified, stderr)
    [proof] = verified["databases"]
    assert proof["result"] == "bad_data" and "restore_error" not in proof, proof
    assert proof["mismatches"] == [], "every row came back"
    assert proof["rows_restored"] == proof["rows_expected"]
    assert [SchemaMismatch(**m) for m in proof["schema_mismatches"]] == POST_DATA
    assert proof["schema_checked"] == len(POST_DATA)  # all of them lost
    assert quick.returncode == 3, (quick.stdout, quick.stderr)
    assert ("database emr, primary key pgbench_accounts_pkey of table public.pgbench_accounts: "
            "the dump holds no definition of it") in quick.stdout + quick.stderr
    assert '"患者_branch_fkey"' in quick.stdout + quick.stderr
    # the drill restores the same way, and says what is missing
    assert drilled.returncode == 3, (drilled.stdout, drilled.stderr)
    assert ("database emr, primary key pgbench_accounts_pkey of table public.pgbench_accounts: "
            "missing from the restored database") in drilled.stdout + drilled.stderr
    assert '"患者_touch"' in drilled.stdout + drilled.stderr
    assert list(scratch.iterdir()) == [] and processes_under(scratch) == []


def test_a_trigger_and_a_sequence_left_out_and_a_failed_pg_restore_are_bad_data_naming_them(
        source_db: SourceDb, repo: Path, password: Secret, scratch: Path) -> None:
    # The trigger's function lives in a schema the options leave out: pg_restore cannot make
    # the trigger and exits 1, while every row comes back. The sequence is left out outright.
    source_db.psql("""
        CREATE SCHEMA aux;
        CREATE FUNCTION aux.touch() RETURNS trigger LANGUAGE plpgsql
            AS $f$BEGIN RETURN NEW; END$f$;
        CREATE TRIGGER 患者_touch BEFORE UPDATE ON 患者 FOR EACH ROW
            EXECUTE FUNCTION aux.touch();
        CREATE SEQUENCE public.receipt_no""")
    database = source_db.database(options=["--exclude-schema=aux",
                                           "--exclude-table=public.receipt_no"])
    dumped = dump_database(LocalRunner(), database, job=JOB, repo_url=str(repo),
                           password=password, timeout=300)
    assert dumped.error is None, dumped.error
    assert dumped.schema is not None
    assert {(o.kind, o.name) for o in dumped.schema} >= {
        ("trigger", '"患者_touch"'), ("sequence", "public.receipt_no"),
        ("primary key", "pgbench_accounts_pkey")}

    found = prove_full(LocalRunner(), dumped.manifest(), checks=[], repo_url=str(repo),
                       password=password, scratch_dir=scratch, timeout=300)

    assert found.result == "bad_data" and found.mismatches == [], found
    assert found.rows_restored == found.rows_expected
    assert found.schema_mismatches == [
        SchemaMismatch("sequence", "", "public.receipt_no", "missing"),
        SchemaMismatch("trigger", 'public."患者"', '"患者_touch"', "missing")]
    assert found.restore_error is not None
    assert found.restore_error.startswith("pg_restore 15.") and " exited 1: " in \
        found.restore_error
    assert "schema \"aux\" does not exist" in found.restore_error
    assert found.findings()[0] == f"database emr: {found.restore_error}"
    assert list(scratch.iterdir()) == [] and processes_under(scratch) == []


def test_a_backup_recorded_without_a_fingerprint_is_proven_on_rows_only_and_says_so(
        source_db: SourceDb, repo: Path, password: Secret, scratch: Path) -> None:
    dumped = dump_database(LocalRunner(), source_db.database(), job=JOB, repo_url=str(repo),
                           password=password, timeout=300)
    assert dumped.error is None and dumped.schema, dumped
    # what an older backupctl recorded: the manifest row has no schema_objects
    old = DumpManifest.from_row(dataclasses.replace(_stored(dumped.manifest()), schema=None))

    found = prove_full(LocalRunner(), old, checks=[], repo_url=str(repo), password=password,
                       scratch_dir=scratch, timeout=300)

    assert found.result == "proven", found
    assert found.schema_checked is None and found.schema_mismatches == []
    assert found.schema_note == NO_FINGERPRINT
    assert "no schema fingerprint recorded (rows only)" in describe(found)
    assert list(scratch.iterdir()) == [] and processes_under(scratch) == []


def _stored(manifest: DumpManifest) -> DatabaseManifestRow:
    """The manifest as the state database gives it back (state.dumps)."""
    row = manifest.row(run_id=1, files_snapshot_id="deadbeef", created_at="t")
    tables, schema = json.loads(row.pop("tables")), schema_from_json(row.pop("schema_objects"))
    return DatabaseManifestRow(**row, tables=tables, schema=schema)
