"""Source manifest: SHA-256 of chosen files on the source host, right after each backup.

PLACEHOLDER (issue #4 builds it): `build` returns None until then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backupctl.actions.context import Context
from backupctl.config.schema import Job
from backupctl.execute import Runner


@dataclass(frozen=True)
class Manifest:
    snapshot_id: str
    entries: list[dict[str, Any]] = field(default_factory=list)

    def rows(self, job: str) -> list[dict[str, Any]]:
        return [{"job": job, "snapshot_id": self.snapshot_id, **e} for e in self.entries]

    def summary(self) -> dict[str, Any]:
        return {"files": len(self.entries)}


def build(ctx: Context, job: Job, runner: Runner, *, snapshot_id: str) -> Manifest | None:
    return None
