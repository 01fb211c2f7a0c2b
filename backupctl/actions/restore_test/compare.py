"""Comparing what came back with the source manifest and with the snapshot's listing."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from backupctl.actions.restore_test.snapshot import Reference
from backupctl.execute import raise_if_cancelled
from backupctl.state.records import ManifestSummary, Mismatch
from backupctl.verify.hashing import sha256_many
from backupctl.verify.listing import NOT_UTF8, FileNode, files_digest


@dataclass(frozen=True)
class Compared:
    files: int  # files read (hashed) or found (counted)
    bytes: int
    mismatches: tuple[Mismatch, ...]
    ms: int = 0
    unverifiable: tuple[str, ...] = ()


def inside(root: Path, path: str) -> Path:
    """Where restic put an absolute snapshot path under the restore target."""
    return root / path.lstrip("/")


def compare(root: Path, refs: Iterable[Reference]) -> Compared:
    """Hash every reference under `root`: missing, unreadable, size and hash mismatches."""
    started = time.monotonic()
    refs = list(refs)
    files = size = 0
    bad: list[Mismatch] = []
    for ref, digest in zip(refs, sha256_many(inside(root, r.path) for r in refs), strict=True):
        raise_if_cancelled()  # a stop (SIGTERM) must not wait for terabytes of hashing
        if digest.missing:
            bad.append(Mismatch(path=ref.path, expected=ref.sha256, reason="missing"))
        elif digest.error is not None:
            bad.append(Mismatch(path=ref.path, expected=ref.sha256, got=digest.error,
                                reason="unreadable"))
        else:
            files += 1
            size += digest.size or 0
            if digest.size != ref.size:
                bad.append(Mismatch(path=ref.path, expected=f"{ref.size} bytes",
                                    got=f"{digest.size} bytes", reason="size"))
            elif digest.sha256 != ref.sha256:
                bad.append(Mismatch(path=ref.path, expected=ref.sha256, got=digest.sha256,
                                    reason="hash"))
    return Compared(files, size, tuple(bad), round((time.monotonic() - started) * 1000))


def count_all(root: Path, files: Iterable[FileNode]) -> Compared:
    """Every file of the snapshot is there with its size (metadata only, no reads)."""
    count = size = 0
    bad: list[Mismatch] = []
    unverifiable: list[str] = []
    for i, node in enumerate(files):
        if i % 1024 == 0:
            raise_if_cancelled()
        if NOT_UTF8 in node.path:
            unverifiable.append(node.path)
            continue
        try:
            info = inside(root, node.path).lstat()
        except OSError:
            bad.append(Mismatch(path=node.path, expected=f"{node.size} bytes",
                                reason="missing"))
            continue
        if not stat.S_ISREG(info.st_mode):
            bad.append(Mismatch(path=node.path, expected="file", got="not a file",
                                reason="not a file"))
            continue
        count += 1
        size += info.st_size
        if info.st_size != node.size:
            bad.append(Mismatch(path=node.path, expected=f"{node.size} bytes",
                                got=f"{info.st_size} bytes", reason="size"))
    return Compared(count, size, tuple(bad), unverifiable=tuple(unverifiable))


def count_by_digest(root: Path, summary: ManifestSummary | None) -> Compared | None:
    """Every file of the snapshot is there with its size, told by the listing's digest the
    backup recorded (no `restic ls`): the restored tree's regular files, walked without
    following links, must give the same `files_digest`, and as many names that are not
    valid UTF-8. None: it cannot tell (`digest_tells`) or the tree differs; the snapshot's
    listing must then say what is wrong."""
    if summary is None or not digest_tells(summary):
        return None
    files: list[tuple[str, int]] = []
    unverifiable = 0
    try:
        for path, size in _regular_files(root):
            if NOT_UTF8 in path or not _utf8(path):
                unverifiable += 1
            else:
                files.append((path, size))
    except OSError:  # e.g. a directory restored without permissions: the listing tells
        return None
    if unverifiable != summary.unverifiable_count or files_digest(files) != summary.files_digest:
        return None
    return Compared(len(files), sum(size for _, size in files), (),
                    unverifiable=tuple(summary.unverifiable))


def digest_tells(summary: ManifestSummary | None) -> bool:
    """Whether the backup recorded a listing digest `count_by_digest` can use (manifests
    before it have none; more names that are not UTF-8 than it keeps need the listing)."""
    return summary is not None and bool(summary.files_digest) \
        and summary.unverifiable_count <= len(summary.unverifiable)


def _regular_files(root: Path) -> Iterator[tuple[str, int]]:
    """(snapshot path, size) of every regular file under `root`; links are not followed."""
    pending = [(str(root), "")]
    while pending:
        raise_if_cancelled()
        directory, prefix = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    pending.append((entry.path, f"{prefix}/{entry.name}"))
                elif stat.S_ISREG(info.st_mode):
                    yield f"{prefix}/{entry.name}", info.st_size


def _utf8(path: str) -> bool:
    """False for a name read with surrogate escapes (bytes that are not UTF-8)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
