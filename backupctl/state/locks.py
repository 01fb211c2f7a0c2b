"""Per-job locks: a second run of the same job exits 75 and runs nothing."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from backupctl.errors import BackupctlError, LockHeld


@contextmanager
def job_lock(state_dir: Path, job: str) -> Iterator[None]:
    """Hold `state_dir/locks/JOB.lock` (flock) or raise LockHeld at once.

    flock is released by the kernel when the process dies, so a killed run never leaves a
    stale lock behind.
    """
    directory = state_dir / "locks"
    path = directory / f"{job}.lock"
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise BackupctlError(f"{job}: cannot open the job lock {path}: "
                             f"{exc.strerror or exc}; check state_dir; nothing was run")\
            from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise LockHeld(f"{job}: already running ({holder} holds {path}); nothing was run")\
                from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
