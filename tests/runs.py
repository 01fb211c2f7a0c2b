"""Seeding the state database with runs for tests (what `actions.jobrun` writes for real)."""

from __future__ import annotations

import os
from typing import Any

from backupctl.evidence import chain
from backupctl.state import queries
from backupctl.state.db import Store
from backupctl.state.records import Aborted, Record


def start(store: Store, *, job: str, kind: str, repository: str = "primary",
          operator: str = "scheduler") -> int:
    """A `running` run row (what a killed process leaves behind)."""
    with store.transaction() as conn:
        return queries.start_run(conn, job=job, kind=kind, repository=repository,
                                 operator=operator, orchestrator=store.orchestrator,
                                 pid=os.getpid(), started_at=store.now())


def finish(store: Store, run_id: int, *, status: str = "success",
           details: Record | None = None, error: str | None = None,
           snapshot_id: str | None = None, snapshot_time: str | None = None,
           restore_ms: int | None = None, evidence: bool = True,
           evidence_details: dict[str, Any] | None = None, host: str = "local") -> None:
    """Close a run as `jobrun` does: its row and (by default) its evidence record."""
    details = details if details is not None else Aborted(status=status)
    with store.transaction() as conn:
        row = queries.finish_run(conn, run_id, status=status,
                                 exit_code=0 if status == "success" else 1,
                                 finished_at=store.now(), details=details, error=error,
                                 snapshot_id=snapshot_id, snapshot_time=snapshot_time,
                                 restore_ms=restore_ms)
        assert row is not None
        if evidence:
            chain.append(conn, {
                "kind": row.kind, "job": row.job, "host": host, "repository": row.repository,
                "snapshot_id": snapshot_id, "snapshot_time": snapshot_time,
                "started_at": row.started_at, "finished_at": row.finished_at,
                "operator": row.operator, "result": "pass" if status == "success" else "fail",
                "details": evidence_details if evidence_details is not None
                else {**details.to_json(), "error": error},
                "backupctl_version": "test", "restic_version": "0.14.0"}, run_id=run_id)


def record(store: Store, *, job: str = "emr-db", kind: str = "backup",
           repository: str = "primary", operator: str = "scheduler", **finished: Any) -> int:
    """A finished run (see `finish` for the keywords)."""
    run_id = start(store, job=job, kind=kind, repository=repository, operator=operator)
    finish(store, run_id, **finished)
    return run_id
