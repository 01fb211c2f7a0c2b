"""Crash recovery on the next start: killed runs are recorded as failed, scratch is wiped."""

from __future__ import annotations

import contextlib
import logging
import shutil
import stat
from pathlib import Path

from backupctl.errors import LockHeld
from backupctl.state.db import Store
from backupctl.state.locks import job_lock

log = logging.getLogger(__name__)


def scratch_leftovers(scratch_dir: Path, job: str) -> list[Path]:
    if not scratch_dir.is_dir():
        return []
    return sorted(p for p in scratch_dir.glob(f"{job}.*") if p.is_dir())


def wipe(path: Path) -> None:
    """Remove a restored tree even where restic restored read-only directories."""

    def fix(func: object, target: str, _exc: object) -> None:
        parent = Path(target).parent
        parent.chmod(parent.stat().st_mode | stat.S_IWUSR | stat.S_IXUSR)
        with contextlib.suppress(OSError):
            Path(target).chmod(0o700)
        if Path(target).is_dir() and not Path(target).is_symlink():
            shutil.rmtree(target, onerror=fix)
        else:
            Path(target).unlink(missing_ok=True)

    if path.exists() or path.is_symlink():
        shutil.rmtree(path, onerror=fix)


def recover(store: Store, *, state_dir: Path, scratch_dir: Path, job: str) -> list[int]:
    """Under the job's lock: mark killed runs interrupted and wipe scratch leftovers.

    Call it while already holding the lock (inside an action), or through `recover_if_idle`.
    """
    stale = store.recover_interrupted(job)
    for run_id in stale:
        log.warning("%s: run %d was interrupted; recorded as failed", job, run_id)
    for leftover in scratch_leftovers(scratch_dir, job):
        log.warning("%s: wiping restore-test leftovers %s", job, leftover)
        wipe(leftover)
    return stale


def recover_if_idle(store: Store, *, state_dir: Path, scratch_dir: Path, job: str) -> None:
    """Recover a job unless a run of it is alive right now (then its lock is held)."""
    try:
        with job_lock(state_dir, job):
            recover(store, state_dir=state_dir, scratch_dir=scratch_dir, job=job)
    except LockHeld:
        pass
