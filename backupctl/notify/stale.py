"""`backupctl notify check`: jobs whose backups, copies or restore tests stopped succeeding.

A (job, kind) is stale when its newest success is older than the longest gap of its
OnCalendar schedule (`systemd-analyze calendar --iterations=10`) plus `notify.stale_grace`.
A job that never succeeded counts from its job file's modification time (so a job added
today is not stale before its first scheduled run). This catches what no run can report:
a timer that was disabled, an orchestrator that was off, runs that hang.

One alert per stale spell; reminders at most every `notify.repeat`; the next success after
an alert is a recovery (events.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from backupctl.clock import iso, system_clock
from backupctl.config import calendar
from backupctl.config.schema import Job
from backupctl.config.validate import Config
from backupctl.fmt import duration, local_ago
from backupctl.notify import channels as delivery
from backupctl.notify import events, record
from backupctl.notify.api import send_event
from backupctl.notify.model import DeliveryResult, Event, StaleCheck, StaleJob
from backupctl.notify.texts import t
from backupctl.state import queries
from backupctl.state.db import Store

_interval = functools.cache(calendar.interval)


def _targets(job: Job) -> list[tuple[str, str, str]]:
    """(kind, repository, OnCalendar) that should succeed regularly."""
    out = [("backup", "primary", job.schedule.backup), ("verify", "primary", job.schedule.verify)]
    if job.schedule.copy_ is not None:
        out += [("copy", copy.name, job.schedule.copy_) for copy in job.copies]
    return out


def _last_success(store: Store, job: str, kind: str, repository: str) -> str | None:
    # A restore test from any repository proves the job restorable.
    row = store.query(queries.last_run, job, kind, status="success",
                      repository=None if kind == "verify" else repository)
    return row.finished_at if row is not None else None


def find_stale(config: Config, store: Store, now: datetime) -> list[StaleJob]:
    grace = config.settings.notify.stale_grace
    found: list[StaleJob] = []
    for name in sorted(config.jobs):
        job_file = config.jobs[name]
        for kind, repository, expr in _targets(job_file.job):
            interval = _interval(expr)
            if interval is None:
                continue
            last = _last_success(store, name, kind, repository)
            since = datetime.fromisoformat(last) if last else datetime.fromtimestamp(
                job_file.path.stat().st_mtime, UTC)
            overdue = overdue_seconds(since, interval=interval, grace=grace, now=now)
            if overdue > 0:
                found.append(StaleJob(job=name, kind=kind, repository=repository,
                                      last_success=last, interval_seconds=interval,
                                      grace_seconds=grace, overdue_seconds=overdue))
    return found


def overdue_seconds(since: datetime, *, interval: int, grace: int, now: datetime) -> int:
    """How far past due a (job, kind) whose newest success was at `since` is (> 0: stale):
    the one rule of `notify check` and the status page."""
    return int((now - since - timedelta(seconds=interval + grace)).total_seconds())


def check_stale(config: Config, store: Store, now: datetime | None = None, *,
                budget: delivery.Budget = delivery.DEFAULT_BUDGET,
                clock: Callable[[], datetime] = system_clock) -> StaleCheck:
    """Find stale jobs and alert (once per stale spell, reminders every `repeat`)."""
    moment = now or clock()
    settings = config.settings.notify
    lang = settings.language
    stale = find_stale(config, store, moment)
    deliveries: list[DeliveryResult] = []
    if "stale" not in settings.events:
        return StaleCheck(stale=stale)
    for item in stale:
        repository = item.repository
        last = record.last_delivered(store, job=item.job, kind=item.kind,
                                     repository=repository, event="stale")
        told_this_spell = last is not None and (item.last_success is None
                                                or last > item.last_success)
        if told_this_spell and not events.due(last, now=moment, repeat=settings.repeat):
            continue
        params = {"interval": duration(item.interval_seconds, lang),
                  "grace": duration(item.grace_seconds, lang)}
        last_success = local_ago(item.last_success, now=moment, tz=config.settings.tz,
                                 lang=lang)
        why = t(lang, "reason.stale", last=last_success, **params) \
            if item.last_success else t(lang, "reason.stale_never", **params)
        event = Event(name="stale", job=item.job, kind=item.kind, repository=repository,
                      reason=why, at=iso(moment), orchestrator=store.orchestrator,
                      reminder=told_this_spell)
        deliveries += send_event(config, store, event, budget=budget, now=lambda: moment)
    return StaleCheck(stale=stale, deliveries=deliveries)
