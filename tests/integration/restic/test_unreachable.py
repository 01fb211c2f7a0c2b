"""A repository server that accepts connections and never answers (issue 30), with restic
0.14 and 0.18 on both sides: backup (restic on the host) and verify (restic here) fail as
"repository unreachable" (exit 1) in bounded time, never waiting for command_timeout; the
database dump helper's own `restic backup --stdin` is bounded and reported the same way.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from backupctl.config.schema import Database
from backupctl.databases import dump_database
from backupctl.execute import Programs, Secret
from backupctl.execute.local import LocalRunner
from backupctl.restic import reach
from tests.conftest import PASSWORD, Sshd, Workspace, free_port
from tests.integration.verify.conftest import run_json
from tests.notify_servers import Silent

JOB = "emr-db"
WITHIN = 150.0  # the bound is 20 s (0.14: asked first) or 30 s (0.18: stuck requests)


@pytest.fixture(params=["0.14", "0.18"])
def binary(request: pytest.FixtureRequest, restic_014: Path, restic_018: Path) -> Path:
    return restic_014 if request.param == "0.14" else restic_018


def test_a_silent_repository_server_is_unreachable_in_bounded_time(
        ssh_workspace: Workspace, sshd: Sshd, binary: Path) -> None:
    ws = ssh_workspace
    silent = Silent()
    try:
        ws.write_config(restic=str(binary), command_timeout="2h")
        ws.job(JOB, sshd=sshd, host={"restic": str(binary)},
               repository={"url": f"rest:http://127.0.0.1:{silent.port}/{JOB}/"})
        for args in (("backup", JOB), ("verify", JOB)):  # restic on the host, then here
            started = time.monotonic()
            code, result, stderr = run_json(ws, *args, timeout=600)
            took = time.monotonic() - started
            assert code == 1, (args, result, stderr)
            assert took < WITHIN, (args, took, result)
            assert "repository unreachable" in (result["error"] or ""), result
            assert result["failure_reason"] == "unreachable", result
            assert PASSWORD not in str(result) + stderr
    finally:
        silent.close()


def test_the_dump_helpers_restic_is_bounded_too(tmp_path: Path, binary: Path) -> None:
    """0.18 against a dead server retries for 15 minutes: the helper's watch stops it;
    0.14 against a silent one would wait for ever: the helper is not started."""
    source = tmp_path / "app.db"
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE t (x)")
    silent = Silent()
    dead = f"rest:http://127.0.0.1:{free_port()}/{JOB}/"
    url = f"rest:http://127.0.0.1:{silent.port}/{JOB}/"
    runner = reach.Bounded(Programs(LocalRunner(), {"restic": str(binary)}))
    try:
        started = time.monotonic()
        dumped = dump_database(runner, Database(name="app", kind="sqlite", dsn=str(source)),
                               job=JOB, repo_url=url if runner.version().startswith("0.14")
                               else dead, password=Secret(PASSWORD), timeout=3600,
                               restic_binary=str(binary))
        assert time.monotonic() - started < WITHIN
    finally:
        silent.close()
    assert dumped.error is not None and not dumped.ok
    assert "repository unreachable" in dumped.error, dumped.error
    assert "backupctl init" not in dumped.error
