"""Restoring a snapshot (or the manifest's files of it) into a scratch directory.

A file restic could not restore is a finding (bad data); a restic that could not run, or a
full disk on the orchestrator, is a failure (the data is not proven either way).

restic 0.14's `restore` takes the files to restore only as `--include` arguments (no include
file; that came in 0.17), so the sample's paths are on restic's command line, visible to
local users in `ps` while it runs; scratch_dir and the orchestrator are the admin's own
(docs/verify.md). A name that is not UTF-8 is given as its bytes (restic matches them); the
command line in an error is shown with `names.message`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from backupctl.errors import CommandFailed, ResticError
from backupctl.execute import Runner, tail
from backupctl.restic import commands, parse
from backupctl.restic import run as restic
from backupctl.restic.codes import ResticExit
from backupctl.restic.run import Repo
from backupctl.state.records import Mismatch
from backupctl.verify import names

# restic gets the sample as --include arguments; keep each command line far below ARG_MAX.
INCLUDE_ARGV_BYTES = 1 << 20
# Errors of the restore target itself (errno texts as Go prints them).
_LOCAL_FAILURE = re.compile(r"no space left on device|disk quota exceeded|read-only file system"
                            r"|too many open files", re.IGNORECASE)
_LOW_SPACE = 1 << 20


@dataclass(frozen=True)
class Restored:
    ms: int  # time restic took (the measured restore time)
    problems: tuple[Mismatch, ...]  # files restic could not restore: bad data
    snapshots: frozenset[str]  # short ids restic says it restored (resolves `latest`)
    invocations: int


def restore(runner: Runner, repo: Repo, target: Path, *, job: str, snapshot: str,
            includes: list[str] | None = None, latest_of_host: bool = False,
            files_only: bool = False, timeout: float) -> Restored:
    """`restic restore` of `snapshot` (all of it, or `includes` in chunks) into `target`.

    With `latest_of_host`, `snapshot` is `latest` and restic resolves it among the job's
    snapshots itself (`files_only`: among its file snapshots, never a database dump's);
    the snapshot it restored is in `Restored.snapshots`."""
    seconds = 0.0
    problems: list[Mismatch] = []
    restored: set[str] = set()
    runs = 0
    for chunk in _chunks(includes) if includes is not None else [None]:
        argv = commands.restore(repo.url, repo.password, snapshot=snapshot, target=str(target),
                                include=chunk, host=job if latest_of_host else None,
                                tags=[commands.FILES_TAG] if latest_of_host and files_only
                                else ())
        result, outcome = restic.attempt(runner, argv, timeout=timeout, unlock=repo)
        runs += 1
        restored |= parse.restored_snapshots(result.stdout)
        seconds += result.duration
        if outcome is ResticExit.OK:
            continue
        errors = _restore_errors(result.stderr)
        local = _local_failure(target, result.stderr) if not result.ok or errors else None
        if local:
            raise CommandFailed(
                f"{job}: restoring into scratch_dir {target.parent} failed on the "
                f"orchestrator ({local}); the data is not proven. Free space/inodes there or "
                f"point scratch_dir at a larger disk {names.message(result.describe())}")
        if outcome is ResticExit.FATAL and not result.timed_out and errors:
            problems += [Mismatch(path=path, got=message, reason="restore error")
                         for path, message in errors]
            continue
        raise ResticError(f"{job}: restic restore from {repo.name} failed ({outcome.value}) "
                          f"{names.message(result.describe())}" + restic.hint(job, outcome),
                          reason=restic.reason_of(result, outcome))
    return Restored(round(seconds * 1000), tuple(problems), frozenset(restored), runs)


def _chunks(paths: list[str]) -> Iterator[list[str]]:
    """--include lists whose command line stays below INCLUDE_ARGV_BYTES."""
    chunk: list[str] = []
    used = 0
    for path in paths:
        cost = len(os.fsencode(commands.escape_glob(path))) + len("--include") + 2
        if chunk and used + cost > INCLUDE_ARGV_BYTES:
            yield chunk
            chunk, used = [], 0
        chunk.append(path)
        used += cost
    if chunk:
        yield chunk


def _local_failure(target: Path, stderr: str) -> str | None:
    """Why the restore target itself failed (disk full, read-only, ...), or None.

    restic prints one error per file and only the tail of stderr is kept, so a full disk
    is also recognised from the file system itself."""
    found = _LOCAL_FAILURE.search(stderr)
    if found:
        return found.group(0)
    try:
        fs = os.statvfs(target)
    except OSError:
        return None
    if fs.f_bavail * fs.f_frsize < _LOW_SPACE:
        return "no space left on device"
    if fs.f_files and not fs.f_favail:
        return "no space left on device (no free inodes)"
    return None


def _restore_errors(stderr: str) -> list[tuple[str, str]]:
    """(path, message) of restic 0.14's `ignoring error for PATH: MESSAGE` lines."""
    found = []
    for line in stderr.splitlines():
        if line.startswith("ignoring error for "):
            path, _, message = line.removeprefix("ignoring error for ").rpartition(": ")
            found.append((path or line, message))
    if not found and "There were" in stderr and "errors" in stderr:
        found.append(("restore", tail(stderr, 5)))
    return found
