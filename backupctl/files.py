"""Writing files safely: the one atomic writer of the code base.

A reader (node_exporter, systemd, an inspector's viewer) never sees a half-written file: the
data goes to a temporary file made by `mkstemp` in the target's own directory (never a
predictable name another user could plant), is flushed to disk with its final mode, and is
renamed over the target; the directory entry is flushed too.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


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
