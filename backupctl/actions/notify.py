"""Notifications and dead-man's-switch pings as a run observer (SPEC §8).

`cli.common.context` registers a `Notifier` when the configuration has notify channels or
a job has pings (otherwise backupctl.notify is never imported). jobrun tells it of every
run start (backup, copy and verify send `URL/start`) and of every recorded end, including
runs found interrupted and probes and drills (end ping, then any message the transition
causes). It runs after the run's row and evidence are committed, never raises (jobrun also
logs and ignores an observer's exception) and is bounded in time by the channels' and
pings' budgets, so a mail server that is down changes neither the run nor its exit code.
"""

from __future__ import annotations

from backupctl import notify
from backupctl.actions.context import Context
from backupctl.config.schema import Job
from backupctl.notify.channels import DEFAULT_BUDGET, Budget
from backupctl.state.queries import RunRow


class Notifier:
    """The RunObserver of notifications and pings."""

    def __init__(self, *, budget: Budget = DEFAULT_BUDGET) -> None:
        self.budget = budget

    def started(self, ctx: Context, job: Job, row: RunRow) -> None:
        notify.ping_start(ctx.config, ctx.store, job=job.name, kind=row.kind, run_id=row.id)

    def finished(self, ctx: Context, job: Job, row: RunRow) -> None:
        notify.after_run(ctx.config, ctx.store, notify.FinishedRun.of(row),
                         budget=self.budget, now=ctx.clock)
