"""The node_exporter textfile: written atomically, refreshed after every per-job command.

A reader (node_exporter) never sees a half file: the exposition is written to a temporary
file in the same directory, flushed to disk, made world-readable, then renamed over the
target. Writers take a lock around read-state-then-write so an older state can never
overwrite a newer one when two commands finish at the same time.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from backupctl.clock import Clock
from backupctl.config.validate import Config
from backupctl.errors import BackupctlError
from backupctl.files import write_atomic
from backupctl.metrics import Source, exposition, invalid_files, notify_channels
from backupctl.state.view import StateReader

log = logging.getLogger(__name__)

TEXTFILE_NAME = "backupctl.prom"


@contextlib.contextmanager
def _locked(lock: Path | None) -> Iterator[None]:
    if lock is None:
        yield
        return
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def write_textfile(source: Source, path: Path, *, lock: Path | None = None) -> bool:
    """Write the exposition to `path`; returns whether the state could be read."""
    with _locked(lock):
        text, state_ok = exposition(source)
        write_atomic(path, text, mode=0o644)  # node_exporter usually runs as another user
    return state_ok


def refresh(config: Config, *, clock: Clock, restic_version: str) -> None:
    """After backup/copy/verify: rewrite `textfile_dir/backupctl.prom` if configured.

    Never changes the command's result: a failure is logged as a warning.
    """
    directory = config.settings.textfile_dir
    if directory is None:
        return
    jobs = [jf.job for _, jf in sorted(config.jobs.items())]
    reader = StateReader(config.settings.effective_database_url)
    try:
        channels, invalid = notify_channels(config), invalid_files(config)
        source = Source(jobs=lambda: jobs, reader=reader, clock=clock,
                        restic_version=restic_version, channels=lambda: channels,
                        invalid=lambda: invalid)
        write_textfile(source, directory / TEXTFILE_NAME,
                       lock=config.settings.state_dir / "textfile.lock")
    except (OSError, BackupctlError) as exc:
        log.warning("metrics: cannot write %s: %s", directory / TEXTFILE_NAME, exc)
    finally:
        reader.close()
