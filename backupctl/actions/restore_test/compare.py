"""Comparing what came back with the source manifest and with the snapshot's listing."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from backupctl.actions.restore_test.snapshot import Reference
from backupctl.state.records import Mismatch
from backupctl.verify.hashing import sha256_many
from backupctl.verify.listing import FileNode

# restic 0.14 shows a name that is not valid UTF-8 with U+FFFD in its JSON: such a file
# cannot be found under that name, so it is listed as not verifiable, never as missing.
NOT_UTF8 = "\ufffd"


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
    for node in files:
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
