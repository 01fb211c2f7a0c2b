"""A real S3 endpoint for tests: moto's server mode (`python -m moto.server`) on a free
loopback port, started by the test module that needs it, stopped after it.

moto serves Object Lock (versioning, default retention, refusing a locked version's
delete: its refusals are checked against AWS in moto's own suite). What it does not enforce
(measured, moto 5.2.6): any `x-amz-bypass-governance-retention` header bypasses GOVERNANCE
(there is no IAM permission to lack), and shortening a COMPLIANCE retention with
PutObjectRetention is accepted.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

KEY_ID = "AKIABACKUPCTLTEST01"
SECRET = "s3cret-Kq7vN2pX9wLmR4tY8zB1cD6fH3jG5"  # the secret that must appear nowhere


@dataclass
class S3Server:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path | None = None  # moto's own request log

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, bucket: str, prefix: str) -> str:
        return f"s3:{self.endpoint}/{bucket}/{prefix}"

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)

    def bucket(self, name: str, *, mode: str | None = None, days: int = 0,
               lock: bool = True) -> None:
        """A bucket with Object Lock (and, with `mode`, a default retention)."""
        s3 = self.client()
        s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)
        if lock and mode is not None:
            s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}}})

    def upload_repo(self, template: Path, bucket: str, prefix: str) -> None:
        """A restic repository (the session's template, its cheap key) put into the bucket."""
        s3 = self.client()
        for path in sorted(template.rglob("*")):
            if path.is_file():
                key = f"{prefix}/{path.relative_to(template).as_posix()}"
                s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())

    def env(self) -> dict[str, str]:
        """What the tests' own restic needs to reach a bucket."""
        return {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
                "AWS_DEFAULT_REGION": "us-east-1"}


def credentials_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(f"AWS_ACCESS_KEY_ID={KEY_ID}\nAWS_SECRET_ACCESS_KEY={SECRET}\n")
    path.chmod(0o600)
    return path


def _wait(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto server did not listen on {port}: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    pytest.importorskip("moto.server", reason="moto[server] is a dev dependency")
    root = tmp_path_factory.mktemp("moto")
    port = free_port()
    log = root / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                 "-p", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"})
    try:
        _wait(port, proc, log)
        yield S3Server(port, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
