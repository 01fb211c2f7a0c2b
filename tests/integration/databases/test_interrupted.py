"""A full database restore test that is stopped while its throwaway server runs leaves no
server and no files: SIGTERM through the finally path at once, SIGKILL through
`cleanup_leftovers` on the next run (issue #16)."""

from __future__ import annotations

import json
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backupctl.databases import cleanup_leftovers, dump_database
from backupctl.execute import Secret
from backupctl.execute.local import LocalRunner
from backupctl.state.database_proof import schema_to_json
from tests.conftest import PASSWORD
from tests.integration.databases.conftest import JOB, SourceDb, processes_under

# The restore test in its own process, SIGTERM handled like the CLI does (an exception that
# unwinds the stack), and a check that keeps the throwaway server busy until it is stopped.
PROVER = """
import json, signal, sys
from pathlib import Path
from backupctl.databases import DumpManifest, prove_full
from backupctl.execute import Secret
from backupctl.execute.local import LocalRunner
from backupctl.state.database_proof import schema_from_json

class Terminated(BaseException):
    pass

def on_sigterm(signum, frame):
    raise Terminated("terminated by signal %d" % signum)

signal.signal(signal.SIGTERM, on_sigterm)
task = json.loads(sys.stdin.read())
manifest = DumpManifest(**{**task["manifest"],
                          "schema": schema_from_json(task["manifest"]["schema"])})
findings = prove_full(LocalRunner(), manifest, checks=["SELECT pg_sleep(120) IS NOT NULL"],
                      repo_url=task["repo"], password=Secret(task["password"]),
                      scratch_dir=Path(task["scratch"]), timeout=300)
print(json.dumps(findings.to_json()))
"""


@pytest.fixture
def prover(source_db: SourceDb, repo: Path, password: Secret,
           scratch: Path) -> Iterator[subprocess.Popen[str]]:
    """A full restore test running in a subprocess, stopped inside its slow check."""
    result = dump_database(LocalRunner(), source_db.database(), job=JOB, repo_url=str(repo),
                           password=password, timeout=300)
    manifest = {**vars(result.manifest()), "schema": schema_to_json(result.schema)}
    proc = subprocess.Popen([sys.executable, "-c", PROVER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps({"manifest": manifest, "repo": str(repo), "password": PASSWORD,
                                 "scratch": str(scratch)}))
    proc.stdin.close()
    try:
        _wait_for_the_slow_check(scratch, proc)
        yield proc
    finally:
        proc.kill()
        proc.wait()
        cleanup_leftovers(scratch)


def _wait_for_the_slow_check(scratch: Path, proc: subprocess.Popen[str]) -> None:
    import psycopg

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        for socket in scratch.glob(f"{JOB}.pg-*/run/.s.PGSQL.*"):
            if socket.suffix == ".lock":
                continue
            port = socket.name.rsplit(".", 1)[1]
            try:
                with psycopg.connect(host=str(socket.parent), port=port, user="postgres",
                                     dbname="postgres", connect_timeout=5) as conn:
                    row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE state = "
                                       "'active' AND query LIKE '%pg_sleep(120)%' AND pid <> "
                                       "pg_backend_pid()").fetchone()
            except psycopg.Error:
                continue
            if row and row[0]:
                return
        time.sleep(0.1)
    raise AssertionError("the restore test never reached its slow check")


def test_sigterm_during_the_restore_test_stops_the_server_and_wipes_it(
        prover: subprocess.Popen[str], scratch: Path) -> None:
    assert processes_under(scratch) != []  # the throwaway server is running

    prover.send_signal(signal.SIGTERM)
    prover.wait(timeout=120)
    stderr = prover.stderr.read() if prover.stderr else ""

    assert prover.returncode != 0 and "Terminated: terminated by signal 15" in stderr
    assert processes_under(scratch) == []
    assert list(scratch.iterdir()) == []


def postmaster_uid(root: Path) -> int:
    """The real uid of the postmaster serving root/data (from /proc, as root sees it)."""
    from backupctl.databases.cluster import postmaster_of

    pid = postmaster_of(root / "data")
    assert pid is not None
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:")))


def test_a_killed_restore_test_is_cleaned_up_by_the_next_run(
        prover: subprocess.Popen[str], scratch: Path, restore_user: str) -> None:
    prover.kill()
    prover.wait()
    [leftover] = scratch.iterdir()
    assert leftover.name.startswith(f"{JOB}.pg-")
    assert processes_under(scratch) != []  # SIGKILL leaves the postmaster running
    server = pwd.getpwnam(restore_user).pw_uid  # the server's files are the restore user's
    assert {(leftover / d).stat().st_uid for d in ("data", "run")} == {server}
    assert postmaster_uid(leftover) == server

    done = cleanup_leftovers(scratch, JOB)

    assert done[0].startswith("stopped the throwaway PostgreSQL server (pid ")
    assert done[1] == f"wiped {leftover}"
    assert processes_under(scratch) == []
    assert list(scratch.iterdir()) == []


def test_cleanup_never_signals_a_process_that_does_not_serve_the_directory(
        scratch: Path) -> None:
    """A stale postmaster.pid naming a recycled pid (here: this test's own sleep)."""
    leftover = scratch / f"{JOB}.pg-stale1234"
    (leftover / "data").mkdir(parents=True)
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        (leftover / "data" / "postmaster.pid").write_text(f"{bystander.pid}\n{leftover}\n")

        done = cleanup_leftovers(scratch, JOB)

        assert done == [f"wiped {leftover}"]
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
