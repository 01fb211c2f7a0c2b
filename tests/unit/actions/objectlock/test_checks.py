"""The Object Lock probe's named checks (moto's in-process S3: it refuses a locked
version's delete, lets any bypass header through, and does not refuse shortening)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from backupctl.actions import objectlock
from backupctl.actions.objectlock import checks, client
from backupctl.actions.probe import ProbeResult
from backupctl.config.schema import Copy
from backupctl.status import ExitStatus
from tests.unit.actions.objectlock.conftest import make_bucket, make_copy

NOW = datetime.now(UTC)


def _probe(copy: Copy) -> tuple[ProbeResult, dict[str, bool]]:
    extended = objectlock.extend_locks(copy, started=NOW, now=NOW)
    found, named = objectlock.probe(copy, extended)
    return found, {c.name: c.ok for c in named}


def test_a_compliance_bucket_passes_every_check(tmp_path: Path, mocked_s3: None) -> None:
    copy = make_copy(tmp_path, "good")
    s3 = make_bucket(copy)
    s3.put_object(Bucket="good", Key="repo/config", Body=b"c")
    found, named = _probe(copy)
    assert found.status is ExitStatus.OK and found.ok, found.error
    assert all(named.values()) and "governance-bypass" not in named
    assert [a.outcome for a in found.attempts] == ["succeeded", "refused"]


def test_no_default_retention_fails_naming_the_trap(tmp_path: Path, mocked_s3: None) -> None:
    copy = make_copy(tmp_path, "nodefault")
    s3 = make_bucket(copy, mode=None)
    s3.put_object(Bucket="nodefault", Key="repo/config", Body=b"c")
    found, named = _probe(copy)
    assert found.status is ExitStatus.BAD_DATA and not found.ok
    assert named["default-retention-mode"] is False
    assert named["newest-object-retention"] is False  # uploaded without any lock
    assert "no default retention" in (found.error or "")
    # the probe object was not locked either: its delete went through
    assert named["version-delete"] is False


def test_governance_with_a_bypass_the_credentials_may_use_fails(
        tmp_path: Path, mocked_s3: None) -> None:
    """moto lets any bypass header through: the pass path needs real S3 and IAM."""
    copy = make_copy(tmp_path, "gov", mode="governance")
    s3 = make_bucket(copy, mode="GOVERNANCE", days=3)
    s3.put_object(Bucket="gov", Key="repo/config", Body=b"c")
    found, named = _probe(copy)
    assert named["version-delete"] is True and named["governance-bypass"] is False
    assert "governance-bypass" in (found.error or "") and found.status is ExitStatus.BAD_DATA


def test_an_unreachable_endpoint_is_never_a_pass(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("AWS_ACCESS_KEY_ID=a\nAWS_SECRET_ACCESS_KEY=b\n")
    keys.chmod(0o600)
    copy = make_copy(tmp_path, "gone").model_copy(update={
        "url": "s3:http://127.0.0.1:9/gone/repo", "s3_credentials_file": keys})
    bucket = client.connect(copy)
    bucket.client.meta.events.register(
        "before-send", lambda **_: (_ for _ in ()).throw(ConnectionError("refused")))
    assert copy.object_lock is not None
    found, _checks = checks.probe("gone", bucket, copy.object_lock, None)
    assert found.status is ExitStatus.FAILED and not found.ok
    assert "could not be proven" in (found.error or "")


def test_a_copy_that_uploaded_nothing_new_checks_its_newest_object_from_its_upload(
        tmp_path: Path, mocked_s3: None) -> None:
    """Days after the upload (nothing new copied): the newest object was locked min_days
    from its upload, which is what the bucket's default retention promises."""
    copy = make_copy(tmp_path, "quiet", min_days=2)
    s3 = make_bucket(copy, days=5)
    s3.put_object(Bucket="quiet", Key="repo/config", Body=b"c")
    later = NOW + timedelta(days=4)  # past the lock the upload got: 5 days
    extended = objectlock.extend_locks(copy, started=later, now=later)
    found, checked = objectlock.probe(copy, extended)
    assert {c.name: c.ok for c in checked}["newest-object-retention"] is True
    assert found.ok, found.error
