"""An in-process S3 (moto's mock) and an S3 copy bound to it, for the probe and extension."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backupctl.actions.objectlock import client
from backupctl.config.schema import Copy

ENDPOINT = "https://s3.us-east-1.amazonaws.com"
SECRET = "unit-s3-secret-Zq81LmNx"


@pytest.fixture
def mocked_s3() -> Iterator[None]:
    moto = pytest.importorskip("moto")
    with moto.mock_aws():
        yield


def make_copy(tmp_path: Path, bucket: str, *, mode: str = "compliance", min_days: int = 2,
              margin: int = 1) -> Copy:
    keys = tmp_path / f"keys-{bucket}"
    keys.write_text(f"AWS_ACCESS_KEY_ID=AKIAUNIT\nAWS_SECRET_ACCESS_KEY={SECRET}\n")
    keys.chmod(0o600)
    password = tmp_path / "pw"
    password.write_text("pw\n")
    password.chmod(0o600)
    return Copy.model_validate({
        "name": bucket, "kind": "immutable", "url": f"s3:{ENDPOINT}/{bucket}/repo",
        "password_file": str(password), "max_age": "2d", "s3_credentials_file": str(keys),
        "object_lock": {"mode": mode, "min_days": min_days, "extend_margin_days": margin}})


def make_bucket(copy: Copy, *, mode: str | None = "COMPLIANCE", days: int = 2,
                lock: bool = True) -> Any:
    """The copy's bucket, with Object Lock and a default retention as asked."""
    bucket = client.connect(copy)
    s3 = bucket.client
    s3.create_bucket(Bucket=bucket.where.bucket, ObjectLockEnabledForBucket=lock)
    if lock and mode is not None:
        s3.put_object_lock_configuration(Bucket=bucket.where.bucket, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}}})
    return s3
