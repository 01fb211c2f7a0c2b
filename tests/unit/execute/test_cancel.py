"""Stopping commands: a signal stops the whole process, a lost lease only its job's scope."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from backupctl import execute
from backupctl.execute import Cancelled, Scope, adopt, current, job_scope, raise_if_cancelled


@pytest.fixture(autouse=True)
def _own_process_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(execute, "_PROCESS", Scope())  # this test's stops only


def test_cancelling_one_jobs_scope_stops_its_commands_and_no_other_jobs() -> None:
    stopped: list[str] = []
    with job_scope() as first:
        first_cmd = execute.running(lambda: stopped.append("first"))
        first_cmd.__enter__()
    with job_scope():
        second_cmd = execute.running(lambda: stopped.append("second"))
        second_cmd.__enter__()
    first.cancel("emr-db: lease lost")
    assert stopped == ["first"]
    with job_scope():  # a new job is not stopped by another's loss
        raise_if_cancelled()
    assert not execute.cancelled()
    first_cmd.__exit__(None, None, None)
    second_cmd.__exit__(None, None, None)


def test_a_cancelled_jobs_scope_refuses_new_commands_with_its_reason() -> None:
    with job_scope() as scope:
        scope.cancel("emr-db: lease lost: the connection was lost")
        with pytest.raises(Cancelled, match=r"^emr-db: lease lost: the connection was lost$"):
            execute.running(lambda: None).__enter__()


def test_a_signal_stops_the_commands_of_every_job() -> None:
    stopped: list[str] = []
    entered = []
    for name in ("a", "b"):
        with job_scope():
            cmd = execute.running(lambda name=name: stopped.append(name))  # type: ignore[misc]
            cmd.__enter__()
            entered.append(cmd)
    execute.cancel()
    assert sorted(stopped) == ["a", "b"] and execute.cancelled()
    with job_scope(), pytest.raises(Cancelled, match="stopped by a signal"):
        raise_if_cancelled()
    for cmd in entered:
        cmd.__exit__(None, None, None)


def test_a_jobs_worker_threads_run_in_the_jobs_scope() -> None:
    """What runs beside a restore (restic check in a pool) stops with the job."""
    with job_scope() as scope:
        with ThreadPoolExecutor(max_workers=1, initializer=adopt,
                                initargs=(current(),)) as pool:
            assert pool.submit(current).result() is scope
        scope.cancel("lost")
        with ThreadPoolExecutor(max_workers=1, initializer=adopt,
                                initargs=(current(),)) as pool, pytest.raises(Cancelled):
            pool.submit(raise_if_cancelled).result()
    assert current() is not scope  # left the job: the process scope again


def test_cleanup_commands_still_run_after_a_stop() -> None:
    with job_scope() as scope:
        scope.cancel("lost")
        with execute.cleaning_up():
            raise_if_cancelled()
        with pytest.raises(Cancelled):
            raise_if_cancelled()
