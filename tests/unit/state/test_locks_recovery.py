"""Per-job locks (exit 75) and crash recovery (killed runs → interrupted, scratch wiped)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from backupctl.errors import LockHeld
from backupctl.state.db import Store
from backupctl.state.locks import job_lock
from backupctl.state.recovery import recover, recover_if_idle, wipe
from backupctl.state.schema import runs
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


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'state.db'}")


def _statuses(store: Store) -> list[tuple[str, str, str | None]]:
    with store.read() as conn:
        return [(r.job, r.status, r.error) for r in conn.execute(select(runs).order_by(runs.c.id))]


def test_recover_marks_running_rows_interrupted_and_wipes_scratch(store: Store,
                                                                  tmp_path: Path) -> None:
    store.start_run(job="emr", kind="backup")
    store.start_run(job="other", kind="backup")
    leftover = tmp_path / "scratch" / "emr.1234"
    (leftover / "ro").mkdir(parents=True)
    (leftover / "ro" / "patient.txt").write_text("患者")
    (leftover / "ro").chmod(0o500)
    (tmp_path / "scratch" / "other.1").mkdir()

    stale = recover(store, state_dir=tmp_path, scratch_dir=tmp_path / "scratch", job="emr")

    assert stale == [1]
    [(job, status, error), other] = _statuses(store)
    assert (job, status) == ("emr", "interrupted") and "killed" in (error or "")
    assert other[1] == "running"
    assert not leftover.exists()
    assert (tmp_path / "scratch" / "other.1").exists()


def test_recover_if_idle_leaves_a_live_run_alone(store: Store, tmp_path: Path) -> None:
    store.start_run(job="emr", kind="backup")
    with job_lock(tmp_path, "emr"):
        recover_if_idle(store, state_dir=tmp_path, scratch_dir=tmp_path / "s", job="emr")
        assert _statuses(store)[0][1] == "running"
    recover_if_idle(store, state_dir=tmp_path, scratch_dir=tmp_path / "s", job="emr")
    assert _statuses(store)[0][1] == "interrupted"


def test_wipe_removes_read_only_trees(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f").write_text("x")
    (tree / "a" / "b").chmod(0o500)
    (tree / "a").chmod(0o500)
    wipe(tree)
    assert not tree.exists()
    wipe(tree)  # nothing there: no error
