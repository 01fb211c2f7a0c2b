"""The job-file hash recorded with every run: any byte of difference shows."""

from __future__ import annotations

import hashlib
from pathlib import Path

from backupctl.config.identity import job_file_sha256


def test_the_hash_is_the_sha256_of_the_file_bytes(tmp_path: Path) -> None:
    path = tmp_path / "emr-db.yaml"
    path.write_text("job: emr-db\n# 電子カルテ\n")
    assert job_file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_comment_changes_the_hash(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("job: emr-db\n")
    b.write_text("job: emr-db\n# edited on backup02\n")
    assert job_file_sha256(a) != job_file_sha256(b)
