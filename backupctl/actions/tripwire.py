"""Ransomware tripwires: canaries and changed-file spikes; a raised flag freezes pruning.

PLACEHOLDER (issue #5 builds the checks): `inspect` finds nothing until then;
`frozen_reason` already honours raised flags.
"""

from __future__ import annotations

from sqlalchemy import select

from backupctl.actions.context import Context
from backupctl.config.schema import Job
from backupctl.restic.parse import BackupSummary
from backupctl.state.schema import flags
from backupctl.verify.manifest import Manifest


def inspect(ctx: Context, job: Job, summary: BackupSummary,
            manifest: Manifest | None) -> list[str]:
    """Reasons this backup looks like ransomware at work (empty: none)."""
    return []


def frozen_reason(ctx: Context, job: Job) -> str | None:
    """Why pruning is frozen for the job (an uncleared suspicious flag), or None."""
    with ctx.store.read() as conn:
        row = conn.execute(select(flags).where(
            flags.c.job == job.job, flags.c.name == "suspicious",
            flags.c.cleared_at.is_(None)).order_by(flags.c.id)).first()
    return f"suspicious since {row.raised_at}: {row.reason}" if row else None
