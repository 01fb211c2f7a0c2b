"""Lock extension: every needed object locked min_days ahead, locks/ and probes left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from backupctl.actions import objectlock
from backupctl.actions.objectlock import Known
from tests.unit.actions.objectlock.conftest import make_bucket, make_copy


def test_an_old_pack_is_extended_and_new_objects_and_locks_are_left(
        tmp_path: Path, mocked_s3: None) -> None:
    copy = make_copy(tmp_path, "ext", min_days=2, margin=1)
    s3 = make_bucket(copy, days=5)
    keys = ["repo/config", "repo/data/ab/old", "repo/locks/l1", "repo/backupctl-probe/p"]
    versions = {k: s3.put_object(Bucket="ext", Key=k, Body=b"x")["VersionId"] for k in keys}
    now = datetime.now(UTC)
    soon = now + timedelta(hours=3)  # an old pack whose lock runs out (moto may shorten it)
    for key in ("repo/data/ab/old", "repo/locks/l1"):
        s3.put_object_retention(Bucket="ext", Key=key, VersionId=versions[key],
                                Retention={"Mode": "COMPLIANCE", "RetainUntilDate": soon})

    done = objectlock.extend_locks(copy, started=now, now=now)

    record = done.record
    assert (record.objects, record.extended, done.short) == (2, 1, 0)
    held = s3.head_object(Bucket="ext", Key="repo/data/ab/old")["ObjectLockRetainUntilDate"]
    assert held >= now + timedelta(days=3) - timedelta(seconds=1)
    lock = s3.head_object(Bucket="ext", Key="repo/locks/l1")["ObjectLockRetainUntilDate"]
    assert lock < now + timedelta(days=1)  # restic's locks are never extended
    assert record.api_calls == 1 + 2 + 1  # list, two heads, one PutObjectRetention
    again = objectlock.extend_locks(copy, started=now, now=now)
    assert again.record.extended == 0


def test_an_object_that_cannot_be_extended_is_named(tmp_path: Path, mocked_s3: None) -> None:
    copy = make_copy(tmp_path, "unlocked", min_days=2)
    s3 = make_bucket(copy, lock=False)
    s3.put_object(Bucket="unlocked", Key="repo/data/cd/pack", Body=b"x")
    now = datetime.now(UTC)
    done = objectlock.extend_locks(copy, started=now, now=now)
    assert done.short == 1 and done.record.short[0].startswith("repo/data/cd/pack: ")


def test_locks_the_previous_copy_saw_are_trusted_until_they_come_within_reach(
        tmp_path: Path, mocked_s3: None) -> None:
    copy = make_copy(tmp_path, "known", min_days=2, margin=1)
    s3 = make_bucket(copy, days=5)
    for key in ("repo/config", "repo/data/aa/1", "repo/data/bb/2"):
        s3.put_object(Bucket="known", Key=key, Body=b"x")
    now = datetime.now(UTC) + timedelta(seconds=1)
    later = objectlock.extend_locks(copy, started=now, now=now,
                                    since=Known(at=now, until=now + timedelta(days=4)))
    # only the newest object is read (the probe checks it); the earliest is the known bound
    assert (later.record.objects, later.record.asked, later.record.api_calls) == (3, 1, 2)
    assert later.record.earliest is not None and later.short == 0
    stale = objectlock.extend_locks(copy, started=now, now=now,
                                    since=Known(at=now, until=now + timedelta(days=1)))
    assert stale.record.asked == 3  # the bound is within min_days: every object is read
