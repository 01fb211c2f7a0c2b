"""What a snapshot holds: its files from `restic ls --json`, with nanosecond mtimes.

The same stream `restic/parse.LsParser` reads, kept compact (regular files only, mtimes as
integer nanoseconds since the epoch) so a listing of many files stays small and the sample,
the free-space check and the full-restore count all come from the snapshot itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_NS = 1_000_000_000
# restic (0.14 to 0.18) shows a byte that is not part of valid UTF-8 as U+FFFD in its JSON:
# such a name is found by its bytes on the source (verify/names.py, manifest.py)
NOT_UTF8 = "\ufffd"


def time_ns(value: str) -> int:
    """restic's RFC 3339 time (`…:16.650610557Z` or `+09:00`) → nanoseconds since the epoch."""
    value = value.replace("Z", "+00:00")
    head, sep, rest = value.partition(".")
    fraction = ""
    if sep:
        fraction = rest[:len(rest) - len(rest.lstrip("0123456789"))]
        head += rest[len(fraction):]
    moment = datetime.fromisoformat(head)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = int(moment.timestamp())
    return seconds * _NS + int((fraction or "0")[:9].ljust(9, "0"))


def ns_iso(ns: int) -> str:
    """Nanoseconds since the epoch → ISO 8601 UTC with 9 fraction digits (lossless)."""
    seconds, rest = divmod(ns, _NS)
    moment = datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    return f"{moment.isoformat(timespec='seconds')}.{rest:09d}+00:00"


@dataclass(frozen=True)
class FileNode:
    path: str
    size: int
    mtime_ns: int


@dataclass
class Listing:
    """Streaming parser of `restic ls --json SNAPSHOT`; feed() chunks, then close()."""

    snapshot_id: str = ""
    snapshot_time: str | None = None
    files: list[FileNode] = field(default_factory=list)
    directories: int = 0
    _rest: bytes = b""

    def feed(self, chunk: bytes) -> None:
        lines = (self._rest + chunk).split(b"\n")
        self._rest = lines.pop()
        for line in lines:
            self._line(line)

    def close(self) -> Listing:
        if self._rest.strip():
            self._line(self._rest)
        self._rest = b""
        self.files.sort(key=lambda f: f.path)
        return self

    def _line(self, line: bytes) -> None:
        if not line.strip().startswith(b"{"):
            return
        obj: dict[str, Any] = json.loads(line)
        if obj.get("struct_type") == "snapshot":
            self.snapshot_id = str(obj.get("id", ""))
            self.snapshot_time = obj.get("time")
        elif obj.get("type") == "file":
            self.files.append(FileNode(path=str(obj["path"]), size=int(obj.get("size", 0)),
                                       mtime_ns=time_ns(str(obj["mtime"]))))
        elif obj.get("type") == "dir":
            self.directories += 1

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def digest(self) -> str:
        """`files_digest` of the snapshot's files: what a full restore must bring back."""
        return files_digest((f.path, f.size) for f in self.files)


def files_digest(files: Iterable[tuple[str, int]]) -> str:
    """SHA-256 of the (path, size) of regular files, in path order, each path as restic lists
    it (names.listed: U+FFFD for bytes that are not UTF-8). Taken of the listing at backup
    time and of the restored tree: equal, every file came back with its size, as restic
    listed it (a manifest's `files_digest_version` 2; version 1 left out the names with
    U+FFFD)."""
    digest = hashlib.sha256()
    for path, size in sorted(files):
        digest.update(json.dumps([path, size], ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()


@dataclass(frozen=True)
class SnapshotRef:
    """A snapshot as `restic snapshots --json` shows it, with its origin when it is a copy."""

    id: str
    short_id: str
    time: str
    original: str | None  # set by `restic copy`: the id in the repository it came from
    tags: tuple[str, ...] = ()


def snapshot_refs(data: bytes) -> list[SnapshotRef]:
    """Snapshots oldest first."""
    items = json.loads(data or b"[]") or []
    refs = [SnapshotRef(id=str(o["id"]), short_id=str(o.get("short_id", str(o["id"])[:8])),
                        time=str(o["time"]), original=o.get("original"),
                        tags=tuple(o.get("tags") or ())) for o in items]
    return sorted(refs, key=lambda r: time_ns(r.time))


def pick(refs: list[SnapshotRef], wanted: str) -> SnapshotRef | None:
    """`latest` or an id (full or any unique prefix)."""
    if not refs:
        return None
    if wanted == "latest":
        return refs[-1]
    found = [r for r in refs if r.id.startswith(wanted)]
    return found[0] if len(found) == 1 else None
