"""Full restore test: the whole snapshot into scratch, timed (the RTO), counted, hashed,
checked by the job's commands and `restic check`, then wiped.

For `latest` of the primary repository nothing waits before the restore: the free-space
check uses the size the source manifest recorded and restic resolves `latest` itself (the
snapshot it names must be the newest manifest's, which is the newest backup's: that one is
still there); the manifest's rows, which take seconds to load for a few hundred thousand
files, load beside the restore; for a job with databases (a dump is its latest)
`restic snapshots` tells beside the restore. What must come back is the listing's digest
the backup recorded: the restored tree gives the same, or `restic ls` of the snapshot
names what differs (manifests older than the digest have `restic ls latest` run beside the
restore). When the snapshot is not the newest manifest's, it is resolved and proven the
slow way.
`restic check --no-lock` runs beside the restore from the start (as in the quick test):
the restore leaves most of a second core idle, and the check then no longer lengthens what
follows it, the counting, hashing and commands, then the wipe.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from backupctl.actions.context import Context
from backupctl.actions.restore_test import scratch
from backupctl.actions.restore_test.checks import (
    CheckOutcome,
    CommandsOutcome,
    check_beside_restore,
    run_commands,
)
from backupctl.actions.restore_test.compare import (
    Compared,
    compare,
    count_all,
    count_by_digest,
    digest_tells,
)
from backupctl.actions.restore_test.pipeline import Tested, list_snapshot
from backupctl.actions.restore_test.restore import Restored, restore
from backupctl.actions.restore_test.snapshot import (
    References,
    guess_latest,
    references,
    resolve,
    summary_of,
)
from backupctl.actions.restore_test.verdict import Findings
from backupctl.config.schema import Job
from backupctl.errors import ResticError
from backupctl.execute import Counting, adopt, current
from backupctl.restic.run import Repo
from backupctl.state.records import ManifestSummary, Mismatch
from backupctl.verify.listing import Listing, SnapshotRef


@dataclass(frozen=True)
class _Restored:
    snapshot: SnapshotRef
    references: References
    # None: the backup's listing digest says what must come back; an error: restic could
    # not list it (damaged or unreachable)
    listing: Listing | ResticError | None
    root: Path | None = None
    restored: Restored | None = None


@dataclass(frozen=True)
class _Examined:
    counted: Compared
    files_total: int
    compared: Compared
    commands: CommandsOutcome


def full(ctx: Context, job: Job, repo: Repo, *, wanted: str) -> Tested:
    runner = Counting(ctx.local)
    # the check, the manifest's rows, the listing and `restic snapshots` beside the restore
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="verify",
                            initializer=adopt, initargs=(current(),)) as pool:
        check = pool.submit(check_beside_restore, ctx, runner, job.name, repo,
                            read_data_subset=job.verify.read_data_subset)
        done = _restore_all(ctx, runner, pool, job, repo, wanted=wanted)
        if done.root is None or done.restored is None:
            return _unlistable(done, check.result(), runner.counts)
        return _prove(ctx, runner, repo, job, done, done.root, done.restored, check)


def _listing(runner: Counting, repo: Repo, snapshot: str, *, job: str,
             timeout: float, latest_of_host: bool = False) -> Listing | ResticError:
    try:
        return list_snapshot(runner, repo, snapshot, job=job, timeout=timeout,
                             latest_of_host=latest_of_host)
    except ResticError as exc:
        return exc


def _restore_all(ctx: Context, runner: Counting, pool: ThreadPoolExecutor, job: Job,
                 repo: Repo, *, wanted: str) -> _Restored:
    base, timeout = ctx.config.settings.scratch_dir, ctx.timeout
    guess = guess_latest(ctx.store, repo, job=job.name, wanted=wanted)
    if guess is not None:
        summary = ctx.store.query(summary_of, job.name, guess.id)
        if summary is not None and summary.bytes_total:
            scratch.require_free_space(base, summary.bytes_total, job=job.name)
            done = _restore_guess(ctx, runner, pool, job, repo, guess, summary)
            if done is not None:
                return done
    # restic's latest is not the newest manifest's snapshot, or restic found none: prove
    # the real one (a newest backup whose snapshot is gone is bad data, found by `resolve`)
    snap = resolve(runner, ctx.store, repo, job=job.name, wanted=wanted, timeout=timeout)
    refs = references(ctx.store, snap, job=job.name, repository=repo.name)
    found = _listing(runner, repo, snap.id, job=job.name, timeout=timeout)
    if isinstance(found, ResticError):
        return _Restored(snap, refs, found)
    scratch.require_free_space(base, found.total_bytes, job=job.name)
    root = scratch.make(base, job.name, "full")
    try:
        restored = restore(runner, repo, root, job=job.name, snapshot=snap.id,
                           timeout=timeout)
    except BaseException:
        scratch.wipe(root)
        raise
    return _Restored(snap, refs, found, root, restored)


def _restore_guess(ctx: Context, runner: Counting, pool: ThreadPoolExecutor, job: Job,
                   repo: Repo, guess: SnapshotRef, summary: ManifestSummary,
                   ) -> _Restored | None:
    """Restore restic's latest file snapshot of the job, expecting the newest manifest's
    (`guess`, whose backup recorded `summary`); its rows load beside the restore. None
    (nothing left in scratch): it is another one, or restic found none."""
    timeout = ctx.timeout
    loading = pool.submit(references, ctx.store, guess, job=job.name, repository=repo.name)
    # with databases a dump is newer: `restic snapshots` says whether the guess is latest
    resolving = pool.submit(resolve, runner, ctx.store, repo, job=job.name, wanted="latest",
                            timeout=timeout) if job.databases else None
    listing = None if digest_tells(summary) else pool.submit(
        _listing, runner, repo, guess.id if job.databases else "latest", job=job.name,
        timeout=timeout, latest_of_host=not job.databases)
    root = scratch.make(ctx.config.settings.scratch_dir, job.name, "full")
    try:
        restored = _restore_latest(runner, repo, root, job=job.name, timeout=timeout,
                                   files_only=bool(job.databases))
        found = listing.result() if listing is not None else None
        refs = loading.result()
        if resolving is not None:
            latest: str | None = resolving.result().id
        elif found is not None:
            latest = None if isinstance(found, ResticError) else found.snapshot_id
        elif isinstance(restored, Restored):
            latest = guess.id if restored.snapshots == {guess.short_id} else None
        else:  # no listing and the restore failed: is the newest backup's snapshot there?
            latest = resolve(runner, ctx.store, repo, job=job.name, wanted="latest",
                             timeout=timeout).id
    except BaseException:
        _abandon(root, *(f for f in (loading, listing, resolving) if f is not None))
        raise
    if latest == guess.id and not isinstance(found, ResticError) \
            and (found is None or found.snapshot_id == guess.id):
        if isinstance(restored, ResticError):  # the newest backup's did not restore
            scratch.wipe(root)
            raise restored
        if restored.snapshots == {guess.short_id}:
            time = found.snapshot_time if found is not None else None
            snap = SnapshotRef(id=guess.id, short_id=guess.short_id, time=time or guess.time,
                               original=None)
            return _Restored(snap, refs, found, root, restored)
    scratch.wipe(root)
    return None


def _restore_latest(runner: Counting, repo: Repo, root: Path, *, job: str, timeout: float,
                    files_only: bool) -> Restored | ResticError:
    """restic's latest snapshot of the host (any, so that one made outside backupctl shows;
    `files_only`: among backupctl's file snapshots, a database dump being newer)."""
    try:
        return restore(runner, repo, root, job=job, snapshot="latest", latest_of_host=True,
                       files_only=files_only, timeout=timeout)
    except ResticError as exc:  # judged once it is known which snapshot is latest
        return exc


def _abandon(root: Path, *pending: Future[Any]) -> None:
    wait(pending)
    scratch.wipe(root)


def _prove(ctx: Context, runner: Counting, repo: Repo, job: Job, done: _Restored,
           root: Path, restored: Restored, check: Future[CheckOutcome]) -> Tested:
    """The restore time is measured; now count, hash and run commands, then wipe."""
    try:
        examined = _examine(ctx, runner, repo, job, done, root)
    finally:
        scratch.wipe(root)
    outcome = check.result()
    if isinstance(examined, ResticError):
        return _unlistable(replace(done, listing=examined), outcome, runner.counts)
    counted, compared, commands = examined.counted, examined.compared, examined.commands
    refs = done.references
    findings = Findings(
        files_checked=compared.files, bytes_checked=compared.bytes,
        mismatches=_unique(restored.problems + counted.mismatches + compared.mismatches),
        failures=commands.failures, changed=refs.changed,
        unverifiable=tuple(refs.summary.unverifiable) if refs.summary else (),
        commands=commands.runs, restore_ms=restored.ms,
        files_restored=counted.files, bytes_restored=counted.bytes)
    steps = (f"restored snapshot {done.snapshot.short_id} in {restored.ms / 1000:.1f}s",
             f"{counted.files} file(s) counted, {compared.files} hashed", outcome.step)
    return Tested(done.snapshot, refs, findings, outcome, steps,
                  {"restore": restored.ms, "hash": compared.ms, "check": outcome.ms},
                  runner.counts.get("restic", 0), examined.files_total)


def _examine(ctx: Context, runner: Counting, repo: Repo, job: Job, done: _Restored,
             root: Path) -> _Examined | ResticError:
    """Count what came back (by the backup's listing digest, else by the snapshot's
    listing, which names what is missing), hash the references, run the commands."""
    listing = done.listing
    counted = count_by_digest(root, done.references.summary) if listing is None else None
    if counted is not None and done.references.summary is not None:
        files_total = done.references.summary.files_total
    else:
        if listing is None:
            listing = _listing(runner, repo, done.snapshot.id, job=job.name,
                               timeout=ctx.timeout)
        if isinstance(listing, ResticError):
            return listing
        counted, files_total = count_all(root, listing.files), len(listing.files)
    compared = compare(root, done.references.refs)
    commands = run_commands(ctx.local, job.verify.commands, root, timeout=ctx.timeout)
    return _Examined(counted, files_total, compared, commands)


def _unlistable(done: _Restored, outcome: CheckOutcome, counts: Mapping[str, int]) -> Tested:
    """restic could not even list the snapshot (e.g. its index is gone): bad data if
    `restic check` confirms damage, else the run could not complete."""
    assert isinstance(done.listing, ResticError)
    if not (outcome.mismatches or outcome.failures):
        raise done.listing
    first = str(done.listing).splitlines()[0]
    findings = Findings(failures=(f"restic could not list snapshot {done.snapshot.short_id}: "
                                  f"{first}",), changed=done.references.changed)
    return Tested(done.snapshot, done.references, findings, outcome, (outcome.step,),
                  {"check": outcome.ms}, counts.get("restic", 0))


def _unique(found: tuple[Mismatch, ...]) -> tuple[Mismatch, ...]:
    """A file missing from the count and the hashes is one finding, not two."""
    seen: set[tuple[str, str]] = set()
    out = []
    for mismatch in found:
        if (mismatch.path, mismatch.reason) not in seen:
            seen.add((mismatch.path, mismatch.reason))
            out.append(mismatch)
    return tuple(out)
