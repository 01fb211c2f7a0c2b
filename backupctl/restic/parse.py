"""Parsers for restic's JSON output."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class BackupSummary:
    snapshot_id: str
    files_new: int
    files_changed: int
    files_unmodified: int
    data_added: int
    total_files: int
    total_bytes: int
    duration: float
    # Since the `dirs_*` counts and what only restic 0.17+ prints (the full id and the
    # snapshot's time): actions/unchanged.py tells from them that no file changed.
    dirs: int = 0  # directories new, changed and unmodified
    full_id: str | None = None  # 0.17+: the snapshot's whole id (0.14 prints 8 digits)
    started: str | None = None  # 0.17+: `backup_start`, which restic gives the snapshot


@dataclass
class BackupOutput:
    summary: BackupSummary | None = None
    errors: list[str] = field(default_factory=list)  # "PATH: what went wrong", per file
    missing: list[str] = field(default_factory=list)  # source paths restic skipped


def plain_stderr(stderr: str) -> str:
    """restic's stderr as a person reads it: with `--json`, restic 0.17+ ends a failed run
    with `{"message_type":"exit_error","code":12,"message":"Fatal: wrong password …"}`
    where 0.14 printed the message itself; that line becomes its message."""
    lines = []
    for line in stderr.splitlines():
        if line.lstrip().startswith("{") and '"exit_error"' in line:
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if isinstance(obj, dict) and obj.get("message_type") == "exit_error":
                lines.append(str(obj.get("message", "")).rstrip("\n"))
                continue
        lines.append(line)
    return "\n".join(lines)


def short_id(snapshot_id: str) -> str:
    """The snapshot a `backup --json` summary names, as backupctl records it: restic 0.14
    prints the short id (`4a04c7b9`), 0.17+ the full one; both become the short form, so a
    run's records read the same whichever version made the snapshot (ids are matched by
    prefix everywhere)."""
    return snapshot_id[:8]


def full_id(value: object) -> str | None:
    """A snapshot's whole id (64 hex digits), or None when `value` is not one."""
    text = str(value or "")
    return text if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else None


# restic 0.14 skips a source path that does not exist with only this warning and exit 0.
_MISSING = re.compile(r"^(?P<path>/.*) does not exist, skipping$")


def _json_lines(data: bytes) -> Iterator[dict[str, Any]]:
    for line in data.splitlines():
        line = line.strip()
        if not line.startswith(b"{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            yield obj


# Go's texts of errno values ("input/output error") → the number (os.strerror's words).
_ERRNO = {os.strerror(n).lower(): n for n in range(1, 134)}


def _message_text(item: str, message: str) -> str:
    """restic 0.17+'s error message in 0.14's words, so a file's failure reads the same
    whichever version backed it up: `failed to save /x: read /x: input/output error` →
    `/x: read failed: Input/output error (errno 5)`."""
    rest = message.removeprefix(f"failed to save {item}: ")
    op, sep, reason = rest.partition(f" {item}: ")
    if not sep or not op.isalpha():
        return f"{item}: {message}"
    errno = _ERRNO.get(reason.strip().lower())
    if errno is None:
        return f"{item}: {op} failed: {reason}"
    return f"{item}: {op} failed: {os.strerror(errno)} (errno {errno})"


def _error_text(obj: dict[str, Any]) -> str:
    """One per-file error of `restic backup --json` as `PATH: reason`.

    restic 0.14 writes them to stderr as `{"message_type": "error", "error": {"Op": "read",
    "Path": "/x", "Err": 5}, "during": "archival", "item": "/x"}` (a Go *os.PathError);
    0.17+ to stdout as `{"message_type": "error", "error": {"message": "failed to save /x:
    read /x: input/output error"}, "item": "/x", …}`.
    """
    error = obj.get("error")
    item = obj.get("item") or (error.get("Path") if isinstance(error, dict) else None) or "?"
    if isinstance(error, dict):
        if error.get("message"):
            return _message_text(str(item), str(error["message"]))
        op = error.get("Op") or obj.get("during") or "error"
        errno = error.get("Err")
        if isinstance(errno, int):
            return f"{item}: {op} failed: {os.strerror(errno)} (errno {errno})"
        return f"{item}: {op} failed"
    if error:
        return f"{item}: {error}"
    return f"{item}: {obj.get('during') or 'error'}"


def backup_output(data: bytes, stderr: str = "") -> BackupOutput:
    """The summary, per-file errors and skipped paths of `restic backup --json`.

    `stderr` is where restic 0.14 writes the error objects and the skipped-path warnings.
    """
    out = BackupOutput()
    for line in stderr.splitlines():
        if (match := _MISSING.match(line.strip())):
            out.missing.append(match.group("path"))
    for obj in [*_json_lines(data), *_json_lines(stderr.encode())]:
        kind = obj.get("message_type")
        if kind == "summary":
            out.summary = BackupSummary(
                snapshot_id=short_id(str(obj.get("snapshot_id", ""))),
                files_new=int(obj.get("files_new", 0)),
                files_changed=int(obj.get("files_changed", 0)),
                files_unmodified=int(obj.get("files_unmodified", 0)),
                data_added=int(obj.get("data_added", 0)),
                total_files=int(obj.get("total_files_processed", 0)),
                total_bytes=int(obj.get("total_bytes_processed", 0)),
                duration=float(obj.get("total_duration", 0.0)),
                dirs=sum(int(obj.get(f"dirs_{k}", 0)) for k in ("new", "changed",
                                                                  "unmodified")),
                full_id=full_id(obj.get("snapshot_id")),
                started=str(obj["backup_start"]) if obj.get("backup_start") else None)
        elif kind == "error":
            out.errors.append(_error_text(obj))
    return out


@dataclass(frozen=True)
class Snapshot:
    id: str
    short_id: str
    time: datetime
    hostname: str
    paths: tuple[str, ...]
    tags: tuple[str, ...]


def parse_time(value: str) -> datetime:
    """restic's RFC 3339 times carry nanoseconds; Python takes microseconds."""
    value = value.replace("Z", "+00:00")
    head, sep, rest = value.partition(".")
    if sep:
        digits = rest[:len(rest) - len(rest.lstrip("0123456789"))]
        zone = rest[len(digits):]
        value = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    return datetime.fromisoformat(value)


def _snapshot(obj: dict[str, Any]) -> Snapshot:
    return Snapshot(id=str(obj["id"]), short_id=str(obj.get("short_id", obj["id"][:8])),
                    time=parse_time(str(obj["time"])), hostname=str(obj.get("hostname", "")),
                    paths=tuple(obj.get("paths") or ()), tags=tuple(obj.get("tags") or ()))


def snapshots(data: bytes) -> list[Snapshot]:
    items = json.loads(data or b"[]")
    return sorted((_snapshot(o) for o in items or []), key=lambda s: s.time)


def forget_kept(data: bytes) -> list[Snapshot] | None:
    """The snapshots `restic forget --json` kept, over every group, oldest first; None when
    its output holds no JSON list of groups (then list the snapshots instead).

    With `--prune`, restic prints the groups as one JSON line, then prune's text."""
    for line in data.splitlines():
        if not line.lstrip().startswith(b"["):
            continue
        try:
            groups = json.loads(line)
            kept = [_snapshot(s) for g in groups or [] for s in g.get("keep") or []]
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        return sorted(kept, key=lambda s: s.time)
    return None


# `restic restore` first names the snapshot it restores (on stdout): 0.14–0.16
# `restoring <Snapshot 1a2b3c4d of [/srv] at … by root@host> to /t`, 0.17 and later
# `restoring snapshot 1a2b3c4d of [/srv] at … by root@host to /t`.
_RESTORING = re.compile(rb"^restoring (?:<Snapshot|snapshot) ([0-9a-f]{8}) of ", re.MULTILINE)


def restored_snapshots(stdout: bytes) -> set[str]:
    """The short ids of the snapshots `restic restore` says it restored."""
    return {m.decode() for m in _RESTORING.findall(stdout)}


@dataclass(frozen=True)
class Node:
    path: str
    type: str
    size: int
    mtime: datetime


class LsParser:
    """Streaming parser for `restic ls --json` (one JSON object per line)."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None
        self.nodes: list[Node] = []
        self._rest = b""

    def feed(self, chunk: bytes) -> None:
        lines = (self._rest + chunk).split(b"\n")
        self._rest = lines.pop()
        for line in lines:
            self._line(line)

    def close(self) -> None:
        if self._rest:
            self._line(self._rest)
            self._rest = b""

    def _line(self, line: bytes) -> None:
        if not line.strip():
            return
        obj = json.loads(line)
        if obj.get("struct_type") == "snapshot":
            self.snapshot = _snapshot(obj)
        elif obj.get("struct_type") == "node" or "type" in obj:
            self.nodes.append(Node(path=obj["path"], type=obj["type"],
                                   size=int(obj.get("size", 0)),
                                   mtime=parse_time(obj["mtime"])))


def version(text: str) -> str:
    """`restic 0.14.0 compiled with ...` → `0.14.0`."""
    parts = text.split()
    return parts[1] if len(parts) > 1 and parts[0] == "restic" else "unknown"
