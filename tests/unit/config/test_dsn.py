"""libpq connection strings and pg_dump options in `databases:` (config/dsn.py)."""

from __future__ import annotations

import pytest

from backupctl.config.dsn import (
    ConninfoError,
    conninfo_keywords,
    dsn_problem,
    pg_dump_option_problem,
)


@pytest.mark.parametrize(("dsn", "keys"), [
    ("host=/var/run/postgresql dbname=emr user=backup", ["host", "dbname", "user"]),
    ("host = db01  port= 5433", ["host", "port"]),
    ("dbname='my db' application_name='it\\'s \\\\ ok'", ["dbname", "application_name"]),
    ("sslmode=require password=x", ["sslmode", "password"]),
    ("  ", []),
])
def test_conninfo_keywords(dsn: str, keys: list[str]) -> None:
    assert conninfo_keywords(dsn) == keys


@pytest.mark.parametrize("dsn", ["host=/x dbname", "=x", "dbname='unterminated"])
def test_malformed_conninfo(dsn: str) -> None:
    with pytest.raises(ConninfoError):
        conninfo_keywords(dsn)


@pytest.mark.parametrize("dsn", [
    "host=db01 password=s3cret", "host=db01 password = 's3 cret'",
    "postgresql://backup:s3cret@db01/emr", "postgres://db01/emr?password=s3cret"])
def test_a_password_in_the_dsn_is_refused(dsn: str) -> None:
    problem = dsn_problem("postgresql", dsn)
    assert problem is not None and "password" in problem and "~/.pgpass" in problem
    assert "s3" not in problem


@pytest.mark.parametrize("dsn", [
    "emr", "host=/var/run/postgresql dbname=emr user=backup", "postgresql://backup@db01/emr",
    "host=db01 passfile=/home/backup/.pgpass"])
def test_usable_dsns(dsn: str) -> None:
    assert dsn_problem("postgresql", dsn) is None


def test_a_sqlite_dsn_is_an_absolute_path() -> None:
    assert dsn_problem("sqlite", "/var/lib/lab/lab.sqlite3") is None
    assert dsn_problem("sqlite", "lab.sqlite3") is not None


@pytest.mark.parametrize("option", [
    "--exclude-table-data=pgbench_history", "-Tpattern", "-Z6", "--compress=6", "-v",
    "--no-sync", "--lock-wait-timeout=60s", "-vTpattern", "--serializable-deferrable"])
def test_accepted_options(option: str) -> None:
    assert pg_dump_option_problem(option) is None


@pytest.mark.parametrize(("option", "says"), [
    ("-f/tmp/emr.dump", "writes the dump to a file"),
    ("--file=/tmp/emr.dump", "writes the dump to a file"),
    ("--fi=/tmp/x", "writes the dump to a file"),  # getopt_long takes unique prefixes
    ("-Fp", "changes the format"),
    ("-vFp", "changes the format"),
    ("--format=plain", "changes the format"),
    ("-j4", "directory format"),
    ("--dbname=other", "put it in dsn"),
    ("--db=other", "put it in dsn"),
    ("-hdb02", "put it in dsn"),
    ("--snapshot=00000003-1", "set by backupctl"),
    ("-W", "prompt for a password"),
    ("-T", "needs its value attached"),
    ("--exclude-table-data", "needs its value attached"),
    ("pgbench_history", "is not an option"),
    ("-", "is not an option"),
    ("--", "is not an option"),
])
def test_refused_options(option: str, says: str) -> None:
    problem = pg_dump_option_problem(option)
    assert problem is not None and says in problem, problem
