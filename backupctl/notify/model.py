"""The values the notification engine passes around: a finished run, a message, an outcome.

All frozen: the engine is a pipeline of functions (run → event → message → deliveries →
records), and the CLI renders its results as text or JSON from the same objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

from backupctl.state.queries import RunRow

RunStatus = Literal["success", "failed", "bad_data", "interrupted"]
EventName = Literal["failure", "recovery", "suspicious", "stale", "probe"]
Level = Literal["alert", "ok", "info"]


@dataclass(frozen=True)
class FinishedRun:
    """A run as it ended: what the run flow hands to `after_run` (SPEC §8)."""

    job: str
    kind: str  # backup | copy | probe | verify | drill | recovery
    repository: str  # primary or a copy name
    status: RunStatus
    exit_code: int
    error: str | None  # may hold paths of the backed-up tree: never copied into a message
    started_at: str  # ISO 8601 (backupctl.clock.iso)
    finished_at: str
    orchestrator: str
    operator: str = "scheduler"
    run_id: int | None = None
    reason: str | None = None  # errors.Reason, decided where the run failed

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @classmethod
    def of(cls, row: RunRow, *, now: str | None = None) -> FinishedRun:
        """A recorded run; one still `running` (killed: found by the failure unit) as
        interrupted at `now`."""
        running = row.status == "running"
        return cls(job=row.job, kind=row.kind, repository=row.repository,
                   status="interrupted" if running else cast(RunStatus, row.status),
                   exit_code=1 if running or row.exit_code is None else row.exit_code,
                   error=row.error, started_at=row.started_at,
                   finished_at=(now or row.started_at) if running or row.finished_at is None
                   else row.finished_at,
                   orchestrator=row.orchestrator, operator=row.operator, run_id=row.id,
                   reason=row.reason)


@dataclass(frozen=True)
class Event:
    """One notification-worthy transition of a (job, kind, repository)."""

    name: EventName
    job: str
    kind: str
    repository: str
    reason: str  # one safe line: counts and configuration names only, never paths
    at: str  # ISO 8601
    orchestrator: str
    run_id: int | None = None
    reminder: bool = False  # the same problem again, after `repeat`


@dataclass(frozen=True)
class Message:
    """What a person reads: a subject line and a plain-text body (UTF-8)."""

    subject: str
    body: str
    level: Level = "alert"


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime: str = "application/pdf"


@dataclass(frozen=True)
class DeliveryResult:
    """One channel's outcome for one message. `error` is a masked one-liner, never the body."""

    channel: str
    event: str  # an EventName, or test | digest | unit-failed
    ok: bool
    error: str | None = None
    attempts: int = 1
    job: str | None = None
    kind: str | None = None
    repository: str | None = None
    run_id: int | None = None
    sent_at: str = ""

    @property
    def result(self) -> str:
        return "ok" if self.ok else "failed"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "result": self.result}


@dataclass(frozen=True)
class PingResult:
    """One dead-man's-switch ping (healthchecks.io-compatible)."""

    job: str
    kind: str
    signal: Literal["start", "success", "fail"]
    ok: bool
    error: str | None = None
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StaleJob:
    """A job whose newest success of `kind` is older than its schedule interval + grace."""

    job: str
    kind: str
    repository: str  # primary, or the copy's name
    last_success: str | None  # None: never succeeded
    interval_seconds: int
    grace_seconds: int
    overdue_seconds: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StaleCheck:
    stale: list[StaleJob] = field(default_factory=list)
    deliveries: list[DeliveryResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"stale": [s.to_dict() for s in self.stale],
                "deliveries": [d.to_dict() for d in self.deliveries]}
