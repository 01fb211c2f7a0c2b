"""Recording every delivery attempt: a `notices` row and an evidence record of kind `notice`.

Who was told, when, and whether it arrived is part of the incident contact record the
guideline asks for. The evidence record names the channel, the event and the result (and
the run it was about); never the message body.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from backupctl import __version__
from backupctl.errors import BackupctlError
from backupctl.evidence import chain
from backupctl.notify.model import DeliveryResult
from backupctl.state.db import Store
from backupctl.state.schema import notices

log = logging.getLogger(__name__)
NO_JOB = "-"  # the evidence `job` of notices about no single job (test, digest)


def _row(result: DeliveryResult, orchestrator: str) -> dict[str, Any]:
    return {"channel": result.channel, "job": result.job, "kind": result.kind,
            "repository": result.repository, "event": result.event, "result": result.result,
            "error": result.error, "attempts": result.attempts, "run_id": result.run_id,
            "orchestrator": orchestrator, "sent_at": result.sent_at}


def _evidence(result: DeliveryResult, orchestrator: str, started_at: str) -> dict[str, Any]:
    details: dict[str, Any] = {"channel": result.channel, "event": result.event,
                               "result": result.result, "attempts": result.attempts}
    if result.kind is not None:
        details["run_kind"] = result.kind
    if result.run_id is not None:
        details["run_id"] = result.run_id
    if result.error:
        details["error"] = result.error
    return {"kind": "notice", "job": result.job or NO_JOB, "host": orchestrator,
            "repository": result.repository or NO_JOB, "started_at": started_at,
            "finished_at": result.sent_at, "operator": "scheduler",
            "result": "pass" if result.ok else "fail", "details": details,
            "backupctl_version": __version__, "restic_version": "-"}


def record(store: Store, results: Sequence[DeliveryResult], *, started_at: str,
           orchestrator: str | None = None) -> bool:
    """Store the results and their evidence in one transaction; False (logged) on failure.

    Never raises: a state database that cannot be written must not turn a finished run
    into a failed one (the run itself was already recorded)."""
    if not results:
        return True
    host = orchestrator or socket.gethostname()
    try:
        with store.transaction() as conn:
            conn.execute(notices.insert(), [_row(r, host) for r in results])
            for result in results:
                chain.append(conn, _evidence(result, host, started_at))
    except BackupctlError as exc:
        log.warning("cannot record notification outcomes: %s", exc)
        return False
    return True


def notified_run(store: Store, run_id: int) -> bool:
    """True when some notice about this run was already attempted."""
    with store.read() as conn:
        return conn.execute(select(notices.c.id).where(notices.c.run_id == run_id)
                            .limit(1)).first() is not None


def last_delivered(store: Store, *, job: str, kind: str, repository: str,
                   event: str) -> str | None:
    """When a notice of `event` about (job, kind, repository) last reached some channel."""
    with store.read() as conn:
        row = conn.execute(
            select(notices.c.sent_at).where(
                notices.c.job == job, notices.c.kind == kind,
                notices.c.repository == repository, notices.c.event == event,
                notices.c.result == "ok").order_by(notices.c.id.desc()).limit(1)).first()
    return str(row[0]) if row else None


def last_by_channel(store: Store) -> dict[str, dict[str, Any]]:
    """channel → {'ok': newest result was ok, 'last_success': time or None} (metrics)."""
    out: dict[str, dict[str, Any]] = {}
    with store.read() as conn:
        for row in conn.execute(select(notices.c.channel, notices.c.result, notices.c.sent_at)
                                .order_by(notices.c.id)):
            entry = out.setdefault(row.channel, {"ok": False, "last_success": None})
            entry["ok"] = row.result == "ok"
            if row.result == "ok":
                entry["last_success"] = row.sent_at
    return out
