"""Per-job locks: a second run of the same job exits 75."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from backupctl.errors import LockHeld
from backupctl.state.locks import FileLocks, job_lock
from backupctl.status import ExitStatus


def test_second_lock_of_the_same_job_is_refused_with_75(tmp_path: Path) -> None:
    with job_lock(tmp_path, "emr"):
        with pytest.raises(LockHeld) as info, job_lock(tmp_path, "emr"):
            pass
        assert info.value.status is ExitStatus.LOCKED
        assert f"pid {os.getpid()}" in str(info.value)
        assert "nothing was run" in str(info.value)
        with job_lock(tmp_path, "other"):  # other jobs are independent
            pass
    with job_lock(tmp_path, "emr"):  # released on exit
        pass
    assert stat.S_IMODE((tmp_path / "locks").stat().st_mode) == 0o700


def test_a_lock_held_by_another_process_is_refused(tmp_path: Path) -> None:
    code = ("import sys, time; from pathlib import Path; from backupctl.state.locks import "
            "job_lock\nwith job_lock(Path(sys.argv[1]), 'emr'):\n print('held', flush=True)\n"
            " time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld, match=f"pid {holder.pid}"), job_lock(tmp_path, "emr"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with job_lock(tmp_path, "emr"):  # the kernel released it when the holder died
        pass


def test_file_locks_hold_the_job_lock_naming_the_kind(tmp_path: Path) -> None:
    locks = FileLocks(tmp_path)
    assert locks.global_scope is False
    with locks.hold("emr", kind="verify"), pytest.raises(LockHeld, match="verify pid"), \
            locks.hold("emr", kind="backup"):
        pass
