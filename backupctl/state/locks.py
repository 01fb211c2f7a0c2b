"""Per-job locks: a second run of the same job exits 75 and runs nothing.

`JobLocks` is what a run holds from start to end. With the default SQLite state it is a
local `flock` (`FileLocks`): the kernel releases it when the process dies, so a killed run
never leaves a stale lock behind. With PostgreSQL it is a lease shared by every orchestrator
(`state/leases.py`: `PgLeases`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from backupctl.errors import BackupctlError, LockHeld


class JobLocks(Protocol):
    """Held for the whole run of a job; another holder → LockHeld (exit 75) naming it."""

    @property
    def global_scope(self) -> bool:
        """True: a `running` row of the job from any orchestrator is stale once held."""
        ...

    def hold(self, job: str, *, kind: str) -> contextlib.AbstractContextManager[object]: ...


class LeaseHeld(LockHeld):
    """The job's lease is held by a run on some orchestrator (exit 75)."""

    def __init__(self, message: str, *, job: str, orchestrator: str | None,
                 since: str | None) -> None:
        super().__init__(message)
        self.job = job
        self.orchestrator = orchestrator  # None: not known (its lease row is not written yet)
        self.since = since


class FileLocks:
    """`state_dir/locks/JOB.lock` (flock): one orchestrator, one state database."""

    global_scope = False

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def hold(self, job: str, *, kind: str) -> contextlib.AbstractContextManager[None]:
        return job_lock(self.state_dir, job, kind=kind)


@contextlib.contextmanager
def job_lock(state_dir: Path, job: str, *, kind: str = "run") -> Iterator[None]:
    """Hold `state_dir/locks/JOB.lock` (flock) or raise LockHeld at once."""
    directory = state_dir / "locks"
    path = directory / f"{job}.lock"
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise BackupctlError(f"{job}: cannot open the job lock {path}: "
                             f"{exc.strerror or exc}; check state_dir; nothing was run")\
            from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 128, 0).decode(errors="replace").strip() or "another process"
            raise LockHeld(f"{job}: already running ({holder} holds {path}); nothing was run")\
                from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{kind} pid {os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
