"""Proof freshness (SPEC §12, `verify.prove_within`): how many files a run takes, which ones,
and what a backup writes to keep the state in step with its snapshot.

A file's current content (path, size, mtime in the newest snapshot) is *proven* when a
restore test restored it and its SHA-256 matched the hash taken on the source at backup time.
A run takes at least `share(files, runs)` files: the files divided by the runs its schedule
is sure to give within the window (the window divided by the schedule's longest gap), so
that many runs in a row, however close together, reach every file when each takes the
unproven first and the longest-unproven next (`backup_key`, `proofs.due`).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backupctl.config import calendar
from backupctl.config.schema import Job
from backupctl.config.values import format_duration
from backupctl.state.proofs import Known
from backupctl.verify.listing import FileNode, ns_iso

DAY = 86_400
ITERATIONS = 120  # elapses asked of systemd-analyze: a daily schedule's 4 months
# Fewer runs than this within the window means each run takes over a tenth of the files:
# a quick verify (or a backup's hashing) as heavy as a tenth of a full one. validate warns.
SANE_RUNS = 10
# A name longer than this (UTF-8 bytes) is not tracked but counted unproven: PostgreSQL's
# btree index refuses entries over ~2 700 bytes, and a backup must not fail on its state.
MAX_PATH_BYTES = 2000


def share(files: int, runs: int) -> int:
    """At least this many files per run, so that `runs` runs in a row reach all `files`."""
    if files <= 0:
        return 0
    if runs <= 0:
        return files
    return -(-files // runs)


@dataclass(frozen=True)
class Runs:
    """The runs a schedule is sure to give within a window."""

    count: int
    gap: int | None  # the schedule's longest gap in seconds (None: it does not repeat)
    assumed: bool = False  # systemd-analyze is absent: a daily schedule was assumed


def runs_within(expr: str, window: int, *, base: datetime) -> Runs:
    """How many elapses of `expr` any `window` seconds hold at least: window // longest gap
    (read in this machine's zone, as the timers are)."""
    found = calendar.analyze(expr, iterations=ITERATIONS, base=base, tz=None)
    if found is None:
        return Runs(window // DAY, DAY, assumed=True)
    if not found.ok or len(found.elapses) < 2:
        return Runs(1 if found.ok and found.elapses else 0, None)
    gap = max(int((b - a).total_seconds()) for a, b in itertools.pairwise(found.elapses))
    return Runs(window // gap if gap > 0 else 0, gap)


def identity(node: FileNode) -> tuple[int, str]:
    return node.size, ns_iso(node.mtime_ns)


def same(node: FileNode, known: Known | None) -> bool:
    """Whether the state holds this content of the file (same size and mtime)."""
    return known is not None and (known.size, known.mtime) == identity(node)


def backup_key(node: FileNode, known: Known | None) -> tuple[int, str, str, str]:
    """A backup hashes first the files without a hash of their current content (they can
    never be proven without one), then the unproven, then the longest-unproven."""
    if known is None or known.sha256 is None or not same(node, known):
        return (0, "", "", node.path)
    return (1, known.proven_at or "", known.seen_at, node.path)


def choose_for_backup(pool: Sequence[FileNode], known: Mapping[str, Known], *,
                      take: int) -> list[FileNode]:
    """The `take` files of `pool` a backup hashes (no full sort of a million files)."""
    return heapq.nsmallest(take, pool, key=lambda n: backup_key(n, known.get(n.path)))


@dataclass(frozen=True)
class TreeUpdate:
    """What a backup writes to `proofs`: only new, changed and removed files."""

    remove: list[str] = field(default_factory=list)
    add: list[dict[str, Any]] = field(default_factory=list)
    files: int = 0
    changed: int = 0  # files whose content is new in this snapshot
    untracked: int = 0  # a name restic lists alike (not UTF-8), or too long to index


def tree_update(files: Sequence[FileNode], known: Mapping[str, Known],
                hashed: Mapping[str, tuple[int, str, str]], *, at: str) -> TreeUpdate:
    """Rows to bring `known` to the snapshot `files`. `hashed`: path → (size, mtime,
    sha256) taken on the source by this backup. A new or changed identity, or a hash that
    differs from the one held for the same size and mtime, is unproven again (since `at`)."""
    remove: list[str] = []
    add: list[dict[str, Any]] = []
    changed = untracked = 0
    present: set[str] = set()
    for node in files:
        if node.path in present or (  # names that are not UTF-8, listed alike by restic
                len(node.path) > MAX_PATH_BYTES // 4
                and len(node.path.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES):
            untracked += 1
            continue
        present.add(node.path)
        size, mtime = identity(node)
        old = known.get(node.path)
        fresh = hashed.get(node.path)
        sha = fresh[2] if fresh is not None and fresh[:2] == (size, mtime) else None
        if old is not None and (old.size, old.mtime) == (size, mtime) \
                and (sha is None or sha == old.sha256):
            continue  # unchanged: its row stays as it is
        if old is not None and (old.size, old.mtime) == (size, mtime) and old.sha256 is None:
            row = {"seen_at": old.seen_at, "proven_at": None}  # first hash of this content
        else:
            row = {"seen_at": at, "proven_at": None}
            changed += 1
        if old is not None:
            remove.append(node.path)
        add.append({"path": node.path, "size": size, "mtime": mtime, "sha256": sha, **row})
    remove += [path for path in known if path not in present]
    return TreeUpdate(remove, add, len(files), changed, untracked)


def warnings(job: Job, *, base: datetime) -> list[tuple[list[str | int], str]]:
    """Why the job's schedules cannot meet `verify.prove_within` (`validate` says it), as
    (key, message): a schedule that does not run within the window, or so rarely that each
    run must take over 1/SANE_RUNS of the files, and a read_data_subset it replaces."""
    window = job.verify.prove_within
    if window is None:
        return []
    found: list[tuple[list[str | int], str]] = []
    shown = format_duration(window)
    for key, expr, what in (("backup", job.schedule.backup, "hashes on the source"),
                            ("verify", job.schedule.verify, "restores and hashes")):
        runs = runs_within(expr, window, base=base)
        if runs.assumed:
            continue  # no systemd-analyze: the schedule cannot be read here
        if runs.count == 0:
            found.append((["schedule", key], (
                f"warning: {expr!r} does not run within verify.prove_within {shown}, so "
                "files cannot all be proven in time; run it more often or widen the window")))
        elif runs.count < SANE_RUNS:
            found.append((["schedule", key], (
                f"warning: {expr!r} runs only {runs.count} time(s) within verify.prove_within "
                f"{shown}, so each run {what} 1/{runs.count} of the files (more than "
                f"1/{SANE_RUNS}); run it more often or widen the window")))
    if job.verify.read_data_subset is not None:
        found.append((["verify", "read_data_subset"], (
            "warning: with verify.prove_within, restic check reads pack group n/t in turn "
            "(every pack within the window); read_data_subset is not used")))
    return found
