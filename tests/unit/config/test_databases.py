"""`databases:` in job files: names, kinds, dsn without password, pg_dump options (SPEC §10)."""

from __future__ import annotations

import pytest

from backupctl.errors import ConfigError
from tests.unit.config.conftest import ConfigDir, valid_job

DATABASES = """
databases:
  - name: emr
    kind: postgresql
    dsn: "host=/var/run/postgresql dbname=emr user=backup"
    options: [--exclude-table-data=audit_log, -Z6]
    checks:
      - "SELECT count(*) > 0 FROM patients"
  - name: lab_1
    kind: sqlite
    dsn: /var/lib/lab/lab.sqlite3
"""


def problems(cfg: ConfigDir) -> list[str]:
    with pytest.raises(ConfigError) as info:
        cfg.load()
    return info.value.messages


def test_databases_load_with_their_defaults(cfg: ConfigDir) -> None:
    cfg.write_job("emr-db", valid_job("emr-db") + DATABASES)

    job = cfg.load(strict=True).job("emr-db")

    emr, lab = job.databases
    assert (emr.name, emr.kind, emr.options) == ("emr", "postgresql",
                                                 ["--exclude-table-data=audit_log", "-Z6"])
    assert emr.checks == ["SELECT count(*) > 0 FROM patients"]
    assert (lab.kind, lab.dsn, lab.options, lab.checks) == (
        "sqlite", "/var/lib/lab/lab.sqlite3", [], [])
    assert job.database_named("lab_1") is lab


def test_a_job_without_databases_has_none(cfg: ConfigDir) -> None:
    cfg.write_job("a", valid_job("a"))
    assert cfg.load().job("a").databases == []


def test_a_password_in_the_dsn_is_refused_at_its_line(cfg: ConfigDir) -> None:
    path = cfg.write_job("emr-db", valid_job("emr-db") + DATABASES.replace(
        "user=backup", "user=backup password='s3cret pw'"))

    found = problems(cfg)

    assert len(found) == 1, found
    assert found[0].startswith(f"{path}:25: databases[0].dsn: the connection string contains "
                               "password=; the password never belongs in the job file")
    assert "s3cret" not in found[0]


def test_a_password_in_a_connection_uri_is_refused(cfg: ConfigDir) -> None:
    path = cfg.write_job("emr-db", valid_job("emr-db") + DATABASES.replace(
        '"host=/var/run/postgresql dbname=emr user=backup"',
        "postgresql://backup:s3cret@db01/emr"))

    found = problems(cfg)

    assert len(found) == 1 and found[0].startswith(
        f"{path}:25: databases[0].dsn: the connection URI contains a password"), found
    assert "s3cret" not in found[0]


def test_every_database_mistake_is_reported_with_its_line(cfg: ConfigDir) -> None:
    path = cfg.write_job("emr-db", valid_job("emr-db") + """
databases:
  - name: EMR
    kind: mariadb
    dsn: "dbname=emr"
  - name: lab
    kind: sqlite
    dsn: lab.sqlite3
    options: [-v]
  - name: pg
    kind: postgresql
    dsn: "host=/run dbname"
    options:
      - --file=/tmp/emr.dump
      - pgbench_history
      - --exclude-table-data
    checks: [""]
    extra: 1
""")

    found = problems(cfg)

    assert found[0] == (f"{path}:23: databases[0].name: 'EMR' is not allowed: use lower-case "
                        "letters, digits, '_' and '-', at most 63 characters")
    assert found[1] == (f"{path}:24: databases[0].kind: 'mariadb': must be one of "
                        "'postgresql', 'sqlite'")
    assert found[2] == (f"{path}:28: databases[1].dsn: a sqlite dsn is the absolute path of "
                        "the database file, not 'lab.sqlite3'")
    assert found[3] == (f"{path}:29: databases[1].options: options are pg_dump arguments; "
                        "a sqlite database has none")
    assert found[4].startswith(f"{path}:32: databases[2].dsn: not a libpq connection string "
                               "(missing '=' after the word at character")
    assert found[5] == (f"{path}:34: databases[2].options[0]: --file writes the dump to a file "
                        "on the host; backupctl streams it into restic")
    assert found[6].startswith(f"{path}:35: databases[2].options[1]: 'pgbench_history' is not "
                               "an option")
    assert found[7].startswith(f"{path}:36: databases[2].options[2]: --exclude-table-data "
                               "needs its value attached")
    assert found[8] == f"{path}:37: databases[2].checks[0]: must not be empty"
    assert found[9] == f"{path}:38: databases[2].extra: unknown key"
    assert len(found) == 10, found


def test_database_names_are_unique_in_a_job(cfg: ConfigDir) -> None:
    path = cfg.write_job("emr-db", valid_job("emr-db") + DATABASES.replace("lab_1", "emr"))

    assert problems(cfg) == [f"{path}:22: databases: database names must be unique in the "
                             "job: emr"]
