"""A full verify that does not fit this orchestrator's scratch disk is skipped here and stays
due (issue #15): the real free space of scratch_dir against the size the shared state
recorded."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from backupctl.actions import capacity, due
from backupctl.config.schema import Job
from backupctl.execute.local import LocalRunner
from backupctl.state.db import Store
from backupctl.state.records import BackupDetails, DatabaseDump, ManifestSummary, VerifyDetails
from tests import runs
from tests.conftest import need


def _backup_of_size(store: Store, size: int, *, status: str = "success") -> None:
    runs.record(store, job="pacs", status=status,
                details=BackupDetails(manifest=ManifestSummary(bytes_total=size)))


def test_the_restore_size_is_the_newest_backups_snapshot(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'state.db'}", orchestrator="backup01")
    assert capacity.restore_size(store, "pacs") is None
    runs.record(store, job="pacs", kind="verify",
                details=VerifyDetails(mode="full", bytes_restored=7000))
    runs.record(store, job="pacs", kind="verify", details=VerifyDetails(mode="quick"))
    assert capacity.restore_size(store, "pacs") == 7000  # no backup yet: the last full restore
    _backup_of_size(store, 5000)
    _backup_of_size(store, 1, status="failed")  # not a snapshot to restore
    assert capacity.restore_size(store, "pacs") == 5000
    _backup_of_size(Store(store.url, orchestrator="backup02"), 9000)
    assert capacity.restore_size(store, "pacs") == 9000  # whoever made it
    runs.record(store, job="pacs", details=BackupDetails(
        manifest=ManifestSummary(bytes_total=9000),
        databases=[DatabaseDump(name="emr", kind="postgresql", size=4000),
                   DatabaseDump(name="lab", kind="sqlite", size=500)]))
    assert capacity.restore_size(store, "pacs") == 13500  # the dumps are read into scratch


def test_a_restore_larger_than_the_free_scratch_space_is_skipped(tmp_path: Path) -> None:
    need("systemd-analyze")
    store = Store(f"sqlite:///{tmp_path / 'state.db'}", orchestrator="backup02")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    free = shutil.disk_usage(scratch).free
    job = Job.model_validate({
        "job": "pacs", "host": {"address": "local"}, "source": {"paths": ["/srv/pacs"]},
        "repository": {"url": "/srv/restic/pacs", "password_file": str(tmp_path / "pw")},
        "generations": {"last": 7},
        "schedule": {"backup": "*-*-* 02:00:00", "verify": "*-*-* 04:00:00"}})

    _backup_of_size(store, free + (1 << 30))  # a snapshot larger than this disk's room
    fit = capacity.restore_fits(store, "pacs", scratch_dir=scratch)

    assert not fit.fits and fit.needed == free + (1 << 30)
    assert "stays due" in fit.reason
    assert due.check(store, job, "verify", now=datetime.now(UTC), runner=LocalRunner()).due
    assert list(scratch.iterdir()) == []

    _backup_of_size(store, 1 << 20)  # a small one fits
    assert capacity.restore_fits(store, "pacs", scratch_dir=scratch).fits
