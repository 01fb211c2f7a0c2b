"""S3 Object Lock copies (SPEC §14): lock extension and probe after every copy, the bucket
check before `init --copies`. boto3 is imported only when one of these runs (client.py).
"""

from __future__ import annotations

from datetime import datetime

from backupctl.actions.context import Context
from backupctl.actions.objectlock import checks, client
from backupctl.actions.objectlock.extend import Extended, Known, extend
from backupctl.actions.probe import PROBE_DIR, ProbeResult
from backupctl.clock import parse_iso
from backupctl.config.schema import Copy
from backupctl.errors import BackupctlError, UsageError
from backupctl.restic import s3
from backupctl.state import queries
from backupctl.state.records import CopyDetails, ProbeCheck, read

__all__ = ["Extended", "Known", "extend_locks", "known", "probe", "require_lock", "uses_lock"]


def uses_lock(copy: Copy) -> bool:
    return copy.is_s3 and copy.object_lock is not None


def extend_locks(copy: Copy, *, started: datetime, now: datetime,
                 since: Known | None = None) -> Extended:
    """Extend the locks of every object the copy needs (see extend.py)."""
    assert copy.object_lock is not None
    return extend(client.connect(copy), copy.object_lock, started=started, now=now,
                  probe_prefix=PROBE_DIR + "/", known=since)


def known(ctx: Context, job: str, copy: Copy) -> Known | None:
    """What the previous successful copy proved about the locks, if it proved all of them."""
    row = ctx.store.query(queries.last_run, job, "copy", repository=copy.name,
                          status="success")
    locks = read(CopyDetails, row.details).locks if row is not None else None
    if row is None or locks is None or locks.short or not locks.earliest:
        return None
    return Known(at=parse_iso(row.started_at), until=parse_iso(locks.earliest))


def probe(copy: Copy, extended: Extended | None) -> tuple[ProbeResult, list[ProbeCheck]]:
    """Every named check of the copy's bucket (see checks.py)."""
    assert copy.object_lock is not None
    return checks.probe(copy.name, client.connect(copy), copy.object_lock, extended)


def require_lock(copy: Copy) -> str:
    """Before `init --copies` writes to the bucket: Object Lock must be on (exit 2)."""
    bucket = client.connect(copy)
    try:
        config = bucket.call("get_object_lock_configuration")
    except Exception as exc:
        code = client.error_code(exc)
        if code in checks.NOT_CONFIGURED:
            raise UsageError(_refusal(copy, "has no Object Lock configuration")) from None
        raise BackupctlError(f"copy {copy.name}: cannot read the Object Lock configuration "
                             f"of {bucket.where.shown()}: {code or exc}") from None
    lock = dict(config.get("ObjectLockConfiguration") or {})
    if lock.get("ObjectLockEnabled") != "Enabled":
        raise UsageError(_refusal(copy, "does not have Object Lock enabled"))
    default = (lock.get("Rule") or {}).get("DefaultRetention") or {}
    return (f"{copy.name}: bucket {bucket.where.bucket} has Object Lock "
            f"({default.get('Mode', 'no default retention')}"
            f"{', ' + str(default['Days']) + ' day(s)' if default.get('Days') else ''})")


def _refusal(copy: Copy, what: str) -> str:
    where = s3.location(copy.url)
    return (f"copy {copy.name}: bucket {where.bucket} {what}; object_lock is set, so no "
            "repository is created in it. Create the bucket with Object Lock enabled and a "
            "default retention (docs/copies.md, S3 Object Lock copies)")
