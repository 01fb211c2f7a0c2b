"""Concurrent writers never fork the chain: two processes × 200 appends on SQLite and on a
real PostgreSQL, and `backup --all` with concurrency 2 on PostgreSQL (issue #7)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backupctl.evidence import chain
from backupctl.state.db import Store
from tests.conftest import Postgres, Workspace

ROOT = Path(__file__).resolve().parents[3]  # the worker imports the tests package
PER_PROCESS = 200


def _two_writers(url: str) -> None:
    """Both workers connect first, then are released together."""
    procs = [subprocess.Popen([sys.executable, "-m", "tests.integration.evidence.append_worker",
                               url, name, str(PER_PROCESS)], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for name in ("writer-a", "writer-b")]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n", \
            proc.communicate(timeout=60)[1]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr


def _assert_one_chain(url: str, expected: int) -> list[chain.Entry]:
    store = Store(url)
    with store.read() as conn:
        entries = list(chain.entries(conn))
    result = chain.check(entries)
    assert result.ok, result.problem
    assert result.count == expected
    assert len({e.record["prev_hash"] for e in entries}) == expected  # no fork anywhere
    return entries


def test_two_processes_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    Store(url)  # create the tables before the race
    _two_writers(url)
    entries = _assert_one_chain(url, 2 * PER_PROCESS)
    jobs = [e.record["job"] for e in entries]
    assert jobs.count("writer-a") == jobs.count("writer-b") == PER_PROCESS
    assert jobs != sorted(jobs), "the writers never interleaved: the test proves nothing"


@pytest.fixture
def pg_url(postgres: Postgres) -> str:
    url = postgres.empty_url()
    Store(url)  # create the tables before the race
    return url


def test_two_processes_postgresql(pg_url: str) -> None:
    _two_writers(pg_url)
    entries = _assert_one_chain(pg_url, 2 * PER_PROCESS)
    jobs = [e.record["job"] for e in entries]
    assert jobs.count("writer-a") == jobs.count("writer-b") == PER_PROCESS
    assert jobs != sorted(jobs), "the writers never interleaved: the test proves nothing"


def test_backup_all_with_concurrency_on_postgresql(workspace: Workspace, pg_url: str) -> None:
    workspace.write_config(database_url=pg_url, concurrency=2)
    for name in ("emr-db", "pacs", "lab"):
        workspace.job(name)
        (workspace.root / "src" / name / "f.txt").write_text(name)
    result = workspace.run("backup", "--all")
    assert result.returncode == 0, result.stderr
    verified = workspace.run("evidence", "verify", "--db", "--json")
    assert verified.returncode == 0, verified.stderr
    payload = json.loads(verified.stdout)
    assert payload["ok"] and payload["count"] == 3
