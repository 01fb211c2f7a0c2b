"""kinds/postgresql.py: how the runbook restores a PostgreSQL dump by hand."""

from __future__ import annotations

from backupctl.databases.kinds import postgresql


def test_the_runbook_creates_the_database_then_restores_into_it() -> None:
    assert postgresql.restore_commands("emr", "/restore/emr-db.emr.pgdump") == [
        ("createdb --template=template0 emr", "db_createdb"),
        ("pg_restore --jobs 2 --no-owner --dbname=emr /restore/emr-db.emr.pgdump",
         "db_restore")]
