"""The runbook of an S3 Object Lock copy: bucket, credentials file, the keys loaded in a
subshell, and reading the repository from before an attack (ja/en, md/html)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from backupctl import runbook
from backupctl.config.schema import Job
from backupctl.state.db import Store
from tests.unit.web.conftest import settings

KEYS = "/etc/backupctl/secrets/s3 cloud"  # a space: every command quotes it


def _job() -> Job:
    return Job.model_validate({
        "job": "emr-db", "host": {"address": "local"}, "source": {"paths": ["/srv/emr"]},
        "repository": {"url": "/var/backups/emr-db", "password_file": "/pw"},
        "generations": {"last": 7},
        "copies": [{"name": "cloud-worm", "kind": "immutable",
                    "url": "s3:https://s3.ap-northeast-1.amazonaws.com/hospital-backup/emr-db",
                    "password_file": "/pw-cloud", "max_age": "2d", "s3_credentials_file": KEYS,
                    "object_lock": {"mode": "compliance", "min_days": 30}}],
        "schedule": {"backup": "*-*-* 02:00:00", "verify": "Sun *-*-* 04:00:00"}})


@pytest.mark.parametrize(("lang", "fmt", "word"), [
    ("ja", "md", "削除マーカー"), ("en", "md", "delete markers"),
    ("ja", "html", "削除マーカー"), ("en", "html", "delete markers")])
def test_the_runbook_names_the_bucket_the_keys_and_how_to_undo_delete_markers(
        tmp_path: Path, lang: str, fmt: str, word: str) -> None:
    config = settings(tmp_path, evidence_key=str(tmp_path / "no-key"))
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    text = runbook.runbook(config, store, _job(), lang=lang, fmt=fmt)
    assert "hospital-backup" in text and KEYS in text and word in text
    assert "compliance, 30 day(s)" in text
    quoted = "(set -a; . '/etc/backupctl/secrets/s3 cloud'; set +a; "
    quoted_html = quoted.replace("'", "&#39;")
    assert quoted in text or quoted_html in text
    assert "list-object-versions" in text and "--version-id" in text


def test_the_commands_load_the_keys_in_a_subshell_only(tmp_path: Path) -> None:
    """The subshell exports the file's lines to the command and nothing leaks after it."""
    keys = tmp_path / "keys"
    keys.write_text("AWS_ACCESS_KEY_ID=AKIA\nAWS_SECRET_ACCESS_KEY=zz-secret\n")
    line = runbook._with_keys(str(keys), 'printf %s "$AWS_SECRET_ACCESS_KEY"')
    out = subprocess.run(["sh", "-c", line + '; printf "|%s" "$AWS_SECRET_ACCESS_KEY"'],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    assert out == "zz-secret|"
