"""Offline media: which disk holds a copy, and whether it is attached right now.

`backupctl media init JOB COPY` writes a label file `.backupctl-medium.json` (a random
label) in the directory that holds the copy's repository, i.e. on the medium itself, and
records it with the filesystem UUID (`findmnt`) in the `media` table. Disks in rotation
each get their own label; several jobs on one disk share its label. Every copy records the
label it found, so the report can say which disk holds which snapshots and when each disk
was last attached.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from backupctl.actions.context import Context
from backupctl.actions.probe import is_local_path, local_path
from backupctl.actions.results import status_fields
from backupctl.config.schema import Copy, Job
from backupctl.errors import BackupctlError, UsageError
from backupctl.execute import Runner
from backupctl.files import write_atomic
from backupctl.state import queries
from backupctl.state.records import Medium as MediumRecord
from backupctl.status import ExitStatus

LABEL_FILE = ".backupctl-medium.json"


class NotAttached(BackupctlError):
    """An offline copy's medium is not there (disk unplugged, NAS off): this copy fails."""


@dataclass(frozen=True)
class Medium:
    label: str | None  # None: a local path without a label file (not initialised)
    fs_uuid: str | None
    path: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def record(self) -> MediumRecord:
        return MediumRecord(label=self.label, fs_uuid=self.fs_uuid, path=self.path)


def label_file(copy: Copy) -> Path:
    return local_path(copy.url).parent / LABEL_FILE


def read_label(copy: Copy) -> str | None:
    try:
        data = json.loads(label_file(copy).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    label = data.get("label") if isinstance(data, dict) else None
    return str(label) if label else None


def fs_uuid(runner: Runner, path: Path) -> str | None:
    """The UUID of the filesystem holding `path` (None where it has none, e.g. tmpfs)."""
    result = runner.run(["findmnt", "-n", "-o", "UUID", "--target", str(path)], timeout=30)
    value = result.stdout.decode(errors="replace").strip() if result.ok else ""
    return value or None


def attached(ctx: Context, job: Job, copy: Copy) -> Medium:
    """The medium holding a local offline copy, or NotAttached with what to do."""
    path = local_path(copy.url)
    if not path.is_dir():
        raise NotAttached(
            f"{job.name}: copy {copy.name}: medium not attached: {path} does not exist "
            "(USB disk not connected or not mounted, NAS powered off?). Attach the medium "
            f"and run: backupctl copy {job.name}")
    label = read_label(copy)
    if label is None and not (path / "config").exists():
        raise NotAttached(
            f"{job.name}: copy {copy.name}: medium not attached: {path} holds no restic "
            f"repository and no backupctl medium label ({label_file(copy)}). If this is a "
            f"new disk, run: backupctl media init {job.name} {copy.name} && "
            f"backupctl init {job.name} --copies")
    return Medium(label, fs_uuid(ctx.local, path), str(path))


def seen(ctx: Context, job: Job, copy: Copy, medium: Medium) -> None:
    """Record that the medium was attached now (registering a label made elsewhere)."""
    if medium.label is None:
        return
    with ctx.store.transaction() as conn:
        queries.medium_seen(conn, job.name, copy.name, label=medium.label,
                            fs_uuid=medium.fs_uuid, at=ctx.store.now())


def known(ctx: Context, job: str, copy: str) -> list[dict[str, Any]]:
    """Media recorded for a copy, most recently attached first (for status/reports)."""
    return [asdict(m) for m in ctx.store.query(queries.media_of, job, copy)]


@dataclass(frozen=True)
class MediaResult:
    job: str
    status: ExitStatus
    error: str | None = None
    copy: str = ""
    label: str | None = None
    fs_uuid: str | None = None
    label_file: str | None = None
    created: bool = False
    kind: str = "media"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), **status_fields(self.status)}


def init(ctx: Context, job: Job, copy_name: str) -> MediaResult:
    """Label the medium of an offline copy (idempotent: an existing label is kept)."""
    try:
        copy = job.copy_named(copy_name)
    except KeyError:
        raise UsageError(f"{job.name}: no copy named {copy_name!r}") from None
    if copy.kind != "offline" or not is_local_path(copy.url):
        raise UsageError(f"{job.name}: copy {copy.name} is not an offline copy on a local path "
                         "(media labels are for removable disks and mounted NAS shares)")
    where = label_file(copy)
    if not where.parent.is_dir():
        raise NotAttached(f"{job.name}: copy {copy.name}: medium not attached: {where.parent} "
                          "does not exist; attach and mount the medium first")
    label = read_label(copy)
    created = label is None
    if label is None:
        label = f"backupctl-{secrets.token_hex(4)}"
        body = {"label": label, "created_at": ctx.store.now(),
                "note": "backupctl offline medium label; do not delete"}
        write_atomic(where, json.dumps(body, indent=2) + "\n", mode=0o644)
    medium = Medium(label, fs_uuid(ctx.local, where.parent), str(where.parent))
    seen(ctx, job, copy, medium)
    return MediaResult(job.name, ExitStatus.OK, None, copy.name, label, medium.fs_uuid,
                       str(where), created)
