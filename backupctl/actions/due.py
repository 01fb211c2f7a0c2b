"""`--due`: is a job's scheduled backup, copy or verify still to be done?

Every orchestrator runs the same timers with `--due`. A job is due for a kind when the latest
time its `schedule` (an OnCalendar expression) fired, at or before now, is after the start of
the job's newest run of that kind on any orchestrator (running or finished; an interrupted
run does not count). So each scheduled run happens once, whoever's timer comes first, and an
orchestrator that is down leaves its work to the next timer of another.

Check twice: before taking the job's lease (cheap, skips most jobs; finished runs only) and
again once the lease is held, since another orchestrator may have finished the job in between
or died running it (then its run is recorded interrupted first); only the second
answer decides (`require`, called by `jobrun.job_session` when `Context.due` is set). `decide`
is the pure rule; `latest_elapse` asks systemd-analyze (the timers' own calendar code,
`config.calendar.elapses`) when the schedule last fired.

Restore tests have two schedules (`verify` quick, `verify_full` full; both record runs of
kind `verify`). `verify --mode full --due` is the due kind `verify-full`: due by
`schedule.verify_full` alone, against the newest *full* restore test (a quick one restores
a sample only and never stands in for it); a job without `verify_full` keeps the rule of
`verify --due` (a timer of one's own running full tests on the verify schedule). `verify
--due` (quick) counts the newest restore test of either mode: a full test restores and
hashes every file and runs `restic check` too, so one that started after the quick
schedule fired has done the quick test's work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from backupctl.clock import iso, parse_iso
from backupctl.config import calendar
from backupctl.config.schema import Job
from backupctl.errors import BackupctlError
from backupctl.execute import Runner
from backupctl.state import queries
from backupctl.state.db import Store
from backupctl.status import ExitStatus

KINDS = ("backup", "copy", "verify", "verify-full")
FULL_VERIFY = "verify-full"  # the due kind of `verify --mode full`

# Look back this far, widening until the schedule has fired in the window at least once.
WINDOWS = (timedelta(hours=1), timedelta(days=1, hours=1), timedelta(days=8),
           timedelta(days=32), timedelta(days=367), timedelta(days=3700))
ITERATIONS = 100  # elapses asked of systemd-analyze per call
MAX_CALLS = 64  # a schedule firing more than every ~30 s is not a backup schedule


# The schedule cannot be read, so whether a job is due is unknown (exit 1).
DueError = calendar.CalendarError


class NotDue(BackupctlError):
    """Raised under the job's lease when the job is no longer due (another orchestrator
    ran it meanwhile): the command lists the job as not due; it is not an error."""

    status = ExitStatus.OK


@dataclass(frozen=True)
class Due:
    job: str
    kind: str
    due: bool
    scheduled: datetime | None  # the schedule's latest elapse at or before now
    last_started: datetime | None  # newest running or finished run of the kind, anywhere
    reason: str


def decide(*, job: str, kind: str, scheduled: datetime | None,
           last_started: datetime | None) -> Due:
    """The rule: due when the schedule last fired after the newest run started."""
    if scheduled is None:
        return Due(job, kind, False, None, last_started,
                   f"{job}: {kind} not due: its schedule has not fired yet")
    if last_started is None:
        return Due(job, kind, True, scheduled, None,
                   f"{job}: {kind} due: scheduled {iso(scheduled)}, never run")
    if scheduled > last_started:
        return Due(job, kind, True, scheduled, last_started,
                   f"{job}: {kind} due: scheduled {iso(scheduled)}, last started "
                   f"{iso(last_started)}")
    return Due(job, kind, False, scheduled, last_started,
               f"{job}: {kind} not due: last started {iso(last_started)}, at or after the "
               f"schedule's {iso(scheduled)}")


def latest_elapse(expr: str, *, now: datetime, runner: Runner,
                  tz: str | None = None) -> datetime | None:
    """The latest time at or before `now` (aware) at which OnCalendar `expr` fired; None
    when it has not fired in the last ten years.

    `tz`: the time zone the timers run in (default: this machine's, as systemd's).
    """
    for window in WINDOWS:
        base = now - window
        for _ in range(MAX_CALLS):
            elapses = calendar.elapses(expr, base=base, iterations=ITERATIONS, runner=runner,
                                       tz=tz)
            past = [e for e in elapses if e <= now]
            if len(past) < len(elapses) or len(elapses) < ITERATIONS:
                if past:
                    return past[-1]
                break  # the first elapse in the window is after now: look further back
            base = past[-1]  # all in the past: go on from the last one
        else:
            return past[-1]
    return None


def schedule_of(job: Job, kind: str) -> str | None:
    """The job's OnCalendar expression for `kind` (copy: None without copies)."""
    if kind == "backup":
        return job.schedule.backup
    if kind == "copy":
        return job.schedule.copy_ if job.copies else None
    if kind == "verify":
        return job.schedule.verify
    if kind == FULL_VERIFY:
        return job.schedule.verify_full
    raise ValueError(f"--due is for {', '.join(KINDS)}, not {kind}")


def check(store: Store, job: Job, kind: str, *, now: datetime, runner: Runner,
          tz: str | None = None, under_lease: bool = True) -> Due:
    """Whether `job` is due for `kind` now, from its schedule and the shared runs.

    Under the job's lease (after `jobrun.recover`) every run that was not interrupted counts.
    Before it (`under_lease=False`) only finished runs do: a `running` row may be what a dead
    orchestrator left, and only taking the lease tells (held: it is alive; free: the row is
    recorded interrupted and the job is due again)."""
    if kind == FULL_VERIFY and job.schedule.verify_full is None:
        kind = "verify"  # no calendar of its own: full tests run on the verify schedule
    expr = schedule_of(job, kind)
    if expr is None:
        why = "no copies" if kind == "copy" and not job.copies else f"no {kind} schedule"
        return Due(job.name, kind, False, None, None, f"{job.name}: {kind} not due: {why}")
    scheduled = latest_elapse(expr, now=now, runner=runner, tz=tz)
    run_kind, mode = ("verify", "full") if kind == FULL_VERIFY else (kind, None)
    started = store.query(queries.last_started, job.name, run_kind, finished=not under_lease,
                          mode=mode)
    return decide(job=job.name, kind=kind, scheduled=scheduled,
                  last_started=parse_iso(started) if started else None)


def require(store: Store, job: Job, kind: str, *, now: datetime, runner: Runner) -> None:
    """Under the job's lease: raise NotDue unless the job is (still) due for `kind`."""
    decision = check(store, job, kind, now=now, runner=runner)
    if not decision.due:
        raise NotDue(decision.reason)
