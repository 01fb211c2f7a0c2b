"""A full verify that does not fit this orchestrator's scratch disk is skipped here and stays
due (issue #15): the real free space of scratch_dir against the size the shared state
recorded."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

from backupctl.actions import capacity, due
from backupctl.config.schema import Job
from backupctl.execute.local import LocalRunner
from backupctl.state.db import Store
from backupctl.state.takeover import finish_if_running
from tests.conftest import need


def _backup_of_size(store: Store, size: int) -> None:
    run_id = store.start_run(job="pacs", kind="backup")
    with store.transaction() as conn:
        assert finish_if_running(conn, run_id, {
            "status": "success", "exit_code": 0,
            "details": json.dumps({"manifest": {"bytes_total": size}})})


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
