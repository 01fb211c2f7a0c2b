"""Full restore test: the whole snapshot into scratch, timed (the RTO), counted, hashed,
checked by the job's commands and `restic check`, then wiped.

For `latest` of the primary repository nothing waits before the restore: the free-space
check uses the size the source manifest recorded, restic resolves `latest` itself, and
`restic ls latest --host JOB` (what must come back, and which snapshot is the job's latest:
when it is the newest manifest's, which is the newest backup's, that one is still there)
runs beside it; for a job with databases (a dump is its latest) `restic snapshots` tells
beside the listing. When anything differs, the snapshot is resolved and proven the slow way.
`restic check --no-lock` runs beside the restore from the start (as in the quick test):
the restore leaves most of a second core idle, and the check then no longer lengthens what
follows it, the counting, hashing and commands, then the wipe.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backupctl.actions.context import Context
from backupctl.actions.restore_test import scratch
from backupctl.actions.restore_test.checks import (
    CheckOutcome,
    check_beside_restore,
    run_commands,
)
from backupctl.actions.restore_test.compare import compare, count_all
from backupctl.actions.restore_test.pipeline import Tested, list_snapshot
from backupctl.actions.restore_test.restore import Restored, restore
from backupctl.actions.restore_test.snapshot import References, guess_latest, references, resolve
from backupctl.actions.restore_test.verdict import Findings
from backupctl.config.schema import Job
from backupctl.errors import ResticError
from backupctl.execute import Counting
from backupctl.restic.run import Repo
from backupctl.state.records import Mismatch
from backupctl.verify.listing import Listing, SnapshotRef


@dataclass(frozen=True)
class _Restored:
    snapshot: SnapshotRef
    references: References
    listing: Listing | ResticError  # restic could not list it: damaged or unreachable
    root: Path | None = None
    restored: Restored | None = None


def full(ctx: Context, job: Job, repo: Repo, *, wanted: str) -> Tested:
    runner = Counting(ctx.local)
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="verify") as pool:
        check = pool.submit(check_beside_restore, ctx, runner, job.name, repo,
                            read_data_subset=job.verify.read_data_subset)
        done = _restore_all(ctx, runner, pool, job, repo, wanted=wanted)
        if done.root is None or done.restored is None or isinstance(done.listing, ResticError):
            if done.root is not None:
                scratch.wipe(done.root)
            return _unlistable(done, check.result(), runner.counts)
        return _prove(ctx, job, done, done.listing, done.root, done.restored, check,
                      runner.counts)


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
        refs = references(ctx.store, guess, job=job.name, repository=repo.name)
        if refs.summary is not None and refs.summary.bytes_total:
            scratch.require_free_space(base, refs.summary.bytes_total, job=job.name)
            # Is the guess restic's latest of the job (files or dumps, as `resolve` sees
            # it)? Without databases the first line of `restic ls latest --host JOB` says
            # so; with them a dump is newer, and `restic snapshots` answers beside.
            resolving = pool.submit(resolve, runner, ctx.store, repo, job=job.name,
                                    wanted=wanted, timeout=timeout) if job.databases else None
            listing = pool.submit(_listing, runner, repo, guess.id if job.databases
                                  else "latest", job=job.name, timeout=timeout,
                                  latest_of_host=not job.databases)
            root = scratch.make(base, job.name, "full")
            try:
                # restic's latest among the file snapshots (a database dump is newer)
                restored = _restore_latest(runner, repo, root, job=job.name, timeout=timeout)
                found = listing.result()
                if resolving is not None:
                    latest: str | None = resolving.result().id
                else:
                    latest = None if isinstance(found, ResticError) else found.snapshot_id
            except BaseException:
                _abandon(root, *(f for f in (listing, resolving) if f is not None))
                raise
            if latest == guess.id and not isinstance(found, ResticError) \
                    and found.snapshot_id == guess.id:
                if isinstance(restored, ResticError):  # the newest backup's did not restore
                    scratch.wipe(root)
                    raise restored
                if restored.snapshots == {guess.short_id}:
                    snap = SnapshotRef(id=guess.id, short_id=guess.short_id,
                                       time=found.snapshot_time or guess.time, original=None)
                    return _Restored(snap, refs, found, root, restored)
            # latest moved since the manifest, or restic found none: prove the real one (a
            # newest backup whose snapshot is gone is bad data, found by `resolve`)
            scratch.wipe(root)
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


def _restore_latest(runner: Counting, repo: Repo, root: Path, *, job: str,
                    timeout: float) -> Restored | ResticError:
    try:
        return restore(runner, repo, root, job=job, snapshot="latest", latest_of_host=True,
                       files_only=True, timeout=timeout)
    except ResticError as exc:  # judged once the listing says which snapshot is latest
        return exc


def _abandon(root: Path, *pending: Future[Any]) -> None:
    wait(pending)
    scratch.wipe(root)


def _prove(ctx: Context, job: Job, done: _Restored, listing: Listing, root: Path,
           restored: Restored, check: Future[CheckOutcome],
           counts: Mapping[str, int]) -> Tested:
    """The restore time is measured; now count, hash and run commands, then wipe."""
    try:
        counted = count_all(root, listing.files)
        compared = compare(root, done.references.refs)
        commands = run_commands(ctx.local, job.verify.commands, root, timeout=ctx.timeout)
    finally:
        scratch.wipe(root)
    outcome = check.result()
    refs = done.references
    findings = Findings(
        files_checked=compared.files, bytes_checked=compared.bytes,
        mismatches=_unique(restored.problems + counted.mismatches + compared.mismatches),
        failures=commands.failures, changed=refs.changed,
        unverifiable=counted.unverifiable, commands=commands.runs, restore_ms=restored.ms,
        files_restored=counted.files, bytes_restored=counted.bytes)
    steps = (f"restored snapshot {done.snapshot.short_id} in {restored.ms / 1000:.1f}s",
             f"{counted.files} file(s) counted, {compared.files} hashed", outcome.step)
    return Tested(done.snapshot, refs, findings, outcome, steps,
                  {"restore": restored.ms, "hash": compared.ms, "check": outcome.ms},
                  counts.get("restic", 0), len(listing.files))


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
