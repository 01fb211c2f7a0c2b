"""Taking a job over from a dead run, and the guard that keeps the dead run from writing back.

Under the job's lease, a `running` row of that job is a run that is no longer alive: with
PostgreSQL leases (global scope) a row of any orchestrator, with flock only one of this
orchestrator. `take_over` closes such rows as `interrupted`, naming the orchestrator that
stopped, and appends the evidence record every finished run has. The job is then due again.

The other direction: an orchestrator cut off from the database keeps running until its
watchdog stops it, and when the network comes back it may try to record the run's result
over a row another orchestrator already closed. `finish_if_running` / `guarded_finish` only
close a row that is still `running`, so the first close wins and nothing is recorded twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from backupctl.errors import BackupctlError
from backupctl.evidence import chain
from backupctl.state.db import Store, _bare_evidence
from backupctl.state.schema import runs

log = logging.getLogger(__name__)

# This orchestrator's own killed runs keep the wording of Store.recover_interrupted.
OWN_ERROR = ("interrupted: the process was killed or the machine stopped before the run "
             "finished")


def interrupted_error(dead: str, *, by: str) -> str:
    """The `runs.error` of a run whose orchestrator stopped; `by` is who found it."""
    if dead == by:
        return OWN_ERROR
    return (f"interrupted: orchestrator {dead} stopped (lease lost) before the run finished; "
            f"recorded by {by}")


@dataclass(frozen=True)
class Interrupted:
    """A run closed by `take_over`."""

    run_id: int
    job: str
    kind: str
    orchestrator: str  # the orchestrator that stopped
    started_at: str
    error: str


def take_over(store: Store, job: str, *, any_orchestrator: bool) -> list[Interrupted]:
    """Close `job`'s `running` rows as interrupted, with their evidence records.

    Call only while holding the job's lease. `any_orchestrator` is the lock's `global_scope`:
    True (PostgreSQL leases) closes the rows of every orchestrator, False (flock) only
    `store.orchestrator`'s, since another machine's run cannot be seen through a flock.
    """
    found: list[Interrupted] = []
    with store.transaction() as conn:
        query = select(runs).where(runs.c.job == job, runs.c.status == "running")
        if not any_orchestrator:
            query = query.where(runs.c.orchestrator == store.orchestrator)
        stale = list(conn.execute(query.order_by(runs.c.id)))
        if not stale:
            return []
        finished = store.now()
        for row in stale:
            error = interrupted_error(row.orchestrator, by=store.orchestrator)
            if not finish_if_running(conn, row.id, {"status": "interrupted", "exit_code": 1,
                                                    "finished_at": finished, "error": error}):
                continue
            found.append(Interrupted(run_id=row.id, job=row.job, kind=row.kind,
                                     orchestrator=row.orchestrator,
                                     started_at=row.started_at, error=error))
            if row.kind in chain.KINDS:
                chain.append(conn, {
                    "kind": row.kind, "job": row.job, "repository": row.repository,
                    "started_at": row.started_at, "finished_at": finished,
                    "operator": row.operator, "result": "fail",
                    **_bare_evidence("interrupted", error)}, run_id=row.id)
    for run in found:
        log.warning("%s: run %d (%s on %s, started %s) was interrupted; recorded as failed",
                    run.job, run.run_id, run.kind, run.orchestrator, run.started_at)
    return found


def finish_if_running(conn: Connection, run_id: int, values: Mapping[str, Any]) -> bool:
    """UPDATE the run with `values` only if it is still `running`; True when it was.

    Runs inside the caller's serialized write transaction (Store.transaction), so of two
    orchestrators closing the same row exactly one sees True.
    """
    result = conn.execute(update(runs).where(runs.c.id == run_id, runs.c.status == "running")
                          .values(**values))
    return result.rowcount == 1


class RunTakenOver(BackupctlError):
    """The run was closed by another orchestrator meanwhile; its result is not recorded."""


def guarded_finish(conn: Connection, run_id: int, values: Mapping[str, Any]) -> None:
    """`finish_if_running`, raising RunTakenOver (exit 1) when the row was already closed.

    Raise before appending the run's evidence, inside the same transaction: the rollback
    then drops everything the late finish would have written.
    """
    if finish_if_running(conn, run_id, values):
        return
    row = conn.execute(select(runs.c.job, runs.c.status, runs.c.error)
                       .where(runs.c.id == run_id)).first()
    if row is None:
        raise RunTakenOver(f"run {run_id} is not in the state database; its result was not "
                           "recorded")
    raise RunTakenOver(f"{row.job}: run {run_id} was already recorded {row.status} "
                       f"({row.error or 'no reason given'}) while this orchestrator was cut "
                       "off; its result was not recorded, so nothing is recorded twice")
