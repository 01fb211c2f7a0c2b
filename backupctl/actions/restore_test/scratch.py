"""Scratch directories for restored data: patient data, so 0700, ours, and always wiped.

`scratch_dir` itself must belong to the user running backupctl and be writable by nobody
else (otherwise another local user could plant a symlink or read what is restored); it is
created 0700 when missing. Leftovers of a killed run (`JOB.MODE-xxxx`) are wiped on the
next start. Wiping never follows a symbolic link: a planted `JOB.quick-x -> /etc` is
removed as a link, and its target is never touched.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Collection
from pathlib import Path

from backupctl import fmt
from backupctl.errors import CommandFailed, ConfigError, Reason
from backupctl.files import wipe as wipe  # the one symlink-safe wipe (also databases/)

FREE_SPACE_MARGIN = 64 << 20


def prepare(base: Path) -> Path:
    """`scratch_dir`, created 0700 if missing; refused (exit 2) if not safe to use."""
    try:
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = base.lstat()
    except OSError as exc:
        raise ConfigError([f"scratch_dir {base}: cannot be created: "
                           f"{exc.strerror or exc}"]) from None
    problem = None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        problem = "is not a directory (a symbolic link is not accepted)"
    elif info.st_uid != os.geteuid():
        problem = (f"is owned by uid {info.st_uid}, not by the user running backupctl "
                   f"(uid {os.geteuid()})")
    elif info.st_mode & 0o022:
        # 0711, not 0700: jobs with databases need the restore user to pass through
        # (databases/account.py), and 0711 is right for every other job too.
        problem = (f"is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
                   f"run: chmod 711 {base} (others may pass through, not list or write: the "
                   "restore user of database restore tests needs to)")
    if problem:
        raise ConfigError([f"scratch_dir {base} {problem}: restored patient data must stay "
                           "private; nothing was restored"])
    return base


def make(base: Path, job: str, mode: str) -> Path:
    """A new, empty 0700 directory `JOB.MODE-xxxx` under `scratch_dir`."""
    path = Path(tempfile.mkdtemp(prefix=f"{job}.{mode}-", dir=prepare(base)))
    path.chmod(0o700)
    return path


def leftovers(base: Path, job: str) -> list[Path]:
    """Entries a killed run of `job` left in `scratch_dir` (never following links)."""
    try:
        return sorted(p for p in base.glob(f"{job}.*") if p.name.startswith(f"{job}."))
    except OSError:
        return []


def wipe_leftovers(base: Path, job: str, *, keep: Collection[Path] = ()) -> list[Path]:
    """Wipe what killed runs left, except `keep` (a throwaway database server's directory
    that could not be stopped: never wiped under a running server)."""
    found = leftovers(base, job) if base.is_dir() and not base.is_symlink() else []
    found = [p for p in found if p not in keep]
    for path in found:
        wipe(path)
    return found


def require_free_space(base: Path, needed: int, *, job: str) -> None:
    """A full restore needs the snapshot's size (+ a margin) free in `scratch_dir`."""
    free = shutil.disk_usage(prepare(base)).free
    if free < needed + FREE_SPACE_MARGIN:
        raise CommandFailed(
            f"{job}: not enough free space in scratch_dir {base} for a full restore: the "
            f"snapshot needs {fmt.size(needed)} (+{fmt.size(FREE_SPACE_MARGIN)} margin), "
            f"{fmt.size(free)} free. Free space there, point scratch_dir at a larger disk, "
            "or use --mode quick; nothing was restored", reason=Reason.SPACE)
