"""kinds/sqlite.py: what a sqlite database's dump runs and how the runbook restores it."""

from __future__ import annotations

from backupctl.config.schema import Database
from backupctl.databases.dump import plan
from backupctl.databases.kinds import sqlite

LAB = Database(name="lab", kind="sqlite", dsn="/srv/lab/lab.db")


def test_the_dump_plan_copies_in_memory_and_streams_into_restic() -> None:
    helper, copy, backup = plan(LAB, job="lab-db", where="local")

    assert helper.startswith("on local: python3 -I -c <stream helper>")
    assert copy == "  sqlite3 online backup of /srv/lab/lab.db into memory, count rows"
    assert backup.startswith("  | restic --repository-file /dev/fd/M --password-file "
                             "/dev/fd/N backup --stdin --stdin-filename ")
    assert "lab.sqlite --host lab-db --tag backupctl-db --tag backupctl-db:lab" in backup


def test_an_image_is_checked_where_restic_wrote_it() -> None:
    assert sqlite.restore_commands("lab", "/restore/lab.sqlite") == [
        ("sqlite3 /restore/lab.sqlite 'PRAGMA integrity_check'", "db_sqlite_check")]


def test_sql_text_is_loaded_into_a_database_file_first() -> None:
    assert sqlite.restore_commands("lab", "/restore/my lab.sql") == [
        ("sqlite3 '/restore/my lab.sqlite' < '/restore/my lab.sql'", "db_sqlite_sql"),
        ("sqlite3 '/restore/my lab.sqlite' 'PRAGMA integrity_check'", "db_sqlite_check")]
