"""The S3 Object Lock probe: named checks, each recorded in the probe's evidence (SPEC §14).

A bucket's Object Lock is checked, never trusted, with the copy's own credentials:

| check | passes when |
|---|---|
| `versioning` | GetBucketVersioning says Enabled |
| `object-lock` | GetObjectLockConfiguration says Enabled |
| `default-retention-mode` | the default retention's mode is the configured one |
| `default-retention-days` | the default retention is at least `min_days` |
| `newest-object-retention` | the newest object is locked min_days from its upload |
| `needed-objects-retention` | after the lock extension no needed object is locked for less |
| `version-delete` | deleting a probe object's version (DeleteObject with VersionId) is refused |
| `governance-bypass` | governance: the same with the bypass header is refused |

The deletes are tried on probe objects of 64 random bytes written beside the repository
(`PREFIX/backupctl-probe/`, locked by the bucket's default like restic's uploads), never on
the repository's own objects. A check that was accepted or found the bucket unlike its
configuration fails the probe (exit 3); a check that could not be asked (network, an
unexpected error) leaves immutability unproven (exit 1); neither is ever a pass.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from backupctl.actions.objectlock.client import Bucket, error_code
from backupctl.actions.objectlock.extend import Extended
from backupctl.actions.probe import PROBE_DIR, PROBE_SIZE, ProbeResult
from backupctl.clock import iso
from backupctl.config.schema import ObjectLock
from backupctl.state.records import Attempt, ProbeCheck
from backupctl.status import ExitStatus

_REFUSED = ("AccessDenied", "AccessDeniedException", "InvalidRequest")


@dataclass
class Probing:
    copy: str
    bucket: Bucket
    lock: ObjectLock
    random: Callable[[int], bytes] = os.urandom
    checks: list[ProbeCheck] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    unasked: list[str] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(ProbeCheck(name=name, ok=ok, detail=detail))
        return ok

    def ask(self, name: str, operation: str, **kwargs: object) -> dict[str, object] | None:
        """An S3 request; a failure to ask is recorded as unproven (None)."""
        try:
            return dict(self.bucket.call(operation, **kwargs))
        except Exception as exc:
            self.unasked.append(f"{name}: {operation} failed: {error_code(exc) or exc}")
            return None


UPLOAD_SLACK = timedelta(hours=1)
NOT_CONFIGURED = ("ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration")


def bucket_checks(p: Probing) -> None:
    """Versioning, Object Lock and the default retention as configured."""
    versioning = p.ask("versioning", "get_bucket_versioning")
    if versioning is not None:
        status = versioning.get("Status") or "never enabled"
        p.check("versioning", status == "Enabled", f"bucket versioning: {status}")
    try:
        config = p.bucket.call("get_object_lock_configuration")
    except Exception as exc:
        code = error_code(exc)
        if code in NOT_CONFIGURED:
            p.check("object-lock", False, "the bucket has no Object Lock configuration")
        else:
            p.unasked.append(f"object-lock: GetObjectLockConfiguration failed: {code or exc}")
        return
    lock = dict(config.get("ObjectLockConfiguration") or {})
    enabled = lock.get("ObjectLockEnabled") == "Enabled"
    if not p.check("object-lock", enabled, f"Object Lock: {lock.get('ObjectLockEnabled')}"):
        return
    default = dict((lock.get("Rule") or {}).get("DefaultRetention") or {})
    mode = str(default.get("Mode") or "none")
    p.check("default-retention-mode", mode == p.lock.mode.upper(),
            f"default retention mode {mode}, configured {p.lock.mode.upper()}"
            if default else "the bucket has no default retention: restic's uploads are "
            "not locked at all")
    days = int(default.get("Days") or 0) or int(default.get("Years") or 0) * 365
    p.check("default-retention-days", days >= p.lock.min_days,
            f"default retention {days} day(s), min_days {p.lock.min_days}")


def object_checks(p: Probing, extended: Extended) -> None:
    """The newest object as uploaded, and every needed object after the extension."""
    newest = extended.newest
    horizon = iso(extended.horizon)
    if newest is None:
        p.check("newest-object-retention", False, "the repository has no objects")
    elif newest.problem is not None:
        p.unasked.append(f"newest-object-retention: {newest.key}: {newest.problem}")
    else:
        held = iso(newest.until) if newest.until else "not locked"
        # From its upload (a copy that uploaded nothing new checks the newest it has); the
        # server stamps the retention when the upload starts, the time when it ends.
        needed = newest.modified + timedelta(days=p.lock.min_days) - UPLOAD_SLACK
        p.check("newest-object-retention", newest.until is not None and newest.until >= needed,
                f"{newest.key} (uploaded {iso(newest.modified)}): {held}, needed "
                f"{p.lock.min_days} day(s) from its upload")
    record = extended.record
    p.check("needed-objects-retention", extended.short == 0,
            f"{record.objects} object(s), {record.extended} extended to {record.until}; "
            f"earliest lock {record.earliest}" if extended.short == 0 else
            f"{extended.short} of {record.objects} needed object(s) locked until before "
            f"{horizon}: " + "; ".join(record.short[:3]))


def _probe_object(p: Probing, name: str) -> tuple[str, str] | None:
    body = p.random(PROBE_SIZE)
    key = p.bucket.where.key(f"{PROBE_DIR}/{hashlib.sha256(body).hexdigest()}")
    put = p.ask(name, "put_object", Key=key, Body=body)
    if put is None or not put.get("VersionId"):
        if put is not None:
            p.unasked.append(f"{name}: the probe object {key} got no version id")
        return None
    p.attempts.append(Attempt(action="write", target=key, outcome="succeeded",
                              detail=f"version {put['VersionId']}"))
    return key, str(put["VersionId"])


def delete_checks(p: Probing) -> None:
    """Deleting a locked version is refused (and, in governance mode, with the bypass)."""
    tries = [("version-delete", False)]
    if p.lock.mode == "governance":
        tries.append(("governance-bypass", True))
    for name, bypass in tries:
        written = _probe_object(p, name)
        if written is None:
            continue
        key, version = written
        extra = {"BypassGovernanceRetention": True} if bypass else {}
        action = "delete with bypass" if bypass else "delete"
        try:
            p.bucket.call("delete_object", Key=key, VersionId=version, **extra)
        except Exception as exc:
            code = error_code(exc)
            if code in _REFUSED:
                p.attempts.append(Attempt(action=action, target=key, outcome="refused",
                                          detail=code or ""))
                p.check(name, True, f"DeleteObject of version {version} refused ({code})")
                continue
            p.attempts.append(Attempt(action=action, target=key, outcome="error",
                                      detail=str(code or exc)))
            p.unasked.append(f"{name}: DeleteObject failed: {code or exc}")
            continue
        p.attempts.append(Attempt(action=action, target=key, outcome="succeeded",
                                  detail="the locked version was deleted"))
        p.check(name, False, f"DeleteObject of version {version} "
                f"{'with the governance bypass header ' if bypass else ''}was accepted with "
                "the copy's own credentials")


def probe(copy: str, bucket: Bucket, lock: ObjectLock, extended: Extended | None, *,
          random: Callable[[int], bytes] = os.urandom) -> tuple[ProbeResult, list[ProbeCheck]]:
    """Every check on one copy; the verdict names the first failed check."""
    p = Probing(copy, bucket, lock, random)
    bucket_checks(p)
    if extended is not None:
        object_checks(p, extended)
    else:
        p.unasked.append("needed-objects-retention: the lock extension did not run")
    delete_checks(p)
    failed = [c for c in p.checks if not c.ok]
    if failed:
        names = ", ".join(c.name for c in failed)
        return ProbeResult(copy, ExitStatus.BAD_DATA, False,
                           f"copy {copy} is NOT immutable: check {names} failed "
                           f"({failed[0].name}: {failed[0].detail})", p.attempts), p.checks
    if p.unasked:
        return ProbeResult(copy, ExitStatus.FAILED, False,
                           f"copy {copy}: immutability could not be proven ({p.unasked[0]})",
                           p.attempts), p.checks
    return ProbeResult(copy, ExitStatus.OK, True, None, p.attempts), p.checks
