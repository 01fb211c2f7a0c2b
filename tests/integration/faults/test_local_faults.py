"""Faults on the orchestrator: scratch disk full during a full restore, a read-only state
database, a held job lock, SIGKILL and SIGTERM of backup and verify (issue #9, SPEC §4, §7).

Restored patient data never stays in scratch_dir; a killed run is recorded as failed the
next time the tool starts; a run the state database cannot record does not run at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import (
    FaultWorkspace,
    assert_recorded,
    json_job,
    restic_locks,
    runs,
    scratch_leftovers,
    wait_for,
    wait_gone,
)


def _root_or_skip() -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs / read-only bind mount needs root (CI runs as root)")


@contextlib.contextmanager
def _mounted(target: Path, *args: str) -> Iterator[None]:
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", *args, str(target)], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)


def _source(ws: FaultWorkspace, name: str, *, files: int = 5, big: int = 0) -> Path:
    src = ws.src(name)
    src.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (src / f"f{i:04d}.txt").write_text(f"患者 {i}\n")
    if big:
        with (src / "big.bin").open("wb") as f:
            for _ in range(big // (8 << 20)):
                f.write(os.urandom(8 << 20))
    ws.job(name, source=src, verify={"sample": 3})
    return src


def _backup_ok(ws: FaultWorkspace, name: str) -> None:
    proc = ws.run("backup", name, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- scratch disk full ------------------------------------------------------------------------

def test_scratch_inodes_run_out_during_a_full_restore_exit_1_wiped(fws: FaultWorkspace) -> None:
    """The free-space check passes (bytes), then the disk fills up while restoring."""
    _root_or_skip()
    _source(fws, "full", files=300)
    _backup_ok(fws, "full")
    with _mounted(fws.scratch_dir, "-t", "tmpfs", "-o", "size=200m,nr_inodes=100,mode=0700",
                  "tmpfs"):
        proc = fws.run("verify", "full", "--mode", "full", "--json")
        job = json_job(proc)

        assert proc.returncode == 1, job  # the disk failed us, not the data: not proven
        assert "no space left on device" in job["error"].lower()
        assert scratch_leftovers(fws) == []
        assert_recorded(fws, kind="verify", statuses=["failed"])
    proc = fws.run("verify", "full", "--mode", "full", "--json")
    assert proc.returncode == 0, proc.stdout  # a bigger scratch disk: proven good


def test_scratch_too_small_refuses_a_full_restore_before_restoring(
        fws: FaultWorkspace) -> None:
    _root_or_skip()
    _source(fws, "small", big=16 << 20)
    _backup_ok(fws, "small")
    with _mounted(fws.scratch_dir, "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs"):
        proc = fws.run("verify", "small", "--mode", "full", "--json")
        job = json_job(proc)

        assert proc.returncode == 1, job
        assert "not enough free space" in job["error"]
        assert scratch_leftovers(fws) == []
        assert_recorded(fws, kind="verify", statuses=["failed"])


# -- state database read-only ----------------------------------------------------------------

@pytest.mark.parametrize("command", ["backup", "verify"])
def test_read_only_state_database_exit_1_and_nothing_runs(fws: FaultWorkspace,
                                                          command: str) -> None:
    _root_or_skip()
    _source(fws, "ro")
    _backup_ok(fws, "ro")
    snapshots = sorted((fws.repo("ro") / "snapshots").iterdir())
    with _mounted(fws.state_dir, "--bind", str(fws.state_dir)):
        subprocess.run(["mount", "-o", "remount,ro,bind", str(fws.state_dir)], check=True)
        proc = fws.run(command, "ro", "--json")

        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        assert "state" in (proc.stdout + proc.stderr).lower()
        assert "read-only" in (proc.stdout + proc.stderr).lower()
    # Nothing ran that the state could not record: no new snapshot, no unrecorded run.
    assert sorted((fws.repo("ro") / "snapshots").iterdir()) == snapshots
    assert_recorded(fws, kind="backup", statuses=["success"])
    assert_recorded(fws, kind="verify", statuses=[])
    assert scratch_leftovers(fws) == []


# -- lock held --------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["backup", "verify"])
def test_job_lock_held_exit_75_nothing_run(fws: FaultWorkspace, command: str) -> None:
    _source(fws, "busy")
    _backup_ok(fws, "busy")
    path = fws.state_dir / "locks" / "busy.lock"
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another backupctl runs this job
        proc = fws.run(command, "busy", "--json")
    finally:
        os.close(fd)

    assert proc.returncode == 75, proc.stdout + proc.stderr
    assert "already running" in json_job(proc)["error"]
    assert [r["kind"] for r in runs(fws)] == ["backup"], "the refused run left a state row"
    assert fws.run(command, "busy").returncode == 0  # the lock is free again


# -- SIGKILL / SIGTERM ------------------------------------------------------------------------

def _kill(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    if sig is signal.SIGKILL:
        os.killpg(proc.pid, sig)  # a power cut: backupctl and its restic die together
    else:
        os.kill(proc.pid, sig)  # systemd stopping the service: backupctl must clean up


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill", "term"])
def test_backup_killed_is_recorded_failed_next_run_succeeds(
        fws: FaultWorkspace, started: list[subprocess.Popen[str]], sig: signal.Signals) -> None:
    _source(fws, "bk", big=96 << 20)
    proc = fws.start("backup", "bk", "--json")
    started.append(proc)
    wait_for(lambda: bool(restic_locks(fws.repo("bk"))), "restic backup to start", 120)

    _kill(proc, sig)
    fws.finish(proc)

    wait_gone(str(fws.repo("bk")))  # no restic left running
    if sig is signal.SIGTERM:
        assert proc.returncode == 1
        assert [r["status"] for r in runs(fws)] == ["interrupted"]  # recorded at once
    else:
        assert [r["status"] for r in runs(fws)] == ["running"]  # recorded on the next start
    again = fws.run("backup", "bk", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert_recorded(fws, kind="backup", statuses=["interrupted", "success"])
    assert restic_locks(fws.repo("bk")) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill", "term"])
def test_full_verify_killed_is_recorded_failed_and_scratch_wiped(
        fws: FaultWorkspace, started: list[subprocess.Popen[str]], sig: signal.Signals) -> None:
    _source(fws, "vk", big=128 << 20)
    _backup_ok(fws, "vk")
    proc = fws.start("verify", "vk", "--mode", "full", "--json")
    started.append(proc)
    wait_for(lambda: any(p.is_file() and p.stat().st_size > 0
                         for p in scratch_leftovers(fws)), "the restore to write data", 120)

    _kill(proc, sig)
    fws.finish(proc)

    wait_gone(str(fws.scratch_dir))
    if sig is signal.SIGTERM:
        assert proc.returncode == 1
        assert scratch_leftovers(fws) == [], "restored patient data left after SIGTERM"
        assert [r["status"] for r in runs(fws, "verify")] == ["interrupted"]
    else:
        assert scratch_leftovers(fws), "nothing was being restored"
    status = fws.run("status", "--json")  # the next start records and wipes a killed run
    assert status.returncode == 0, status.stderr
    assert scratch_leftovers(fws) == [], "restored patient data left after a kill"
    assert_recorded(fws, kind="verify", statuses=["interrupted"])
    again = fws.run("verify", "vk", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert_recorded(fws, kind="verify", statuses=["interrupted", "success"])
