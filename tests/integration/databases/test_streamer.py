"""The stream helper's PostgreSQL programs (real PostgreSQL and restic): PATH's while they
can dump the server; on a host whose PATH has none (PGDG's layout, a minimal service PATH) or
only an older pg_dump, the installed clients it finds itself, pg_dump of the server's major
version."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from backupctl.databases import dump_database
from backupctl.execute import Arg, Result, Secret, StderrWatch, StdoutSink
from backupctl.execute.local import LocalRunner
from tests.conftest import PG_BIN
from tests.integration.databases.conftest import JOB, SourceDb


class _BarePath:
    """A LocalRunner whose commands see only `path` (default /var/empty: no PostgreSQL, no
    restic)."""

    host = "local"

    def __init__(self, path: str = "/var/empty") -> None:
        self.inner = LocalRunner()
        self.path = path

    def run(self, argv: Sequence[Arg], *, stdin: bytes | None = None,
            timeout: float | None = None, stdout_sink: StdoutSink | None = None,
            env: dict[str, str] | None = None,
            stderr_watch: StderrWatch | None = None) -> Result:
        return self.inner.run(argv, stdin=stdin, timeout=timeout, stdout_sink=stdout_sink,
                              env={**(env or {}), "PATH": self.path},
                              stderr_watch=stderr_watch)

    def shell(self, command: str, *, timeout: float | None = None) -> Result:
        return self.run(["sh", "-c", command], timeout=timeout)

    def close(self) -> None:
        pass


def test_a_host_without_postgresql_on_path_dumps_with_its_installed_client(
        source_db: SourceDb, repo: Path, password: Secret) -> None:
    restic = shutil.which("restic")
    assert restic is not None

    result = dump_database(_BarePath(), source_db.database(), job=JOB, repo_url=str(repo),
                           password=password, timeout=300, restic_binary=restic,
                           python=sys.executable)

    assert result.error is None, result.error
    assert result.server_version is not None and result.dump_version is not None
    assert int(result.dump_version.split(".")[0]) == result.server_version // 10000
    assert result.tables and result.path == f"/{JOB}.emr.pgdump"


def test_a_pg_dump_on_path_older_than_the_server_gives_way_to_an_installed_one(
        source_db: SourceDb, repo: Path, password: Secret, tmp_path: Path) -> None:
    restic = shutil.which("restic")
    assert restic is not None
    old = tmp_path / "old-client"
    old.mkdir()
    (old / "psql").symlink_to(PG_BIN / "psql")
    (old / "pg_dump").write_text("#!/bin/sh\n[ \"$1\" = --version ] && "
                                 "echo 'pg_dump (PostgreSQL) 9.6.24' && exit 0\nexit 99\n")
    (old / "pg_dump").chmod(0o755)

    result = dump_database(_BarePath(str(old)), source_db.database(), job=JOB,
                           repo_url=str(repo), password=password, timeout=300,
                           restic_binary=restic, python=sys.executable)

    assert result.error is None, result.error
    assert result.dump_version is not None and result.server_version is not None
    assert int(result.dump_version.split(".")[0]) == result.server_version // 10000

