"""The S3 client of an Object Lock copy's probe and lock extension (boto3, imported here only).

boto3 costs ~0.3 s to import and is needed only by S3 copies: nothing else imports this
module at start-up (`import backupctl.cli` does not import boto3, tests/unit/cli checks it).
The copy's own credentials file is used (the same keys restic gets), never the ambient AWS
configuration; botocore's own logging is silenced (its debug lines carry request headers).
Every call is counted (`calls`): the lock extension's cost is measured in S3 requests.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from backupctl.config.schema import Copy
from backupctl.errors import UsageError
from backupctl.restic import s3

TIMEOUT = 30  # seconds to connect and to read one answer
ATTEMPTS = 4  # botocore's standard retries (throttling, 5xx, connection errors)
_QUIET = ("boto3", "botocore", "s3transfer", "urllib3")


@dataclass
class Bucket:
    """A counting S3 client bound to one copy's bucket and repository prefix."""

    client: Any
    where: s3.Location
    calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, operation: str, **kwargs: Any) -> Any:
        """One S3 request (`operation` as boto3 names it) on this bucket."""
        with self._lock:
            self.calls += 1
        return getattr(self.client, operation)(Bucket=self.where.bucket, **kwargs)


def quiet_logging() -> None:
    """botocore logs requests at DEBUG (headers, signing steps): never ours to print."""
    for name in _QUIET:
        logger = logging.getLogger(name)
        logger.setLevel(logging.CRITICAL + 1)
        logger.propagate = False
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())


def credentials(copy: Copy) -> s3.Credentials:
    """The copy's credentials (read once, registered for its restic commands)."""
    if copy.s3_credentials_file is None:
        raise UsageError(f"copy {copy.name}: an s3: copy needs s3_credentials_file")
    return s3.use(copy.url, copy.s3_credentials_file)


def connect(copy: Copy) -> Bucket:
    """A boto3 client for the copy's endpoint with its own keys (path-style addressing:
    on-premises appliances and emulators rarely serve bucket subdomains)."""
    quiet_logging()
    import boto3
    from botocore.config import Config

    keys = credentials(copy)
    where = s3.location(copy.url)
    config = Config(connect_timeout=TIMEOUT, read_timeout=TIMEOUT,
                    retries={"max_attempts": ATTEMPTS, "mode": "standard"},
                    s3={"addressing_style": "path"})
    session = boto3.session.Session()
    client = session.client(
        "s3", endpoint_url=keys.endpoint or where.endpoint, region_name=keys.region,
        aws_access_key_id=keys.key_id.reveal(), aws_secret_access_key=keys.secret_key.reveal(),
        config=config)
    return Bucket(client, where)


def error_code(exc: BaseException) -> str | None:
    """The S3 error code of a botocore ClientError (`AccessDenied`, …), else None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None
