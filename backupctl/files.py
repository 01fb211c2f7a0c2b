"""Writing files safely: the one atomic writer of the code base.

A reader (node_exporter, systemd, an inspector's viewer) never sees a half-written file: the
data goes to a temporary file made by `mkstemp` in the target's own directory (never a
predictable name another user could plant), is flushed to disk with its final mode, and is
renamed over the target; the directory entry is flushed too. `wipe` removes a tree of
restored data without ever following a symbolic link.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# Unlinks at once while wiping: on ext4 most of an unlink is waiting (journal, freeing the
# pages), and a full restore's wipe of 3 GiB took 1.2-1.5 s one file at a time.
WIPE_WORKERS = 4


def write_atomic(path: Path, data: bytes | str, *, mode: int = 0o600,
                 unchanged_ok: bool = False) -> bool:
    """Replace `path` with `data` in one rename; returns False when nothing was written.

    With `unchanged_ok`, a file that already holds exactly `data` is left alone (its mode
    too), so `schedule install` can say "unchanged". The directory must exist: a missing one
    is the caller's to create or to report (a textfile_dir that is not there is a mistake).
    """
    body = data.encode("utf-8") if isinstance(data, str) else data
    if unchanged_ok:
        with contextlib.suppress(OSError):
            if path.read_bytes() == body:
                return False
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True


def wipe(path: Path) -> None:
    """Remove a restored tree, also where restic restored read-only directories."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):  # a file or a link: the entry goes, never its target
        path.unlink()
        return
    _unlink_files(path)

    def fix(_func: Any, target: str, _exc: Any) -> None:
        parent = os.path.dirname(target)
        if not os.path.islink(parent):  # inside the tree rmtree never follows links
            os.chmod(parent, 0o700)
        with contextlib.suppress(FileNotFoundError):
            if os.path.isdir(target) and not os.path.islink(target):
                os.chmod(target, 0o700)
                shutil.rmtree(target, onerror=fix)
            else:
                os.unlink(target)

    shutil.rmtree(path, onerror=fix)


def _unlink_files(path: Path) -> None:
    """Unlink the files and links of a tree, several at a time, directory by directory,
    through the directory's descriptor (`os.fwalk` never follows a link). Best effort:
    what is left (a read-only directory's entries, the directories) `rmtree` removes."""
    with ThreadPoolExecutor(max_workers=WIPE_WORKERS, thread_name_prefix="wipe") as pool:
        for _, _, names, dir_fd in os.fwalk(path):
            size = max(16, -(-len(names) // WIPE_WORKERS))
            for done in [pool.submit(_unlink_in, names[i:i + size], dir_fd)
                         for i in range(0, len(names), size)]:
                done.result()  # the directory's descriptor is open until fwalk moves on


def _unlink_in(names: Sequence[str], dir_fd: int) -> None:
    for name in names:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=dir_fd)
