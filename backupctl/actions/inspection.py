"""The backup's look at its new snapshot: the listing (the kept one when restic found nothing
changed against the parent, actions/unchanged.py; else `restic ls`), the source manifest
(reusing the hashes taken beside `restic backup` where they still stand), the ransomware
tripwires, and what proof freshness records of the snapshot's files."""

from __future__ import annotations

from dataclasses import dataclass

from backupctl.actions import repo as repos
from backupctl.actions import tripwire, unchanged
from backupctl.actions.context import Context
from backupctl.actions.restore_test import freshness
from backupctl.actions.restore_test.pipeline import list_snapshot
from backupctl.config.schema import Job
from backupctl.errors import BackupctlError
from backupctl.execute import Runner
from backupctl.restic import parse
from backupctl.state import queries
from backupctl.verify import manifest
from backupctl.verify.freshness import TreeUpdate
from backupctl.verify.listing import Listing


@dataclass(frozen=True)
class Inspected:
    """The new snapshot looked at: its time, its source manifest, tripwire signs."""

    snapshot_time: str | None
    manifest: manifest.Manifest | None
    suspicious: tuple[str, ...]
    frozen: str | None  # why pruning is frozen (a tripwire raised now or earlier)
    tree: TreeUpdate | None = None  # verify.prove_within: the snapshot's files for `proofs`
    listing: Listing | None = None  # kept after a successful run (actions/unchanged.py)
    kept: bool = False  # the listing is the parent's: restic found nothing changed


@dataclass(frozen=True)
class Sampling:
    """How the manifest chooses its files (the rotation's memory, proof freshness): read
    from the state once, before the backup, for the early hashing and the manifest."""

    history: manifest.History
    prepared: freshness.Prepared | None

    @classmethod
    def of(cls, ctx: Context, job: Job) -> Sampling:
        return cls(lambda window: ctx.store.query(queries.sampled_before, job.name,
                                                  window=window), freshness.prepare(ctx, job))

    def choose(self) -> manifest.Chooser | None:
        return self.prepared.chooser() if self.prepared else None


def hash_early(ctx: Context, job: Job, runner: Runner, parent: unchanged.Parent | None,
               sampling: Sampling) -> unchanged.Early | None:
    """With a kept listing: the files the manifest will choose, hashed beside the backup."""
    if parent is None:
        return None
    try:
        selection = manifest.select(job, parent.kept, history=sampling.history,
                                    host=runner.host, choose=sampling.choose())
    except BackupctlError:
        return None  # e.g. a `verify.always` path gone: the manifest says so after the listing
    return unchanged.Early(runner, selection, job=job.name, timeout=ctx.timeout)


def inspect(ctx: Context, job: Job, runner: Runner, summary: parse.BackupSummary,
            sampling: Sampling, *, parent: unchanged.Parent | None = None,
            early: unchanged.Early | None = None) -> Inspected:
    """The snapshot's listing (and time): the kept one when restic found nothing changed
    against `parent`, else `restic ls`; its source manifest (reusing the hashes taken
    `early` where they stand), the ransomware tripwires."""
    kept = unchanged.listing(job, parent, summary)
    listing = kept or list_snapshot(ctx.local, repos.primary(job), summary.snapshot_id,
                                    job=job.name, timeout=ctx.timeout)
    built = manifest.build(job, runner, listing, timeout=ctx.timeout, history=sampling.history,
                           choose=sampling.choose(),
                           selection=early.selection if early and kept else None,
                           hashed=early.hashed() if early else None)
    suspicious = tuple(tripwire.inspect(ctx, job, summary, built))
    frozen = tripwire.frozen_reason(ctx, job) or ("; ".join(suspicious) or None)
    taken_at = listing.snapshot_time
    prepared = sampling.prepared
    return Inspected(parse.parse_time(taken_at).isoformat() if taken_at else None, built,
                     suspicious, frozen, prepared.update(listing, built, at=ctx.store.now())
                     if prepared else None, listing=listing, kept=kept is not None)
