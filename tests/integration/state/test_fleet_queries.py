"""The state queries of several orchestrators on SQLite and a real PostgreSQL: the newest
run `--due` compares with, and each orchestrator's job-file hash (issue #15)."""

from __future__ import annotations

import pytest

from backupctl.actions.jobrun import interrupted_error
from backupctl.state import queries
from backupctl.state.db import Store
from tests import runs


@pytest.fixture
def url(state_url: str) -> str:
    return state_url


def _run(url: str, *, job: str = "emr-db", orchestrator: str = "b1",
         sha: str | None = None) -> None:
    store = Store(url, orchestrator=orchestrator)
    with store.transaction() as conn:
        run_id = queries.start_run(conn, job=job, kind="backup", repository="primary",
                                   operator="scheduler", orchestrator=orchestrator, pid=1,
                                   started_at=store.now(), job_file_sha256=sha)
    runs.finish(store, run_id, evidence=False)


def test_each_orchestrators_newest_job_file_hash(url: str) -> None:
    _run(url, orchestrator="b1", sha="a" * 64)
    _run(url, orchestrator="b2", sha="a" * 64)
    _run(url, job="pacs", orchestrator="b1", sha="c" * 64)
    _run(url, orchestrator="b3")  # before hashes were recorded: left out
    _run(url, orchestrator="b2", sha="b" * 64)  # b2's file was edited since

    hashes = Store(url).query(queries.job_file_hashes)

    assert hashes == {"emr-db": {"b1": "a" * 64, "b2": "b" * 64}, "pacs": {"b1": "c" * 64}}


def test_last_started_ignores_interrupted_runs_and_running_ones_if_asked(url: str) -> None:
    store = Store(url, orchestrator="b1")
    runs.record(store)
    runs.record(store, status="interrupted")
    runs.start(store, job="emr-db", kind="backup")
    with store.read() as conn:
        rows = conn.exec_driver_sql("SELECT started_at, status FROM runs ORDER BY id").all()
    assert [r[1] for r in rows] == ["success", "interrupted", "running"]
    assert store.query(queries.last_started, "emr-db", "backup") == rows[2][0]
    assert store.query(queries.last_started, "emr-db", "backup", finished=True) == rows[0][0]
    assert store.query(queries.last_started, "pacs", "backup") is None


def test_interrupting_names_each_runs_orchestrator(url: str) -> None:
    mine, theirs = Store(url, orchestrator="b1"), Store(url, orchestrator="b2")
    own, other = runs.start(mine, job="emr-db", kind="backup"), \
        runs.start(theirs, job="emr-db", kind="verify")
    runs.start(theirs, job="pacs", kind="backup")  # another job: untouched

    with mine.transaction() as conn:
        stale = queries.interrupt_running(conn, "emr-db", orchestrator=None,
                                          finished_at=mine.now(),
                                          error=lambda dead: interrupted_error(dead, by="b1"))

    assert [(r.id, r.orchestrator, r.status) for r in stale] == [
        (own, "b1", "interrupted"), (other, "b2", "interrupted")]
    assert stale[0].error is not None and stale[0].error.startswith(
        "interrupted: the process was killed")
    assert stale[1].error == ("interrupted: orchestrator b2 stopped (lease lost) before the "
                              "run finished; recorded by b1")
    untouched = mine.query(queries.last_run, "pacs", "backup")
    assert untouched is not None and untouched.status == "running"
