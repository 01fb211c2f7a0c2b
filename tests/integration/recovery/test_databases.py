"""`restore --databases` (SPEC §11): each dump restored into the target's PostgreSQL as
`<name>_restored` over the recovery's own SSH connection (pg_restore on the target reading
the target's `restic dump` through a pipe), rows and the schema fingerprint compared with the
manifest; refused when that database exists. Real sshd (the replacement server), restic,
rclone and PostgreSQL (the worker's server plays the target's, reached as a CREATEDB role).
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PG_BIN, Postgres, Sshd, Workspace
from tests.integration.recovery.conftest import rows, ssh_target


def _psql(postgres: Postgres, sql: str, *, dbname: str = "postgres") -> str:
    return subprocess.run(
        [str(PG_BIN / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
         "-p", str(postgres.port), "-U", "postgres", "-d", dbname, "-c", sql],
        check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def clinic(postgres: Postgres) -> Iterator[tuple[str, str]]:
    """A source database (Japanese text, a sequence, a foreign key) and a role with CREATEDB
    that the target connects as; both dropped afterwards with what the test restored."""
    token = secrets.token_hex(4)
    source, role = f"clinic_{token}", f"recoverer_{token}"
    _psql(postgres, f"CREATE DATABASE {source} TEMPLATE template0 ENCODING 'UTF8' "
          "LOCALE 'C'")
    _psql(postgres, "CREATE TABLE 診療科 (id serial PRIMARY KEY, 名前 text UNIQUE);"
          "CREATE TABLE 患者 (id int PRIMARY KEY, 科 int REFERENCES 診療科, 名前 text);"
          "INSERT INTO 診療科 (名前) VALUES ('内科'), ('小児科');"
          "INSERT INTO 患者 SELECT g, 1 + g % 2, '患者 ' || g FROM generate_series(1, 500) g",
          dbname=source)
    _psql(postgres, f"CREATE ROLE {role} LOGIN CREATEDB NOSUPERUSER")
    yield source, role
    for name in (source, f"db{token}_restored"):
        _psql(postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _psql(postgres, f"DROP ROLE IF EXISTS {role}")


def test_databases_come_back_into_the_targets_postgresql_proven_never_over_one_and_drilled(
        workspace: Workspace, replacement: Sshd, postgres: Postgres, tmp_path: Path,
        clinic: tuple[str, str]) -> None:
    source, role = clinic
    name = f"db{source.removeprefix('clinic_')}"
    src = workspace.root / "src" / "emr"
    src.mkdir(parents=True)
    (src / "カルテ.txt").write_text("患者データ\n")
    dsn = f"host=127.0.0.1 port={postgres.port} user=postgres dbname={source}"
    workspace.job("emr", source=src, verify={"sample": "all"},
                  databases=[{"name": name, "kind": "postgresql", "dsn": dsn,
                              "checks": ["SELECT count(*) = 500 FROM 患者"]}])
    assert workspace.run("backup", "emr").returncode == 0
    target_dsn = f"host=127.0.0.1 port={postgres.port} user={role} dbname=postgres"

    def restore(into: Path) -> subprocess.CompletedProcess[str]:
        return workspace.run("restore", "emr", "--to", ssh_target(replacement, into),
                             "--identity", str(replacement.identity), "--snapshot", "latest",
                             "--databases", "--target-dsn", target_dsn, "--json")

    result = restore(tmp_path / "new")

    assert result.returncode == 0, result.stdout + result.stderr
    [job] = json.loads(result.stdout)["jobs"]
    [proof] = job["databases"]
    assert (proof["name"], proof["mode"], proof["result"]) == (name, "full", "proven")
    assert proof["tables_checked"] == 2 and proof["rows_restored"] == 502
    assert proof["sha256_match"] is True and [c["passed"] for c in proof["checks"]] == [True]
    # 2 primary keys, a unique and a foreign key constraint, the serial's sequence
    assert proof["schema_checked"] == 5 and not proof.get("schema_mismatches")
    assert job["target_dsn"] == target_dsn and job["result"] == "pass"
    restored = f"{name}_restored"
    assert _psql(postgres, "SELECT count(*) FROM 患者 WHERE 名前 = '患者 7'",
                 dbname=restored) == "1"
    assert _psql(postgres, f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname "
                 f"= '{restored}'") == role

    again = restore(tmp_path / "again")

    assert again.returncode == 2, again.stdout + again.stderr
    assert f"{restored} already exist" in again.stderr and "nothing was run" in again.stderr
    assert not (tmp_path / "again").exists()
    assert len(rows(workspace, "SELECT id FROM runs WHERE kind = 'recovery'")) == 1

    # the same onto a spare server as a drill, once the first copy is out of the way
    _psql(postgres, f'DROP DATABASE "{restored}" WITH (FORCE)')
    drilled = workspace.run("drill", "emr", "--to", ssh_target(replacement, tmp_path / "spare"),
                            "--identity", str(replacement.identity), "--snapshot", "latest",
                            "--databases", "--target-dsn", target_dsn, "--yes", "--json")

    assert drilled.returncode == 0, drilled.stdout + drilled.stderr
    [drill] = json.loads(drilled.stdout)["jobs"]
    assert drill["target_kind"] == "replacement" and drill["result"] == "pass"
    [step] = [s for s in drill["steps"] if s["name"].startswith("database ")]
    assert step["name"] == f"database {name} → {restored} on the target"
    assert step["result"] == "pass" and drill["databases"][0]["result"] == "proven"
    assert _psql(postgres, "SELECT count(*) FROM 患者", dbname=restored) == "500"
