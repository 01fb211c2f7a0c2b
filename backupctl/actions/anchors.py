"""Anchoring the evidence chain in immutable copies, and reading the anchors back.

After each copy to an immutable copy the records written since that copy's newest anchor
are stored in it (evidence/anchor.py); `evidence verify --db --against COPY` compares the
database with every anchor a copy holds.
"""

from __future__ import annotations

from backupctl.actions import repo as repos
from backupctl.actions.context import Context
from backupctl.config.schema import Copy, Job
from backupctl.errors import UsageError
from backupctl.evidence import anchor, chain


def push(ctx: Context, job: Job, copy: Copy) -> str:
    """Store the records since the copy's newest anchor in it; what was done (a step)."""
    repo = repos.named(job, copy.name)
    stored = anchor.stored_in(ctx.local, repo, timeout=ctx.timeout)
    last = max((s.last for s in stored), default=0)
    with ctx.store.read() as conn:
        todo = list(chain.entries(conn, after=last))
    if not todo:
        return f"evidence: {copy.name} already holds the chain up to seq {last}"
    anchor.store(ctx.local, repo, todo, timeout=ctx.timeout)
    return (f"evidence: records seq {todo[0].seq}–{todo[-1].seq} stored in {copy.name} "
            f"(head {todo[-1].hash[:16]}…)")


def anchored_copies(ctx: Context, name: str) -> list[tuple[str, list[anchor.Stored]]]:
    """The anchors held by every immutable copy called `name` (or `JOB:COPY`)."""
    found = []
    for jf in sorted(ctx.config.jobs.values(), key=lambda j: j.job.name):
        for copy in jf.job.copies:
            if copy.kind == "immutable" and name in (copy.name, f"{jf.job.name}:{copy.name}"):
                repo = repos.named(jf.job, copy.name)
                found.append((f"{jf.job.name}:{copy.name}",
                              anchor.stored_in(ctx.local, repo, timeout=ctx.timeout)))
    if not found:
        names = sorted({f"{jf.job.name}:{c.name}" for jf in ctx.config.jobs.values()
                        for c in jf.job.copies if c.kind == "immutable"})
        raise UsageError(f"--against {name}: no immutable copy of that name (have: "
                         f"{', '.join(names) or 'none'})")
    return found
