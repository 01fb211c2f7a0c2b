"""Takeover of a dead run and the guard against a late finish, on SQLite and a real
PostgreSQL (issue #15): stale `running` rows become `interrupted` with their evidence
record, naming the orchestrator that stopped; a run closed by someone else is never closed
again, so nothing is recorded twice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from backupctl.evidence import chain
from backupctl.state.db import Store
from backupctl.state.schema import runs
from backupctl.state.takeover import (
    OWN_ERROR,
    RunTakenOver,
    finish_if_running,
    guarded_finish,
    take_over,
)
from tests.conftest import Postgres


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('state') / 'state.db'}"
        return
    postgres: Postgres = request.getfixturevalue("postgres")
    yield postgres.empty_url()


def _runs(store: Store) -> list[tuple[str, str, str, str | None]]:
    with store.read() as conn:
        return [(r.job, r.orchestrator, r.status, r.error)
                for r in conn.execute(select(runs).order_by(runs.c.id))]


def _records(store: Store) -> list[chain.Entry]:
    with store.read() as conn:
        entries = list(chain.entries(conn))
    assert chain.check(entries).ok
    return entries


def test_global_scope_takes_over_every_orchestrators_rows_of_the_job(url: str) -> None:
    dead = Store(url, orchestrator="backup01")
    me = Store(url, orchestrator="backup02")
    dead.start_run(job="emr-db", kind="backup")
    me.start_run(job="emr-db", kind="verify")  # this orchestrator's own killed run
    dead.start_run(job="pacs", kind="backup")  # another job: its own lease, not ours

    found = take_over(me, "emr-db", any_orchestrator=True)

    assert [(r.run_id, r.orchestrator, r.kind) for r in found] == [
        (1, "backup01", "backup"), (2, "backup02", "verify")]
    assert _runs(me) == [
        ("emr-db", "backup01", "interrupted", "interrupted: orchestrator backup01 stopped "
         "(lease lost) before the run finished; recorded by backup02"),
        ("emr-db", "backup02", "interrupted", OWN_ERROR),
        ("pacs", "backup01", "running", None)]
    records = _records(me)
    assert [(e.record["kind"], e.record["result"]) for e in records] == [
        ("backup", "fail"), ("verify", "fail")]
    assert "backup01 stopped" in records[0].record["details"]["error"]


def test_flock_scope_takes_over_only_this_orchestrators_rows(url: str) -> None:
    other = Store(url, orchestrator="backup01")
    me = Store(url, orchestrator="backup02")
    other.start_run(job="emr-db", kind="backup")
    me.start_run(job="emr-db", kind="backup")

    [found] = take_over(me, "emr-db", any_orchestrator=False)

    assert found.run_id == 2 and found.error == OWN_ERROR
    assert [r[2] for r in _runs(me)] == ["running", "interrupted"]


def test_a_late_finish_of_a_taken_over_run_is_refused_and_records_nothing(url: str) -> None:
    cut_off = Store(url, orchestrator="backup01")
    run_id = cut_off.start_run(job="emr-db", kind="backup")
    take_over(Store(url, orchestrator="backup02"), "emr-db", any_orchestrator=True)

    with pytest.raises(RunTakenOver, match=r"emr-db: run 1 was already recorded interrupted "
                       r"\(interrupted: orchestrator backup01 stopped"), \
            cut_off.transaction() as conn:
        guarded_finish(conn, run_id, {"status": "success", "exit_code": 0})
        chain.append(conn, {"kind": "backup"}, run_id=run_id)  # never reached

    assert [r[2] for r in _runs(cut_off)] == ["interrupted"]
    assert len(_records(cut_off)) == 1  # the takeover's record only


def test_of_two_closes_exactly_one_wins(url: str) -> None:
    store = Store(url)
    run_id = store.start_run(job="emr-db", kind="backup")
    with store.transaction() as conn:
        assert finish_if_running(conn, run_id, {"status": "success", "exit_code": 0})
    with store.transaction() as conn:
        assert not finish_if_running(conn, run_id, {"status": "interrupted", "exit_code": 1})
    assert [r[2] for r in _runs(store)] == ["success"]


def test_runs_record_the_configured_orchestrator_and_the_job_file_hash(url: str) -> None:
    store = Store(url, orchestrator="backup03")
    store.start_run(job="emr-db", kind="backup", job_file_sha256="ab" * 32)
    with store.read() as conn:
        row = conn.execute(select(runs)).one()
    assert (row.orchestrator, row.job_file_sha256) == ("backup03", "ab" * 32)
