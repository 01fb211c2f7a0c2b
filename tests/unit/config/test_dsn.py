"""libpq connection strings and pg_dump options in `databases:`, and the global
`database_url` (config/dsn.py)."""

from __future__ import annotations

import pytest

from backupctl.config.dsn import (
    ConninfoError,
    conninfo_keywords,
    conninfo_pairs,
    database_url_problem,
    database_url_secrets,
    dsn_problem,
    pg_dump_option_problem,
)
from backupctl.errors import ConfigError
from backupctl.log import mask
from backupctl.status import ExitStatus
from tests.unit.config.conftest import ConfigDir


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
    "postgresql://backup:s3cret@db01/emr", "postgres://db01/emr?password=s3cret",
    "host=db01 sslpassword=s3cret", "postgres://db01/emr?sslpassword=s3cret"])
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


# -- database_url: a URL without a password (issue #24) -------------------------------------

DB_PW = "pgPw-7d1e-secret"


@pytest.mark.parametrize("url", [
    f"postgresql://backupctl:{DB_PW}@db01/backupctl",
    f"postgres://backupctl:{DB_PW}@db01:5432/backupctl?sslmode=require",
    f"postgresql+psycopg://backupctl:{DB_PW}@db01,db02/backupctl",
    f"postgresql://backupctl@db01/backupctl?sslmode=require&password={DB_PW}",
    f"postgresql://:{DB_PW}@db01/backupctl",
])
def test_a_database_url_with_a_password_is_refused(url: str) -> None:
    problem = database_url_problem(url)
    assert problem is not None and "~/.pgpass" in problem and "PGPASSFILE" in problem
    assert DB_PW not in problem
    assert DB_PW in database_url_secrets(url)


@pytest.mark.parametrize("url", [
    "postgresql://backupctl@db01/backupctl",
    "postgresql://backupctl@db01,db02/backupctl?target_session_attrs=read-write",
    "postgresql+psycopg://backupctl@db01/backupctl?keepalives_idle=5",
    "sqlite:////var/lib/backupctl/state.db",
])
def test_database_urls_without_a_password(url: str) -> None:
    assert database_url_problem(url) is None
    assert database_url_secrets(url) == []


def test_a_libpq_key_value_string_is_no_database_url_and_its_password_is_a_secret() -> None:
    dsn = f"host=db01 dbname=backupctl password='{DB_PW} x'"
    problem = database_url_problem(dsn)
    assert problem is not None and "not a libpq key=value string" in problem
    assert "~/.pgpass" in problem and DB_PW not in problem
    assert database_url_secrets(dsn) == [f"{DB_PW} x"]
    assert "password" not in (database_url_problem("host=db01 dbname=backupctl") or "")


def test_a_password_is_found_as_written_and_percent_decoded() -> None:
    assert database_url_secrets("postgresql://u:p%40ss@h/db?password=q%2Fr") == [
        "p%40ss", "q%2Fr", "p@ss", "q/r"]


def test_conninfo_pairs_unquote_values() -> None:
    assert conninfo_pairs(r"host=/run/pg password='it\'s a pw' user=a\ b") == [
        ("host", "/run/pg"), ("password", "it's a pw"), ("user", "a b")]


def test_the_global_database_url_with_a_password_is_exit_2_masked_naming_file_line_key(
        cfg: ConfigDir) -> None:
    cfg.write_config(f"jobs_dir: {cfg.jobs_dir}\nstate_dir: {cfg.root / 'state'}\n"
                     f"scratch_dir: {cfg.root / 'scratch'}\n"
                     f"known_hosts: {cfg.root / 'known_hosts'}\n"
                     f"database_url: postgresql://backupctl@db01/backupctl?password={DB_PW}\n")
    with pytest.raises(ConfigError) as info:
        cfg.load()
    assert info.value.status == ExitStatus.USAGE
    [message] = info.value.messages
    assert message.startswith(f"{cfg.config}:5: database_url: database_url holds a password")
    assert "~/.pgpass" in message and DB_PW not in message
    assert mask(f"connection to postgresql://backupctl@db01/?password={DB_PW} failed") == \
        "connection to postgresql://backupctl@db01/?password=*** failed"
