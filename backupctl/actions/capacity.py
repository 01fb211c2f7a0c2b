"""Spreading full restore tests: does this orchestrator have the scratch space for one?

With several orchestrators, a full verify whose restore would not fit this orchestrator's
free `scratch_dir` space is skipped here, not failed: the job stays due (nothing was
recorded), and an orchestrator with a larger scratch disk picks it up at its next timer.
The size is the one recorded in the shared state (`state.fleet.restore_size`). When no size
is known yet the test is attempted: the verifier's own free-space check still refuses a
restore that cannot fit, with the numbers.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from backupctl.actions.verify import FREE_SPACE_MARGIN
from backupctl.state import fleet
from backupctl.state.db import Store


@dataclass(frozen=True)
class Fit:
    job: str
    fits: bool
    needed: int | None  # bytes the restore writes; None: not known yet
    free: int  # bytes free in scratch_dir
    reason: str


def decide(*, job: str, needed: int | None, free: int, scratch_dir: Path,
           margin: int = FREE_SPACE_MARGIN) -> Fit:
    """The rule: a known size plus the verifier's margin must fit the free space."""
    if needed is None:
        return Fit(job, True, None, free, f"{job}: restore size not known yet; attempting "
                                          "the full restore test here")
    if needed + margin <= free:
        return Fit(job, True, needed, free, f"{job}: the full restore ({_size(needed)}) fits "
                                            f"scratch_dir {scratch_dir} ({_size(free)} free)")
    return Fit(job, False, needed, free,
               f"{job}: full restore test skipped on this orchestrator: it needs about "
               f"{_size(needed)} (+{_size(margin)} margin) in scratch_dir {scratch_dir}, "
               f"{_size(free)} free; it stays due for an orchestrator with more room")


def free_bytes(scratch_dir: Path) -> int:
    """Free bytes where scratch_dir is (or will be created: its nearest existing parent)."""
    path = scratch_dir
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def restore_fits(store: Store, job: str, *, scratch_dir: Path) -> Fit:
    """Whether the job's full restore test fits this orchestrator's scratch space."""
    with store.read() as conn:
        needed = fleet.restore_size(conn, job)
    return decide(job=job, needed=needed, free=free_bytes(scratch_dir), scratch_dir=scratch_dir)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
