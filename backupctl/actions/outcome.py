"""The common shape of a per-job result, and running many jobs with bounded concurrency."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, TypeVar, cast

from backupctl.config.schema import Job
from backupctl.errors import BackupctlError
from backupctl.status import ExitStatus

log = logging.getLogger(__name__)


class JobResult(Protocol):
    @property
    def job(self) -> str: ...

    @property
    def status(self) -> ExitStatus: ...

    @property
    def error(self) -> str | None: ...

    def to_dict(self) -> dict[str, Any]: ...


class ResultDict:
    """`to_dict()` for frozen result dataclasses: every field, `status` as a word, and the
    `exit_code` — the one shape of per-job results in `--json`, run details and evidence."""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(cast(Any, self))
        status = ExitStatus(out["status"])
        out["status"] = status.name.lower()
        out["exit_code"] = int(status)
        return out


@dataclass(frozen=True)
class Refused(ResultDict):
    """A job that did not run at all (lock held, unexpected error before starting)."""

    job: str
    status: ExitStatus
    error: str | None
    kind: str = "refused"
    details: dict[str, Any] = field(default_factory=dict)


R = TypeVar("R", bound=JobResult)


def run_jobs(jobs: Sequence[Job], action: Callable[[Job], R], *,
             concurrency: int) -> list[R | Refused]:
    """Run `action` for every job, up to `concurrency` at once; one failure stops nothing."""

    def guarded(job: Job) -> R | Refused:
        try:
            return action(job)
        except BackupctlError as exc:
            return Refused(job.name, exc.status, str(exc))
        except Exception as exc:
            log.exception("%s: unexpected error", job.name)
            return Refused(job.name, ExitStatus.FAILED,
                           f"unexpected error: {exc.__class__.__name__}: {exc}")

    if concurrency <= 1 or len(jobs) <= 1:
        return [guarded(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="job") as pool:
        return list(pool.map(guarded, jobs))


def overall(outcomes: Sequence[JobResult]) -> ExitStatus:
    return ExitStatus.worst([o.status for o in outcomes])
