"""Spreading full restore tests: does this orchestrator have the scratch space for one?

With several orchestrators, a full verify whose restore would not fit this orchestrator's
free `scratch_dir` space is skipped here (`verify --mode full --due`), not failed: the job
stays due (nothing was recorded), and an orchestrator with a larger scratch disk picks it up
at its next timer. The size is the one recorded in the shared state (`restore_size`). When
no size is known yet the test is attempted: the restore's own free-space check
(restore_test/scratch.py) still refuses a restore that cannot fit, with the numbers.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from backupctl import fmt
from backupctl.actions.restore_test.scratch import FREE_SPACE_MARGIN
from backupctl.errors import BackupctlError
from backupctl.state import queries
from backupctl.state.db import Store
from backupctl.state.records import BackupDetails, VerifyDetails, read
from backupctl.status import ExitStatus

VERIFY_HISTORY = 50  # verify runs searched for a measured full restore


class NoRoom(BackupctlError):
    """This orchestrator's scratch_dir cannot take the job's full restore: skipped here (the
    command lists it; not an error), the job stays due for another orchestrator."""

    status = ExitStatus.OK


@dataclass(frozen=True)
class Fit:
    job: str
    fits: bool
    needed: int | None  # bytes the restore writes; None: not known yet
    free: int  # bytes free in scratch_dir
    reason: str


def decide(*, job: str, needed: int | None, free: int, scratch_dir: Path,
           margin: int = FREE_SPACE_MARGIN) -> Fit:
    """The rule: a known size plus the restore's margin must fit the free space."""
    if needed is None:
        return Fit(job, True, None, free, f"{job}: restore size not known yet; attempting "
                                          "the full restore test here")
    if needed + margin <= free:
        return Fit(job, True, needed, free,
                   f"{job}: the full restore ({fmt.size(needed)}) fits scratch_dir "
                   f"{scratch_dir} ({fmt.size(free)} free)")
    return Fit(job, False, needed, free,
               f"{job}: full restore test skipped on this orchestrator: it needs about "
               f"{fmt.size(needed)} (+{fmt.size(margin)} margin) in scratch_dir "
               f"{scratch_dir}, {fmt.size(free)} free; it stays due for an orchestrator "
               "with more room")


def free_bytes(scratch_dir: Path) -> int:
    """Free bytes where scratch_dir is (or will be created: its nearest existing parent)."""
    path = scratch_dir
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def restore_size(store: Store, job: str) -> int | None:
    """Bytes a full restore test of the job's latest snapshot will write; None if unknown.

    The newest successful backup's manifest knows the size of the snapshot a scheduled full
    verify restores (whoever made it), and its database dumps are read into scratch_dir too;
    before any such backup, the newest measured full restore is the best guess."""
    backup = store.query(queries.last_run, job, "backup", status="success")
    if backup is not None:
        made = read(BackupDetails, backup.details)
        if made.manifest is not None and made.manifest.bytes_total > 0:
            return made.manifest.bytes_total + sum(d.size or 0 for d in made.databases)
    for run in store.query(queries.recent_runs, job, "verify", limit=VERIFY_HISTORY):
        details = read(VerifyDetails, run.details)
        if run.status in ("success", "bad_data") and details.mode == "full" \
                and details.bytes_restored:
            return details.bytes_restored
    return None


def restore_fits(store: Store, job: str, *, scratch_dir: Path) -> Fit:
    """Whether the job's full restore test fits this orchestrator's scratch space."""
    return decide(job=job, needed=restore_size(store, job), free=free_bytes(scratch_dir),
                  scratch_dir=scratch_dir)


def require_room(store: Store, job: str, *, scratch_dir: Path) -> None:
    """Raise NoRoom unless the job's full restore fits this orchestrator's scratch_dir."""
    fit = restore_fits(store, job, scratch_dir=scratch_dir)
    if not fit.fits:
        raise NoRoom(fit.reason)
