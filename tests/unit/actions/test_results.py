"""run_jobs: bounded concurrency, one failing job stops none of the others, a stop waits for
the running jobs only."""

from __future__ import annotations

import _thread
import concurrent.futures
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest

from backupctl import execute
from backupctl.actions import results
from backupctl.actions.results import Refused, run_jobs
from backupctl.config.schema import Job
from backupctl.errors import LockHeld
from backupctl.status import ExitStatus


@dataclass(frozen=True)
class Done:
    job: str
    status: ExitStatus = ExitStatus.OK
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job}


def _job(name: str) -> Job:
    return Job.model_validate({
        "job": name, "host": {"address": "local"}, "source": {"paths": ["/x"]},
        "repository": {"url": "/r", "password_file": "/pw"}, "generations": {"last": 2},
        "schedule": {"backup": "daily", "verify": "weekly"}})


def test_at_most_concurrency_jobs_run_at_once() -> None:
    lock = threading.Lock()
    running, peak = 0, 0

    def action(job: Job) -> Done:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return Done(job.name)

    outcomes = run_jobs([_job(f"j{i}") for i in range(6)], action, concurrency=2)
    assert [o.job for o in outcomes] == [f"j{i}" for i in range(6)]  # input order kept
    assert peak == 2


def test_failures_are_outcomes_and_the_worst_wins() -> None:
    def action(job: Job) -> Done:
        if job.name == "locked":
            raise LockHeld("locked: already running")
        if job.name == "bug":
            raise ValueError("boom")
        return Done(job.name)

    outcomes = run_jobs([_job("a"), _job("locked"), _job("bug"), _job("b")], action,
                        concurrency=2)
    assert [o.status for o in outcomes] == [ExitStatus.OK, ExitStatus.LOCKED,
                                            ExitStatus.FAILED, ExitStatus.OK]
    assert isinstance(outcomes[2], Refused) and "ValueError: boom" in (outcomes[2].error or "")
    assert ExitStatus.worst([o.status for o in outcomes]) is ExitStatus.FAILED
    assert outcomes[1].to_dict()["exit_code"] == 75


def test_a_stop_waits_for_the_running_jobs_only_and_starts_no_other(
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """KeyboardInterrupt (the SIGINT/SIGTERM handler's exception) in the main thread while
    two of three jobs run: both finish their stop, the third never starts, and the wait is
    over as soon as the running ones are (a job never started must not hold it up)."""
    both_running = threading.Barrier(3)
    started: list[str] = []
    waited: list[bool] = []
    real_wait = concurrent.futures.wait

    waiting = threading.Event()

    def spy_wait(fs: Any, timeout: float | None = None, **kw: Any) -> Any:
        waiting.set()  # the main thread is in its waiting loop
        outcome = real_wait(fs, timeout=timeout, **kw)
        if timeout == results.STOP_GRACE_SECONDS:
            waited.append(not outcome.not_done)  # everything waited for is done
        return outcome

    def action(job: Job) -> Done:
        started.append(job.name)
        both_running.wait(timeout=60)  # generous: a loaded machine must not make c start
        deadline = time.monotonic() + 60
        while not execute.cancelled() and time.monotonic() < deadline:
            time.sleep(0.01)
        return Done(job.name, ExitStatus.FAILED, "interrupted")

    monkeypatch.setattr(results, "wait", spy_wait)
    monkeypatch.setattr(execute, "_PROCESS", execute.Scope())  # this test's stop only
    # interrupt_main() does nothing when SIGINT is ignored or default, and raises what the
    # handler raises: an earlier test in this worker may have left another one installed.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    def stop() -> None:
        both_running.wait(timeout=60)
        waiting.wait(timeout=60)
        _thread.interrupt_main()  # as the signal handler's exception arrives

    threading.Thread(target=stop).start()
    with pytest.raises(KeyboardInterrupt):
        run_jobs([_job("a"), _job("b"), _job("c")], action, concurrency=2)
    assert sorted(started) == ["a", "b"] and waited == [True]
