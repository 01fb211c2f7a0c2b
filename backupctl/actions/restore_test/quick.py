"""Quick restore test: restore only the manifest's files, hash them, `restic check` beside.

For `latest` of the primary repository the newest manifest's files are restored from
restic's own `latest` (saving a `restic snapshots` start); restic prints which snapshot that
was, and if it is not the manifest's, the real latest is resolved and verified instead (a
job with databases resolves first: its newest snapshot is a dump's).
`restic check --no-lock` runs alongside (`checks.check_beside_restore`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from backupctl.actions.context import Context
from backupctl.actions.restore_test import freshness, scratch
from backupctl.actions.restore_test.checks import check_beside_restore
from backupctl.actions.restore_test.compare import compare
from backupctl.actions.restore_test.pipeline import Tested
from backupctl.actions.restore_test.restore import Restored, restore
from backupctl.actions.restore_test.snapshot import References, guess_latest, references, resolve
from backupctl.actions.restore_test.verdict import Findings
from backupctl.config.schema import Job
from backupctl.errors import ResticError
from backupctl.execute import Counting, adopt, current
from backupctl.restic.run import Repo
from backupctl.verify.listing import SnapshotRef


@dataclass(frozen=True)
class _Sample:
    snapshot: SnapshotRef
    references: References
    restored: Restored
    findings: Findings
    steps: tuple[str, ...]


def quick(ctx: Context, job: Job, repo: Repo, *, wanted: str) -> Tested:
    runner = Counting(ctx.local)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="check",
                            initializer=adopt, initargs=(current(),)) as pool:
        check = pool.submit(check_beside_restore, ctx, runner, job.name, repo,
                            read_data_subset=job.verify.read_data_subset,
                            read_data_group=freshness.read_data(ctx, job, repo))
        sample = _sample(ctx, runner, job, repo, wanted=wanted)
        outcome = check.result()
    refs = sample.references
    return Tested(sample.snapshot, refs, sample.findings, outcome,
                  (*sample.steps, outcome.step),
                  {"restore": sample.restored.ms, "check": outcome.ms},
                  runner.counts.get("restic", 0),
                  refs.summary.files_total if refs.summary else None)


def _sample(ctx: Context, runner: Counting, job: Job, repo: Repo, *, wanted: str) -> _Sample:
    # restic's own latest would be a database dump's snapshot (dumped after the files), and
    # narrowing it by tag would hide a newer snapshot made outside backupctl: resolve first.
    guess = None if job.databases else guess_latest(ctx.store, repo, job=job.name,
                                                    wanted=wanted)
    if guess is not None:
        refs = freshness.with_due(ctx, job, repo, references(ctx.store, guess, job=job.name,
                                                             repository=repo.name))
        try:
            restored, findings = _restore_and_hash(ctx, runner, job, repo, refs,
                                                   snapshot="latest", latest=True)
        except ResticError:
            restored = None
        if restored is not None and restored.snapshots == {guess.short_id}:
            return _Sample(guess, refs, restored, findings, (_step(refs, restored),))
    snap = resolve(runner, ctx.store, repo, job=job.name, wanted=wanted, timeout=ctx.timeout)
    refs = freshness.with_due(ctx, job, repo, references(ctx.store, snap, job=job.name,
                                                         repository=repo.name))
    restored, findings = _restore_and_hash(ctx, runner, job, repo, refs, snapshot=snap.id,
                                           latest=False)
    moved = ("the latest snapshot is not the newest manifest's; verified the latest",) \
        if guess is not None else ()
    return _Sample(snap, refs, restored, findings, (*moved, _step(refs, restored)))


def _restore_and_hash(ctx: Context, runner: Counting, job: Job, repo: Repo,
                      refs: References, *, snapshot: str,
                      latest: bool) -> tuple[Restored, Findings]:
    root = scratch.make(ctx.config.settings.scratch_dir, job.name, "quick")
    try:
        restored = restore(runner, repo, root, job=job.name, snapshot=snapshot,
                           includes=freshness.includes(ctx, job, refs), latest_of_host=latest,
                           timeout=ctx.timeout)
        compared = compare(root, refs.refs)
    finally:
        scratch.wipe(root)
    return restored, Findings(files_checked=compared.files, bytes_checked=compared.bytes,
                              mismatches=restored.problems + compared.mismatches,
                              changed=refs.changed, unverifiable=tuple(
                                  refs.summary.unverifiable if refs.summary else ()))


def _step(refs: References, restored: Restored) -> str:
    return (f"restored {len(refs.refs)} manifest file(s) of "
            f"{'/'.join(sorted(restored.snapshots)) or 'the snapshot'} in "
            f"{restored.ms / 1000:.1f}s")
