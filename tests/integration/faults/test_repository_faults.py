"""Repository faults against real restic: damaged packs, index and snapshots, wrong or
unusable passwords, live and stale locks (issue #9, SPEC §4).

A verify never exits 0 unless the data was proven good: damage is exit 3 (bad data), a
repository that cannot be read at all for reasons other than damage is exit 1. Every run
is recorded with its evidence, and restored data never stays in scratch_dir.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cli.helpers import edit_job
from tests.repo_damage import flip_byte

from .conftest import (
    SECRET,
    FaultWorkspace,
    assert_recorded,
    json_job,
    restic_locks,
    scratch_leftovers,
    wait_for,
)

MODES = ["quick", "full"]


def _backed_up(ws: FaultWorkspace, name: str) -> Path:
    src = ws.src(name)
    src.mkdir(parents=True, exist_ok=True)
    for i in range(10):
        (src / f"file {i} 日本語.txt").write_bytes(os.urandom(3000 + i))
    (src / "big.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    ws.job(name, source=src, verify={"sample": "all"})
    proc = ws.run("backup", name, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return src


def _verify(ws: FaultWorkspace, name: str, mode: str = "quick") -> tuple[int, dict[str, Any]]:
    proc = ws.run("verify", name, "--mode", mode, "--json")
    return proc.returncode, json_job(proc)


def _packs(repo: Path) -> list[Path]:
    return sorted((p for p in (repo / "data").rglob("*") if p.is_file()),
                  key=lambda p: p.stat().st_size, reverse=True)


def _one(directory: Path) -> Path:
    [only] = [p for p in directory.rglob("*") if p.is_file()]
    return only




def _bad_data(ws: FaultWorkspace, name: str, mode: str) -> dict[str, Any]:
    code, job = _verify(ws, name, mode)
    assert code == 3, job
    assert job["status"] == "bad_data" and job["error"]
    assert scratch_leftovers(ws) == []
    assert_recorded(ws, kind="verify", statuses=["bad_data"])
    return job


@pytest.mark.parametrize("mode", MODES)
def test_byte_flipped_in_a_pack_is_exit_3_naming_the_file(fws: FaultWorkspace,
                                                          mode: str) -> None:
    src = _backed_up(fws, "flip")
    flip_byte(_packs(fws.repo("flip"))[0])

    job = _bad_data(fws, "flip", mode)

    # The middle of the largest pack is big.bin's data or a small file's, as restic packed
    # them (its file readers run in parallel): whichever it is must be the file named.
    files = {str(p) for p in src.iterdir()}
    named = {m["path"] for m in job["mismatches"]} & files
    assert named, job["mismatches"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_deleted_pack_is_exit_3(fws: FaultWorkspace, mode: str) -> None:
    _backed_up(fws, "pack")
    victim = _packs(fws.repo("pack"))[0]
    victim.unlink()

    job = _bad_data(fws, "pack", mode)

    assert job["mismatches"]


@pytest.mark.parametrize("mode", MODES)
def test_deleted_index_is_exit_3(fws: FaultWorkspace, mode: str) -> None:
    _backed_up(fws, "index")
    for index in (fws.repo("index") / "index").iterdir():
        index.unlink()

    job = _bad_data(fws, "index", mode)

    assert "index" in job["error"].lower() or job["mismatches"]


@pytest.mark.parametrize("mode", MODES)
def test_deleted_snapshot_file_is_exit_3_not_an_older_pass(fws: FaultWorkspace,
                                                           mode: str) -> None:
    src = _backed_up(fws, f"snap-{mode}")
    (src / "newer.txt").write_text("second backup\n")
    second = json_job(fws.run("backup", f"snap-{mode}", "--json"))
    newest = next(p for p in (fws.repo(f"snap-{mode}") / "snapshots").iterdir()
                  if p.name.startswith(str(second["snapshot_id"])))
    newest.unlink()  # the newest backup is gone; an older snapshot is still there

    job = _bad_data(fws, f"snap-{mode}", mode)

    assert str(second["snapshot_id"]) in job["error"]


@pytest.mark.parametrize("mode", MODES)
def test_deleted_only_snapshot_is_exit_3(fws: FaultWorkspace, mode: str) -> None:
    _backed_up(fws, f"only-{mode}")
    _one(fws.repo(f"only-{mode}") / "snapshots").unlink()

    job = _bad_data(fws, f"only-{mode}", mode)

    assert "missing" in job["error"]


def test_wrong_password_is_exit_1_for_backup_and_verify(fws: FaultWorkspace) -> None:
    _backed_up(fws, "pw")
    wrong = fws.root / "secrets" / "wrong"
    wrong.write_text("not-the-password\n")
    edit_job(fws, "pw", repository={"password_file": str(wrong)})

    backup = fws.run("backup", "pw", "--json")
    verify = fws.run("verify", "pw", "--json")

    assert backup.returncode == 1 and verify.returncode == 1
    for proc in (backup, verify):
        assert "wrong password" in json_job(proc)["error"]
    assert_recorded(fws, kind="backup", statuses=["success", "failed"])
    assert_recorded(fws, kind="verify", statuses=["failed"])
    assert "not-the-password" not in backup.stdout + backup.stderr + verify.stdout


@pytest.mark.parametrize("fault", ["missing", "directory"])
def test_password_file_missing_is_a_config_error_exit_2_nothing_run(
        fws: FaultWorkspace, fault: str) -> None:
    _backed_up(fws, "gone")
    path = fws.root / "secrets" / "gone"
    if fault == "directory":
        path.mkdir()
    edit_job(fws, "gone", repository={"password_file": str(path)})

    for command in ("backup", "verify"):
        proc = fws.run(command, "gone")
        assert proc.returncode == 2, proc.stderr
        assert "gone.yaml:" in proc.stderr and str(path) in proc.stderr
        assert "Traceback" not in proc.stderr
    edit_job(fws, "gone", repository={"password_file": str(fws.password_file())})
    assert_recorded(fws, kind="backup", statuses=["success"])  # nothing else was run
    assert_recorded(fws, kind="verify", statuses=[])


@pytest.mark.parametrize("content", [b"", b"\xff\xfe not utf-8\n"], ids=["empty", "binary"])
def test_unusable_password_file_is_exit_1_recorded(fws: FaultWorkspace, content: bytes) -> None:
    _backed_up(fws, "bad")
    path = fws.root / "secrets" / "bad"
    path.write_bytes(content)
    edit_job(fws, "bad", repository={"password_file": str(path)})

    for command in ("backup", "verify"):
        proc = fws.run(command, "bad", "--json")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert str(path) in json_job(proc)["error"]
        assert "Traceback" not in proc.stderr
    assert_recorded(fws, kind="backup", statuses=["success", "failed"])


# -- locks ----------------------------------------------------------------------------------

@pytest.fixture
def exclusive_lock(fws: FaultWorkspace) -> Iterator[Any]:
    """start(repo) → a live `restic key passwd` holding the repository's exclusive lock
    (it waits forever for its new password on a FIFO); killed after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(repo: Path) -> subprocess.Popen[bytes]:
        fifo = fws.root / f"fifo-{len(procs)}"
        os.mkfifo(fifo)
        proc = subprocess.Popen(["restic", "--repo", str(repo), "--password-file", "/dev/stdin",
                                 "key", "passwd", "--new-password-file", str(fifo)],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        assert proc.stdin is not None
        proc.stdin.write((SECRET + "\n").encode())
        proc.stdin.close()
        procs.append(proc)
        wait_for(lambda: bool(restic_locks(repo)), "restic to take its lock")
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_live_exclusive_lock_is_exit_1_never_removed(fws: FaultWorkspace,
                                                     exclusive_lock: Any) -> None:
    _backed_up(fws, "live")
    holder = exclusive_lock(fws.repo("live"))
    lock = restic_locks(fws.repo("live"))

    backup = fws.run("backup", "live", "--json")
    verify = fws.run("verify", "live", "--json")

    for proc in (backup, verify):
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "locked" in json_job(proc)["error"]
    assert holder.poll() is None and restic_locks(fws.repo("live")) == lock, \
        "a live lock was removed"
    assert_recorded(fws, kind="verify", statuses=["failed"])
    holder.kill()
    holder.wait()


@pytest.mark.slow
def test_stale_exclusive_lock_is_removed_and_runs_succeed(fws: FaultWorkspace,
                                                          exclusive_lock: Any) -> None:
    _backed_up(fws, "stale")
    holder = exclusive_lock(fws.repo("stale"))
    os.kill(holder.pid, signal.SIGKILL)  # like a power cut: its lock stays in the repository
    holder.wait()
    assert restic_locks(fws.repo("stale"))

    backup = fws.run("backup", "stale", "--json")
    verify = fws.run("verify", "stale", "--json")

    assert backup.returncode == 0, backup.stdout + backup.stderr
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert restic_locks(fws.repo("stale")) == []
    assert_recorded(fws, kind="backup", statuses=["success", "success"])
    assert_recorded(fws, kind="verify", statuses=["success"])


@pytest.mark.slow
def test_lock_file_copied_from_a_killed_restic_elsewhere_is_removed(
        fws: FaultWorkspace, exclusive_lock: Any) -> None:
    """A lock file copied in (e.g. restored with the repository from another disk)."""
    _backed_up(fws, "copied")
    other = fws.new_repo("other")
    holder = exclusive_lock(other)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    [lock] = restic_locks(other)
    # Same master key (both copies of one template): the lock decrypts in our repository.
    (fws.repo("copied") / "locks" / lock.name).write_bytes(lock.read_bytes())

    verify = fws.run("verify", "copied", "--json")

    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert restic_locks(fws.repo("copied")) == []
