"""run_jobs: bounded concurrency, and one failing job stops none of the others."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

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
