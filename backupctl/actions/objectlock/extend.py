"""Lock extension: every object an S3 copy's snapshots need stays locked `min_days` ahead.

restic deduplicates: a pack uploaded months ago is still needed by today's snapshots, but
its Object Lock retention ran out long ago (the bucket's default retention counts from the
upload), so whoever holds the copy's credentials may delete it and break every snapshot.
After every copy each needed object whose retention ends before the copy's start +
`min_days` + `extend_margin_days` is extended with PutObjectRetention to now + `min_days` +
`extend_margin_days` (extending is allowed in both modes; shortening never is). The margin
makes one pass over the objects hold for `extend_margin_days`: an object is extended about
once a margin, not after every copy.

Needed objects: every object under the repository's prefix except `locks/` (restic's lock
files, deleted on purpose) — the copy is never pruned (kind: immutable), so every config,
key, snapshot, index and pack file is part of what its kept snapshots need (a pack that is
missing altogether is `restic check`'s finding, in verify). Each object's retention is read
with HeadObject (an object's own retention, not the bucket's default of today, is what
holds), 16 requests at a time; listing costs one request per 1 000 objects.

A retention once seen only grows (COMPLIANCE cannot be shortened by anyone; GOVERNANCE only
with the bypass, which the probe proves the copy's credentials cannot use). So when the
previous copy found every needed object locked until at least `Known.until` and that is
still past the horizon, the objects that existed then (modified before `Known.at`) are not
asked again: a daily copy asks HeadObject only for what it uploaded, and makes a full pass
once `Known.until` comes within the horizon (about once a margin).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from backupctl.actions.objectlock.client import Bucket, error_code
from backupctl.clock import iso
from backupctl.config.schema import ObjectLock
from backupctl.errors import BackupctlError
from backupctl.state.records import LockExtension

WORKERS = 16
SKIPPED = ("locks/",)  # restic deletes its own locks; never needed, never extended
SHORT_SHOWN = 20


@dataclass(frozen=True)
class Found:
    """One needed object as HeadObject saw it, and what the extension did to it."""

    key: str
    modified: datetime
    until: datetime | None  # its retention before the extension (None: not locked)
    extended_to: datetime | None = None
    problem: str | None = None  # why it could not be read or extended

    @property
    def locked_until(self) -> datetime | None:
        return self.extended_to or (self.until if self.problem is None else None)


@dataclass(frozen=True)
class Known:
    """What the previous copy proved: every object modified before `at` was locked until at
    least `until` (its record's `earliest`, with no object short)."""

    at: datetime
    until: datetime


@dataclass(frozen=True)
class Extended:
    """The extension's outcome: the record, and the newest object as it was uploaded."""

    record: LockExtension
    newest: Found | None
    horizon: datetime
    short: int  # needed objects locked for less than min_days after it


def needed(bucket: Bucket, probe_prefix: str) -> Iterator[tuple[str, datetime]]:
    """(key, last modified) of every object under the repository's prefix that it needs."""
    prefix = bucket.where.key("")
    token: str | None = None
    while True:
        args = {"Prefix": prefix, **({"ContinuationToken": token} if token else {})}
        page = bucket.call("list_objects_v2", **args)
        for item in page.get("Contents", []):
            relative = str(item["Key"])[len(prefix):]
            if relative.startswith((*SKIPPED, probe_prefix)):
                continue
            yield str(item["Key"]), item["LastModified"]
        if not page.get("IsTruncated"):
            return
        token = page.get("NextContinuationToken")


def _one(bucket: Bucket, key: str, modified: datetime, *, horizon: datetime,
         threshold: datetime, until: datetime, mode: str) -> Found:
    try:
        head = bucket.call("head_object", Key=key)
    except Exception as exc:  # botocore raises many kinds; each is this object's problem
        return Found(key, modified, None, problem=f"HeadObject: {error_code(exc) or exc}")
    held = head.get("ObjectLockRetainUntilDate")
    found = Found(key, modified, held)
    if held is not None and held >= threshold:
        return found
    # COMPLIANCE stays COMPLIANCE (it cannot become GOVERNANCE); an unlocked object gets the
    # configured mode.
    lock_mode = str(head.get("ObjectLockMode") or mode.upper())
    try:
        bucket.call("put_object_retention", Key=key, VersionId=head.get("VersionId"),
                    Retention={"Mode": lock_mode, "RetainUntilDate": until})
    except Exception as exc:
        return Found(key, modified, held, problem=f"PutObjectRetention: "
                                                  f"{error_code(exc) or exc}")
    return Found(key, modified, held, extended_to=until)


def extend(bucket: Bucket, lock: ObjectLock, *, started: datetime, now: datetime,
           probe_prefix: str, known: Known | None = None) -> Extended:
    """Extend every needed object's lock that ends before started + min_days + margin."""
    began = time.monotonic()
    horizon = started + timedelta(days=lock.min_days)
    threshold = horizon + timedelta(days=lock.extend_margin_days)
    until = now + timedelta(days=lock.min_days + lock.extend_margin_days)
    try:
        objects = list(needed(bucket, probe_prefix))
    except Exception as exc:
        raise BackupctlError(f"listing {bucket.where.shown()} failed: "
                             f"{error_code(exc) or exc}") from None
    cutoff = known.at if known is not None and known.until >= horizon else None
    newest = max(objects, key=lambda o: o[1], default=None)  # the probe checks it
    seen = [o for o in objects if cutoff is not None and o[1] < cutoff and o is not newest]
    asked = [o for o in objects if not (cutoff is not None and o[1] < cutoff)
             or o is newest]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        found = list(pool.map(lambda o: _one(bucket, o[0], o[1], horizon=horizon,
                                             threshold=threshold, until=until,
                                             mode=lock.mode), asked))
    short = [f for f in found if f.locked_until is None or f.locked_until < horizon]
    ends = [f.locked_until for f in found if f.locked_until is not None]
    if seen and known is not None:
        ends.append(known.until)
    record = LockExtension(
        objects=len(objects), asked=len(found),
        extended=sum(f.extended_to is not None for f in found),
        until=iso(until), earliest=iso(min(ends)) if ends else None,
        short=[f"{f.key}: {f.problem or _shown(f.locked_until)}"
               for f in short[:SHORT_SHOWN]],
        api_calls=bucket.calls, duration_ms=int((time.monotonic() - began) * 1000))
    return Extended(record, max(found, key=lambda f: f.modified, default=None), horizon,
                    len(short))


def _shown(when: datetime | None) -> str:
    return f"locked until {iso(when)}" if when is not None else "not locked"
