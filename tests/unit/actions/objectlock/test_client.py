"""The S3 client: boto3 only when an S3 copy is used; botocore never logs (the secret)."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from pathlib import Path

from backupctl.actions.objectlock import client
from tests.unit.actions.objectlock.conftest import SECRET, make_bucket, make_copy


def test_commands_do_not_import_boto3_until_an_s3_copy_is_used() -> None:
    code = ("import sys; from backupctl.cli.main import build; "
            "[build([c, 'x']) for c in ('copy', 'verify', 'init', 'runbook', 'status')]; "
            "import backupctl.actions.copy, backupctl.actions.objectlock, backupctl.runbook; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))")
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                            text=True, timeout=120).stdout.strip()
    assert loaded == "[]"


def test_botocore_logs_nothing_even_at_debug(tmp_path: Path, mocked_s3: None) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        copy = make_copy(tmp_path, "logs")
        make_bucket(copy)
        client.connect(copy).call("get_bucket_versioning")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    text = stream.getvalue()
    assert SECRET not in text and "botocore" not in text and "AKIAUNIT" not in text
