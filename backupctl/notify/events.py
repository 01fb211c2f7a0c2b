"""Which finished run is worth telling someone about: transitions, and bounded reminders.

The state of a (job, kind, repository) after a run is one of ok, failure, suspicious
(tripwire raised) or probe (an immutable copy accepted a delete). A change of state is one
message; the same bad state again is a reminder, sent only when no message about it reached
anyone within `notify.repeat`. Everything is read from the state database (`runs`,
`notices`), so the decision is the same whoever asks — the run itself at its end, or the
systemd failure unit afterwards — and asking twice never sends twice.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from backupctl.config.validate import Config
from backupctl.notify import record
from backupctl.notify.model import Event, EventName, FinishedRun
from backupctl.notify.reason import reason, suspicious_counts
from backupctl.state import queries
from backupctl.state.db import Store

NOTIFIED_KINDS = ("backup", "copy", "probe", "verify", "drill", "recovery")
# Timers fire with up to 10 min random delay: a reminder due "every 24h" must not slip a day.
SLACK = timedelta(minutes=15)


def parse_details(text: str | None) -> dict[str, Any]:
    """A run's details JSON as a dict ({} when unreadable)."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def details_of(store: Store, run_id: int | None) -> dict[str, Any]:
    if run_id is None:
        return {}
    return parse_details(store.query(queries.run, run_id).details)


def state_of(kind: str, status: str, details: dict[str, Any]) -> str:
    """ok | failure | suspicious | probe."""
    if status == "success":
        return "ok"
    if kind == "backup" and suspicious_counts(details) is not None:
        return "suspicious"
    if kind == "probe" and status == "bad_data":
        return "probe"
    return "failure"


def previous(store: Store, run: FinishedRun) -> queries.RunRow | None:
    """The newest finished run of the same job, kind and repository before `run`."""
    if run.run_id is None:
        return None
    return store.query(queries.finished_before, run.job, run.kind, run.repository,
                       before=run.run_id)


def due(last: str | None, *, now: datetime, repeat: int) -> bool:
    """A reminder is due: nothing reached anyone yet, or `repeat` seconds have passed."""
    return last is None or now - datetime.fromisoformat(last) + SLACK >= timedelta(
        seconds=repeat)


def decide(config: Config, store: Store, run: FinishedRun, *, now: datetime,
           lang: str | None = None) -> Event | None:
    """The event `run` causes, or None (nothing changed, reminded recently, or not wanted)."""
    settings = config.settings.notify
    lang = lang or settings.language
    if run.kind not in NOTIFIED_KINDS:
        return None
    if run.run_id is not None and record.notified_run(store, run.run_id):
        return None  # asked before (the run, then the failure unit): never twice
    details = details_of(store, run.run_id)
    state = state_of(run.kind, run.status, details)
    before = previous(store, run)
    before_state = None if before is None else state_of(
        before.kind, before.status, parse_details(before.details))
    name: EventName
    reminder = False
    if state == "ok":
        if before_state in (None, "ok") and not _told_stale(store, run, before):
            return None
        name = "recovery"
    else:
        name = "failure" if state == "failure" else state  # type: ignore[assignment]
        if before_state == state:
            last = record.last_delivered(store, job=run.job, kind=run.kind,
                                         repository=run.repository, event=name)
            if not due(last, now=now, repeat=settings.repeat):
                return None
            reminder = last is not None
    if name not in settings.events:
        return None
    return Event(name=name, job=run.job, kind=run.kind, repository=run.repository,
                 reason=reason(run, details, lang), at=run.finished_at,
                 orchestrator=run.orchestrator, run_id=run.run_id, reminder=reminder)


def _told_stale(store: Store, run: FinishedRun, before: queries.RunRow | None) -> bool:
    """A stale alert went out since the previous success: this success is a recovery."""
    last = record.last_delivered(store, job=run.job, kind=run.kind,
                                 repository=run.repository, event="stale")
    return last is not None and (before is None or last > str(before.finished_at))
