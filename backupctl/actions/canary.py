"""`backupctl canary init JOB`: place canary files with known random content on the source.

Each path of `verify.canaries` is (over)written on the job's host through the Runner
(`tee -- PATH` with the content on stdin: no shell, the path is one quoted argument), read
back with `sha256sum`, and its hash recorded in the `canaries` table. Ransomware that
encrypts or deletes a canary trips the wire at the next backup (actions/tripwire.py).
Running it again re-arms the canaries with new content (e.g. after `backupctl clear`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from backupctl.actions import tripwire
from backupctl.actions.context import Context
from backupctl.actions.results import status_fields
from backupctl.config.schema import Job
from backupctl.errors import CommandFailed, UsageError
from backupctl.state import queries
from backupctl.status import ExitStatus


@dataclass(frozen=True)
class CanaryResult:
    job: str
    status: ExitStatus
    error: str | None = None
    canaries: list[dict[str, Any]] = field(default_factory=list)
    kind: str = "canary"

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "kind": self.kind, **status_fields(self.status),
                "error": self.error, "canaries": self.canaries}


def content(job: str, path: str) -> bytes:
    """A plausible-looking document with unguessable content."""
    return (f"backupctl canary file of job {job}: do not modify, move or delete it.\n"
            "backupctl のカナリアファイルです。変更・移動・削除しないでください。\n"
            f"{path}\n{secrets.token_hex(2048)}\n").encode()


def init(ctx: Context, job: Job) -> CanaryResult:
    if not job.verify.canaries:
        raise UsageError(f"{job.name}: the job declares no verify.canaries")
    with ctx.job_locks.hold(job.name, kind="canary"):
        runner = ctx.runner(job)
        try:
            written: dict[str, bytes] = {}
            for path in job.verify.canaries:
                body = content(job.name, path)
                result = runner.run(["tee", "--", path], stdin=body, timeout=ctx.timeout)
                if not result.ok:
                    raise CommandFailed(f"{job.name}: cannot write canary {path} "
                                        f"{result.describe()}")
                written[path] = body
            found = tripwire.hash_on_host(runner, list(written), timeout=ctx.timeout,
                                          job=job.name)
        finally:
            runner.close()
    rows = []
    for path, body in written.items():
        digest = hashlib.sha256(body).hexdigest()
        if found.get(path) != digest:
            raise CommandFailed(f"{job.name}: canary {path} reads back as {found.get(path)} "
                                f"instead of {digest}: nothing recorded")
        rows.append({"path": path, "sha256": digest, "size": len(body),
                     "created_at": ctx.store.now()})
    with ctx.store.transaction() as conn:
        queries.replace_canaries(conn, job.name, rows)
    return CanaryResult(job.name, ExitStatus.OK, None,
                        [{k: r[k] for k in ("path", "sha256", "size")} for r in rows])
