"""Reading a dump back out of the repository, and the findings of a proof as it is built.

`read_dump` streams `restic dump` of the dump's snapshot (into a scratch file, or nowhere),
hashing it on the way; `judge_read` says what a read means: the recorded bytes, bad data
(restic read damaged data, or the dump's snapshot is gone), or not proven (restic could not
read at all). `Draft` is a DatabaseProof under construction (the kinds' proofs).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from backupctl.databases import compare
from backupctl.databases.model import DumpManifest
from backupctl.databases.redact import redact
from backupctl.execute import Result, Runner, Secret
from backupctl.restic import commands as restic
from backupctl.restic import parse
from backupctl.restic.codes import ResticExit, classify
from backupctl.restic.watch import RetryWatch
from backupctl.state.database_proof import DatabaseCheck, DatabaseProof, SchemaMismatch, TableCount

FREE_SPACE_MARGIN = 64 << 20
_UNREACHABLE = (ResticExit.NO_REPOSITORY, ResticExit.WRONG_PASSWORD, ResticExit.LOCKED)


@dataclass
class Draft:
    """A DatabaseProof under construction: the proof's own fields by the same names, filled
    in step by step, frozen by `done()`; the rest comes from the manifest."""

    manifest: DumpManifest
    mode: Literal["quick", "full"]
    snapshot_id: str
    sha256_match: bool | None = None
    read_error: str | None = None
    tables_checked: int = 0
    rows_restored: int = 0
    mismatches: list[TableCount] = field(default_factory=list)
    checks: list[DatabaseCheck] = field(default_factory=list)
    restore_ms: int | None = None
    timings_ms: dict[str, int] = field(default_factory=dict)
    local_version: str | None = None
    problems: list[str] = field(default_factory=list)
    not_proven: str | None = None
    schema_checked: int | None = None
    schema_mismatches: list[SchemaMismatch] = field(default_factory=list)
    schema_note: str | None = None
    restore_error: str | None = None

    def take_schema(self, found: compare.SchemaComparison) -> None:
        """The schema fingerprint's comparison (compare.judge_schema) into the proof."""
        self.schema_checked, self.schema_note = found.checked, found.note
        self.schema_mismatches = list(found.mismatches)

    def done(self) -> DatabaseProof:
        drafted = {f.name: copy.copy(getattr(self, f.name)) for f in dataclasses.fields(self)
                   if f.name != "manifest"}
        m = self.manifest
        return DatabaseProof(name=m.database, kind=m.kind, rows_expected=m.rows, **drafted)


@dataclass(frozen=True)
class Read:
    """The outcome of reading a dump out of the repository."""

    sha256: str | None
    size: int
    result: Result


def read_dump(runner: Runner, manifest: DumpManifest, draft: Draft, *, repo_url: str,
              password: Secret, timeout: float | None, target: Path | None) -> bool:
    """`restic dump` into `target` (or nowhere), hashed on the way; compares the SHA-256.

    True when the bytes are the recorded ones; otherwise the draft says why (bad data when
    restic read damaged data or other bytes, not proven when it could not read at all).
    """
    digest = hashlib.sha256()
    size = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600) if target else None

    def sink(chunk: bytes) -> None:
        nonlocal size
        digest.update(chunk)
        size += len(chunk)
        if fd is not None:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]

    try:
        result = runner.run(restic.dump(repo_url, password, snapshot=draft.snapshot_id,
                                        path=manifest.path), timeout=timeout, stdout_sink=sink,
                            stderr_watch=RetryWatch())
    finally:
        if fd is not None:
            os.close(fd)
    return judge_read(manifest, draft, Read(digest.hexdigest(), size, result))


def judge_read(manifest: DumpManifest, draft: Draft, read: Read) -> bool:
    result = read.result
    if not result.ok:
        outcome = (ResticExit.FATAL if result.timed_out
                   else classify(result.returncode, result.stderr))
        detail = redact(parse.plain_stderr(result.stderr), lines=3) or (
            "timed out" if result.timed_out else f"exit {result.returncode}")
        # restic 0.14 exits 2 (not in its table) when a blob does not decrypt: the stderr
        # text, not the code, tells damage from a repository it could not open.
        readable = not result.timed_out and outcome not in _UNREACHABLE
        if readable and compare.snapshot_gone(result.stderr):
            # the backup recorded this snapshot in this repository: deleted since
            draft.sha256_match, draft.read_error = False, (
                f"its snapshot {draft.snapshot_id[:8]} is not in the repository (deleted "
                "outside backupctl?)")
        elif readable and compare.restic_read_damaged(result.stderr):
            draft.sha256_match, draft.read_error = False, detail
        else:
            draft.not_proven = (f"restic could not read {manifest.path} of snapshot "
                                f"{draft.snapshot_id} ({outcome.value}): {detail}")
        return False
    draft.sha256_match = read.sha256 == manifest.sha256 and read.size == manifest.size
    return draft.sha256_match


def enough_space(scratch_dir: Path, manifest: DumpManifest, draft: Draft) -> bool:
    scratch_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    free = shutil.disk_usage(scratch_dir).free
    if free < manifest.size + FREE_SPACE_MARGIN:
        draft.not_proven = (f"not enough free space in scratch_dir {scratch_dir} for the dump "
                            f"of {manifest.database} ({manifest.size} bytes + 64 MiB margin, "
                            f"{free} free)")
        return False
    return True


