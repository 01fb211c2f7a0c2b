"""Comparing what came back with the source manifest and with the snapshot's listing."""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from backupctl.actions.restore_test.snapshot import Reference
from backupctl.execute import raise_if_cancelled
from backupctl.state.records import ManifestSummary, Mismatch
from backupctl.verify import names
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
    """Hash every reference under `root` (by its bytes: a name that is not UTF-8 is opened
    as itself): missing, unreadable, size and hash mismatches, named as `names.shown`."""
    started = time.monotonic()
    refs = list(refs)
    files = size = 0
    bad: list[Mismatch] = []
    digests = sha256_many(inside(root, r.on_disk) for r in refs)
    for ref, digest in zip(refs, digests, strict=True):
        raise_if_cancelled()  # a stop (SIGTERM) must not wait for terabytes of hashing
        path = names.shown(ref.on_disk)
        if digest.missing:
            bad.append(Mismatch(path=path, expected=ref.sha256, reason="missing"))
        elif digest.error is not None:
            bad.append(Mismatch(path=path, expected=ref.sha256, got=digest.error,
                                reason="unreadable"))
        else:
            files += 1
            size += digest.size or 0
            if digest.size != ref.size:
                bad.append(Mismatch(path=path, expected=f"{ref.size} bytes",
                                    got=f"{digest.size} bytes", reason="size"))
            elif digest.sha256 != ref.sha256:
                bad.append(Mismatch(path=path, expected=ref.sha256, got=digest.sha256,
                                    reason="hash"))
    return Compared(files, size, tuple(bad), round((time.monotonic() - started) * 1000))


class _Listed:
    """The restored files whose names restic lists with U+FFFD, found by their bytes: each
    directory on the way is read once, its entries keyed by their listed form."""

    def __init__(self, root: Path) -> None:
        self.root = os.fsencode(root)
        self.dirs: dict[bytes, dict[str, list[bytes]]] = {}
        self.taken: set[bytes] = set()

    def _entries(self, directory: bytes) -> dict[str, list[bytes]]:
        if directory not in self.dirs:
            found: dict[str, list[bytes]] = {}
            with contextlib.suppress(OSError):
                for name in os.listdir(self.root + directory or b"/"):
                    found.setdefault(names.lossy(name), []).append(name)
            self.dirs[directory] = found
        return self.dirs[directory]

    def find(self, node: FileNode) -> tuple[str, os.stat_result] | None:
        """The restored file listed as `node` (of its size first, each taken once)."""
        parts = node.path.split("/")
        found = [parts[0].encode()]
        for part in parts[1:]:
            if NOT_UTF8 not in part:
                found = [f + b"/" + part.encode() for f in found]
            else:
                found = [f + b"/" + n for f in found for n in self._entries(f).get(part, ())]
        infos = []
        for candidate in found:
            with contextlib.suppress(OSError):
                if candidate not in self.taken:
                    infos.append((candidate, os.lstat(self.root + candidate)))
        if not infos:
            return None
        infos.sort(key=lambda i: i[1].st_size != node.size)
        self.taken.add(infos[0][0])
        return names.from_bytes(infos[0][0]), infos[0][1]


def count_all(root: Path, files: Iterable[FileNode]) -> Compared:
    """Every file of the snapshot is there with its size (metadata only, no reads); a name
    restic lists with U+FFFD is looked for by its bytes."""
    count = size = 0
    bad: list[Mismatch] = []
    listed = _Listed(root)
    for i, node in enumerate(files):
        if i % 1024 == 0:
            raise_if_cancelled()
        try:
            if NOT_UTF8 in node.path:
                found = listed.find(node)
                if found is None:
                    raise FileNotFoundError(node.path)
                shown, info = names.shown(found[0]), found[1]
            else:
                shown, info = node.path, inside(root, node.path).lstat()
        except OSError:
            bad.append(Mismatch(path=node.path, expected=f"{node.size} bytes",
                                reason="missing"))
            continue
        if not stat.S_ISREG(info.st_mode):
            bad.append(Mismatch(path=shown, expected="file", got="not a file",
                                reason="not a file"))
            continue
        count += 1
        size += info.st_size
        if info.st_size != node.size:
            bad.append(Mismatch(path=shown, expected=f"{node.size} bytes",
                                got=f"{info.st_size} bytes", reason="size"))
    return Compared(count, size, tuple(bad))


def count_by_digest(root: Path, summary: ManifestSummary | None) -> Compared | None:
    """Every file of the snapshot is there with its size, told by the listing's digest the
    backup recorded (no `restic ls`): the restored tree's regular files, walked without
    following links, each name in the form restic lists it (names.listed), must give the
    same `files_digest`. None: it cannot tell (`digest_tells`) or the tree differs; the
    snapshot's listing must then say what is wrong."""
    if summary is None or not digest_tells(summary):
        return None
    try:
        files = [(names.listed(path), size) for path, size in _regular_files(root)]
    except OSError:  # e.g. a directory restored without permissions: the listing tells
        return None
    if files_digest(files) != summary.files_digest:
        return None
    return Compared(len(files), sum(size for _, size in files), (),
                    unverifiable=tuple(summary.unverifiable))


def digest_tells(summary: ManifestSummary | None) -> bool:
    """Whether the backup recorded a listing digest `count_by_digest` can use: manifests
    before it have none, and a digest of version 1 left out the names that are not UTF-8
    (the same digest only when there were none)."""
    return summary is not None and bool(summary.files_digest) and (
        summary.files_digest_version >= 2 or summary.unverifiable_count == 0)


def _regular_files(root: Path) -> Iterator[tuple[str, int]]:
    """(snapshot path, size) of every regular file under `root`; links are not followed;
    names that are not UTF-8 as surrogate escapes (os.scandir of a str)."""
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
