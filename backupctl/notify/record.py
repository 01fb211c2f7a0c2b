"""Recording every delivery attempt: a `notices` row and an evidence record of kind `notice`.

Who was told, when, and whether it arrived is part of the incident contact record the
guideline asks for. The evidence record names the channel, the event and the result (and
the run it was about); never the message body.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from backupctl import __version__
from backupctl.config.validate import Config
from backupctl.errors import BackupctlError
from backupctl.evidence import chain, pin
from backupctl.notify.model import DeliveryResult
from backupctl.signing import Signer, load_signer
from backupctl.state import notices
from backupctl.state.db import Store

log = logging.getLogger(__name__)
NO_JOB = "-"  # the evidence `job` of notices about no single job (test, digest)


def _row(result: DeliveryResult, orchestrator: str) -> dict[str, Any]:
    return {"channel": result.channel, "job": result.job, "kind": result.kind,
            "repository": result.repository, "event": result.event, "result": result.result,
            "error": result.error, "attempts": result.attempts, "run_id": result.run_id,
            "orchestrator": orchestrator, "sent_at": result.sent_at}


def _evidence(result: DeliveryResult, orchestrator: str, started_at: str) -> dict[str, Any]:
    """The same fields as a run's record (actions/jobrun.py); `details` never holds the
    message, only who was told of what and whether it arrived."""
    details: dict[str, Any] = {"channel": result.channel, "event": result.event,
                               "result": result.result, "attempts": result.attempts}
    if result.kind is not None:
        details["run_kind"] = result.kind
    if result.run_id is not None:
        details["run_id"] = result.run_id
    if result.error:
        details["error"] = result.error
    return {"kind": "notice", "job": result.job or NO_JOB, "host": orchestrator,
            "repository": result.repository or NO_JOB, "snapshot_id": None,
            "snapshot_time": None, "started_at": started_at, "finished_at": result.sent_at,
            "operator": "scheduler", "orchestrator": orchestrator,
            "result": "pass" if result.ok else "fail",
            "details": details, "backupctl_version": __version__, "restic_version": "-"}


def signer_of(config: Config) -> Signer | None:
    """The evidence key, or None (logged) when it cannot be used: a notice is never lost
    over it (validate refuses an unusable key before any run)."""
    try:
        return load_signer(config.settings.evidence_key)
    except BackupctlError as exc:
        log.warning("notices are recorded unsigned: %s", exc)
        return None


def record(store: Store, results: Sequence[DeliveryResult], *, started_at: str,
           signer: Signer | None = None) -> bool:
    """Store the results and their evidence in one transaction; False (logged) on failure.

    Never raises: a state database that cannot be written must not turn a finished run
    into a failed one (the run itself was already recorded)."""
    if not results:
        return True
    host = store.orchestrator
    try:
        with store.transaction() as conn:
            notices.insert_notices(conn, [_row(r, host) for r in results])
            entries = [chain.append(conn, _evidence(result, host, started_at), signer=signer)
                       for result in results]
    except BackupctlError as exc:
        log.warning("cannot record notification outcomes: %s", exc)
        return False
    pin.advance(store, signer, entries[-1])  # the head pin beside the key (never raises)
    return True


def record_ping(store: Store, *, job: str, kind: str, signal: str, ok: bool,
                error: str | None, attempts: int, run_id: int | None, sent_at: str) -> None:
    """A ping in `notices` (metrics: channel `ping`) but not in evidence: a heartbeat to a
    machine is not a contact with a person. Never raises."""
    row = {"channel": notices.PING_CHANNEL, "job": job, "kind": kind, "repository": "primary",
           "event": f"ping-{signal}"[:16], "result": "ok" if ok else "failed", "error": error,
           "attempts": attempts, "run_id": run_id, "orchestrator": store.orchestrator,
           "sent_at": sent_at}
    try:
        with store.transaction() as conn:
            notices.insert_notices(conn, [row])
    except BackupctlError as exc:
        log.warning("cannot record the ping: %s", exc)


def notified_run(store: Store, run_id: int) -> bool:
    """True when some notice about this run was already attempted."""
    return store.query(notices.run_notified, run_id)


def last_delivered(store: Store, *, job: str, kind: str, repository: str,
                   event: str) -> str | None:
    """When a notice of `event` about (job, kind, repository) last reached some channel."""
    return store.query(notices.last_notice, job=job, kind=kind, repository=repository,
                       event=event)
