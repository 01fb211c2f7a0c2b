"""The stream helper's `restore` mode (restore --databases on the target): the target's
restic dump piped through SHA-256 into pg_restore --dbname, restic reading without a lock.
Fake `restic` and `pg_restore` programs record what they were given."""

from __future__ import annotations

import hashlib
from pathlib import Path

from backupctl.databases.streamer import Deadline
from backupctl.databases.streamer_modes import restore_pgdump


def _program(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_restore_pipes_the_dump_into_pg_restore_and_restic_takes_no_lock(
        tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    restic = _program(tmp_path / "restic", f'echo "$@" > {tmp_path}/restic.argv\n'
                      "printf 'the dump'\n")
    _program(bin_dir / "pg_restore", f'echo "$@" > {tmp_path}/pg_restore.argv\n'
             f"cat > {tmp_path}/restored\n")
    head = {"repo": "rest:http://u:p@127.0.0.1:1/", "password": "pw", "snapshot": "ab12cd34",
            "path": "/emr.emr.pgdump", "dsn": "host=/run/postgresql dbname='emr_restored'",
            "restic": str(restic), "pg_bin": str(bin_dir)}

    record = restore_pgdump(head, Deadline(None))

    assert (record["restic_rc"], record["list_rc"]) == (0, 0)
    assert record["sha256"] == hashlib.sha256(b"the dump").hexdigest()
    assert (tmp_path / "restored").read_bytes() == b"the dump"
    restic_argv = (tmp_path / "restic.argv").read_text().split()
    assert restic_argv[-5:] == ["--no-cache", "--no-lock", "dump", "ab12cd34",
                                "/emr.emr.pgdump"]
    assert "pw" not in restic_argv and "u:p" not in " ".join(restic_argv)
    assert (tmp_path / "pg_restore.argv").read_text().split() == [
        "--no-owner", "--no-privileges", "--no-password", "--dbname=host=/run/postgresql",
        "dbname='emr_restored'"]
