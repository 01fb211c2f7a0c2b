"""The throwaway server's user through the real CLI (SPEC §10a): a full verify or a drill
that could not run the server as an unprivileged `restore_user` is exit 2 naming what to
fix, before anything is restored; a quick verify needs no such user."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.integration.databases.conftest import JOB, SourceDb
from tests.integration.databases.test_cli import db_job
from tests.integration.verify.conftest import run_json


@pytest.fixture
def private() -> Iterator[Path]:
    """A 0700 directory under /tmp: nobody else may pass through it."""
    where = Path(tempfile.mkdtemp(prefix="bk-private-"))
    yield where
    shutil.rmtree(where, ignore_errors=True)


def _runs(ws: Workspace, kind: str) -> int:
    with sqlite3.connect(ws.state_dir / "state.db") as conn:
        (count,) = conn.execute("SELECT count(*) FROM runs WHERE kind = ?", (kind,)).fetchone()
    return int(count)


def test_a_missing_restore_user_is_exit_2_naming_it_and_nothing_is_restored(
        workspace: Workspace, scratch: Path, source_db: SourceDb) -> None:
    db_job(workspace, scratch, source_db)
    code, _, stderr = run_json(workspace, "backup", JOB)
    assert code == 0, stderr
    workspace.write_config(scratch_dir=str(scratch), restore_user="bk-no-such-user")

    for args in (["verify", JOB, "--mode", "full"], ["drill", JOB, "--yes"]):
        proc = workspace.run(*args)

        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "restore_user 'bk-no-such-user' does not exist" in proc.stderr
        assert ("useradd --system --no-create-home --shell /usr/sbin/nologin bk-no-such-user"
                in proc.stderr)
        assert "nothing was restored" in proc.stderr and "Traceback" not in proc.stderr
        assert list(scratch.iterdir()) == []
    assert _runs(workspace, "verify") == _runs(workspace, "drill") == 0

    code, quick, stderr = run_json(workspace, "verify", JOB, "--mode", "quick")
    assert code == 0, (quick, stderr)  # the quick proof starts no server


def test_a_scratch_dir_under_a_0700_parent_is_exit_2_naming_the_parent(
        workspace: Workspace, source_db: SourceDb, private: Path) -> None:
    scratch = private / "scratch"
    scratch.mkdir(mode=0o711)
    scratch.chmod(0o711)
    db_job(workspace, scratch, source_db)

    proc = workspace.run("verify", JOB, "--mode", "full")

    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert (f"restore_user 'backupctl-restore' cannot pass through {private} (a parent of "
            f"scratch_dir {scratch}, mode 0700") in proc.stderr
    assert f"Run: chmod o+x {private}" in proc.stderr
    assert list(scratch.iterdir()) == [] and _runs(workspace, "verify") == 0
