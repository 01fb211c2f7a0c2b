"""Shared-state queries for several orchestrators on SQLite and a real PostgreSQL: the
restore size a full verify needs, and orchestrators running a job from different files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from backupctl.state import fleet
from backupctl.state.db import Store
from backupctl.state.takeover import finish_if_running
from tests.conftest import Postgres


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('state') / 'state.db'}"
        return
    postgres: Postgres = request.getfixturevalue("postgres")
    yield postgres.empty_url()


def _run(url: str, *, job: str = "emr-db", kind: str = "backup", orchestrator: str = "b1",
         status: str = "success", details: dict[str, Any] | None = None,
         sha: str | None = None) -> None:
    store = Store(url, orchestrator=orchestrator)
    run_id = store.start_run(job=job, kind=kind, job_file_sha256=sha)
    with store.transaction() as conn:
        assert finish_if_running(conn, run_id, {"status": status, "exit_code": 0,
                                                "details": json.dumps(details or {})})


def _size(url: str) -> int | None:
    with Store(url).read() as conn:
        return fleet.restore_size(conn, "emr-db")


def test_restore_size_is_the_newest_backups_snapshot_size(url: str) -> None:
    assert _size(url) is None
    _run(url, kind="verify", details={"mode": "full", "bytes_restored": 7000})
    _run(url, kind="verify", details={"mode": "quick", "bytes_restored": None})
    assert _size(url) == 7000  # no backup with a manifest yet: the last full restore
    _run(url, details={"manifest": {"bytes_total": 5000}})
    _run(url, status="failed", details={"manifest": {"bytes_total": 1}})  # not a snapshot
    assert _size(url) == 5000
    _run(url, orchestrator="b2", details={"manifest": {"bytes_total": 9000}})
    assert _size(url) == 9000  # whoever made it


def _drift(url: str, current: dict[str, str] | None = None) -> list[fleet.Drift]:
    with Store(url).read() as conn:
        return fleet.job_file_drift(conn, current=current)


def test_orchestrators_with_a_different_job_file_are_listed(url: str) -> None:
    _run(url, orchestrator="b1", sha="a" * 64)
    _run(url, orchestrator="b2", sha="a" * 64)
    _run(url, job="pacs", orchestrator="b1", sha="c" * 64)
    _run(url, orchestrator="b3")  # before hashes were recorded: ignored
    assert _drift(url) == []

    _run(url, orchestrator="b2", sha="b" * 64)  # b2's file was edited
    [drift] = _drift(url)
    assert (drift.job, drift.reference, drift.differing) == ("emr-db", "b" * 64, ["b1"])
    assert drift.by_orchestrator == {"b1": "a" * 64, "b2": "b" * 64}

    # Compared with this orchestrator's file as it is now:
    [drift] = _drift(url, current={"emr-db": "a" * 64})
    assert drift.differing == ["b2"]

    _run(url, orchestrator="b1", sha="b" * 64)  # b1 caught up
    assert _drift(url) == []


def test_last_started_ignores_interrupted_runs(url: str) -> None:
    _run(url, status="success")
    _run(url, status="interrupted")
    with Store(url).read() as conn:
        started = fleet.last_started(conn, "emr-db", "backup")
        rows = conn.exec_driver_sql("SELECT started_at, status FROM runs ORDER BY id").all()
    assert started == rows[0][0] and rows[1][1] == "interrupted"
