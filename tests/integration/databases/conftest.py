"""Real-component fixtures for database backups and restore tests (issue #16): a source
database in the `postgres` cluster loaded with `pgbench -i` plus a table with Japanese
text, a restic repository, and a scratch directory the restore user can pass through."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backupctl.config.schema import Database
from backupctl.execute import Secret
from backupctl.execute.ssh import SshRunner
from tests.conftest import PASSWORD, PG_BIN, TIMING, Postgres, Sshd, need, restic

JOB = "emr-db"
JAPANESE = [(1, "山田太郎", "内科"), (2, "鈴木花子", "小児科"), (3, "佐藤 一郎", "整形外科")]


@dataclass
class SourceDb:
    """One database of the test cluster, as the job file would name it."""

    postgres: Postgres
    dbname: str

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.postgres.port} user=postgres dbname={self.dbname}"

    def database(self, *, name: str = "emr", options: list[str] | None = None,
                 checks: list[str] | None = None) -> Database:
        return Database(name=name, kind="postgresql", dsn=self.dsn, options=options or [],
                        checks=checks or [])

    def psql(self, sql: str) -> str:
        return subprocess.run(
            [str(PG_BIN / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", self.dsn,
             "-c", sql], check=True, capture_output=True, text=True).stdout.strip()

    def pgbench(self, *args: str) -> None:
        subprocess.run([str(PG_BIN / "pgbench"), "-h", "127.0.0.1", "-p",
                        str(self.postgres.port), "-U", "postgres", *args, self.dbname],
                       check=True, capture_output=True)


@pytest.fixture
def source_db(postgres: Postgres) -> Iterator[SourceDb]:
    """A fresh database: pgbench -i -s 1 and 患者 (patients) with Japanese names."""
    name = f"src_{secrets.token_hex(4)}"
    admin = SourceDb(postgres, "postgres")
    admin.psql(f'DROP DATABASE IF EXISTS "{name}"')
    admin.psql(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'")
    db = SourceDb(postgres, name)
    db.pgbench("-i", "-s", "1", "-q")
    db.psql("CREATE TABLE 患者 (id int PRIMARY KEY, 名前 text NOT NULL, 診療科 text);"
            + "".join(f"INSERT INTO 患者 VALUES ({i}, '{n}', '{d}');" for i, n, d in JAPANESE))
    yield db
    with contextlib.suppress(subprocess.CalledProcessError):
        admin.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def repo(tmp_path: Path, restic_template: Path) -> Path:
    target = tmp_path / "repo"
    shutil.copytree(restic_template, target)
    return target


@pytest.fixture
def password() -> Secret:
    return Secret(PASSWORD)


@pytest.fixture
def scratch(restore_user: str) -> Iterator[Path]:
    """scratch_dir for full restore tests. Under /tmp, 0711: the throwaway server runs as
    `restore_user` and must pass through to its own directories inside (pytest's tmp_path
    is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="bk-scratch-"))
    base.chmod(0o711)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def ssh_runner(sshd: Sshd) -> Iterator[SshRunner]:
    runner = SshRunner(job=JOB, address="127.0.0.1", port=sshd.port, user="root",
                       identity_file=sshd.identity, known_hosts=sshd.known_hosts, **TIMING)
    yield runner
    runner.close()


def snapshots(repo: Path) -> list[dict[str, object]]:
    import json

    result = restic(repo, "snapshots", "--json")
    return list(json.loads(result.stdout))


def processes_under(path: Path) -> list[str]:
    """Processes whose working directory or command line is inside `path`."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if cwd.startswith(str(path)) or str(path) in cmd:
            found.append(f"{pid}: {cmd[:200]}")
    return found


def make_sqlite(path: Path, *, rows: int = 500) -> None:
    """A sqlite source in WAL mode with Japanese text, an index and a view."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE 患者 (id INTEGER PRIMARY KEY, 名前 TEXT NOT NULL)")
        conn.executemany("INSERT INTO 患者 VALUES (?, ?)", japanese_rows(rows))
        conn.execute("CREATE TABLE results (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                     "patient INTEGER REFERENCES 患者(id), value REAL)")
        conn.executemany("INSERT INTO results (patient, value) VALUES (?, ?)",
                         [(i % rows + 1, i * 0.5) for i in range(rows * 2)])
        conn.execute("CREATE INDEX results_patient ON results(patient)")
        conn.execute("CREATE VIEW recent AS SELECT * FROM results WHERE id > 10")
        conn.commit()


def japanese_rows(n: int) -> list[tuple[int, str]]:
    names = [name for _, name, _ in JAPANESE]
    return [(i + 1, f"{names[i % len(names)]}{i}") for i in range(n)]


Wrapper = Callable[[str], Path]


@pytest.fixture
def pg_bin_with(tmp_path: Path) -> Wrapper:
    """A bin directory whose pg_dump is a shell wrapper around the real one (psql real)."""

    def make(body: str) -> Path:
        bindir = tmp_path / "pgbin"
        bindir.mkdir(exist_ok=True)
        (bindir / "psql").unlink(missing_ok=True)
        (bindir / "psql").symlink_to(PG_BIN / "psql")
        wrapper = bindir / "pg_dump"
        wrapper.write_text("#!/bin/sh\n"
                           f'case "$1" in --version) exec {PG_BIN}/pg_dump "$@";; esac\n'
                           f"REAL={PG_BIN}/pg_dump\n{body}\n")
        wrapper.chmod(0o755)
        return bindir

    need("sh")
    return make
