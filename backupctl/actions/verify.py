"""`backupctl verify`: restore tests that prove a snapshot against its source manifest.

quick: restore only the manifest's files, hash them, `restic check` beside (quick.py).
full: restore everything, time it against `verify.rto`, count every file against the
snapshot's listing, hash the manifest's files, run `verify.commands`, `restic check`
(full.py). Both read any snapshot (`latest` or an id) of any repository (`primary` or a
copy; a copied snapshot finds its manifest through restic's `original` id). Then each of the
job's `databases` is proven for that snapshot (restore_test/databases.py: quick, the dump's
SHA-256 and table of contents; full, restored into a throwaway PostgreSQL and every table's
rows compared). The verdict (restore_test/verdict.py): proven (0), bad data naming every
bad path, pack, table or check (3), or not proven (1).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from backupctl.actions import capacity, due
from backupctl.actions import repo as repos
from backupctl.actions.context import Context
from backupctl.actions.jobrun import job_run
from backupctl.actions.restore_test import freshness
from backupctl.actions.restore_test.databases import require_restore_user, with_databases
from backupctl.actions.restore_test.full import full
from backupctl.actions.restore_test.pipeline import Tested
from backupctl.actions.restore_test.quick import quick
from backupctl.actions.restore_test.verdict import verdict
from backupctl.actions.results import RunResult
from backupctl.config.schema import Database, Job
from backupctl.databases import KINDS
from backupctl.errors import UsageError
from backupctl.execute import Secret, display
from backupctl.restic import commands as restic
from backupctl.restic.parse import parse_time
from backupctl.restic.watch import RetryWatch
from backupctl.state.records import VerifyDetails, ratio

MODES = ("quick", "full")
VerifyResult = RunResult[VerifyDetails]


def plan(job: Job, *, mode: str, snapshot: str = "latest", source: str = repos.PRIMARY,
         scratch_dir: Path) -> list[str]:
    """What `verify` would run, secrets masked (for --dry-run)."""
    masked = Secret("<password>")
    url = (job.repository.orchestrator_url if source == repos.PRIMARY
           else job.copy_named(source).url)  # argv builders mask a password inside it
    target = str(scratch_dir / f"{job.name}.{mode}-XXXX")
    steps = ["on orchestrator: " + display(restic.snapshots(url, masked, host=job.name))]
    restore = "on orchestrator: " + display(restic.restore(url, masked, snapshot=snapshot,
                                                           target=target))
    if mode == "full":
        steps.append("on orchestrator: " + display(restic.ls(url, masked, snapshot)))
        steps.append(restore)
        steps += [f"on orchestrator: sh -c {c.replace('{restored}', shlex.quote(target))!r}"
                  for c in job.verify.commands]
    else:
        steps.append(restore + " --include <manifest files>" + (
            " <due files: unproven, then longest-unproven>" if job.verify.prove_within else ""))
    steps.append(f"hash the manifest files under {target}, compare, wipe {target}")
    if job.verify.prove_within is not None and mode == "quick":  # the pack groups rotate
        steps.append("on orchestrator: " + display(restic.check(
            url, masked, read_data_subset=None)) + " --read-data-subset=N/T (pack group N "
            "of T in turn, T = the quick verifies within verify.prove_within)")
    else:
        steps.append("on orchestrator: " + display(restic.check(
            url, masked, read_data_subset=job.verify.read_data_subset)))
    steps += [_database_plan(d, mode=mode, scratch_dir=scratch_dir) for d in job.databases]
    return steps


def _database_plan(database: Database, *, mode: str, scratch_dir: Path) -> str:
    step = (f"on orchestrator: restic dump of database {database.name}'s dump recorded with "
            "the snapshot, SHA-256 compared, ")
    kind = KINDS[database.kind]
    if mode != "full":
        return step + kind.QUICK_PLAN
    checks = f", {len(database.checks)} check(s)" if database.checks else ""
    return step + f"{kind.FULL_PLAN} in {scratch_dir}, every table's rows compared{checks}, wiped"


def verify(ctx: Context, job: Job, *, mode: str = "quick", snapshot: str = "latest",
           source: str = repos.PRIMARY, only_if_fits: bool = False) -> VerifyResult:
    """`only_if_fits` (--due): a full restore that would not fit this orchestrator's
    scratch_dir raises capacity.NoRoom (nothing run; the job stays due for another)."""
    if mode not in MODES:
        raise UsageError(f"unknown verify mode {mode!r} (quick or full)")
    repo = repos.named(job, source)
    require_restore_user(ctx, job, mode=mode)
    if only_if_fits and mode == "full":
        capacity.require_room(ctx.store, job.name, scratch_dir=ctx.config.settings.scratch_dir)
    with job_run(ctx, job, "verify", VerifyDetails, repository=repo.name,
                 due_kind=due.FULL_VERIFY if mode == "full" else None) as run:
        steps = _unlock_stale(ctx, repo) if run.recovered else ()
        tested = (full if mode == "full" else quick)(ctx, job, repo, wanted=snapshot)
        tested = with_databases(ctx, job, repo, tested, mode=mode)
        proved = freshness.to_prove(ctx, job, repo, tested)  # prove_within: with the record
        run.finish(result(job, repo.name, mode, tested, steps=(
            *steps, *freshness.steps(job, proved))), extra=lambda conn: freshness.record_proven(
                conn, job.name, proved, at=ctx.store.now()))
    return run.result


def _unlock_stale(ctx: Context, repo: repos.Repo) -> tuple[str]:
    """After a killed restore test: its restic's lock stays (restic 0.14 never expires it);
    `restic unlock` removes only stale locks (dead process here, or > 30 min), never live."""
    done = ctx.local.run(restic.unlock(repo.url, repo.password), timeout=600,
                         stderr_watch=RetryWatch())
    return (f"repository {repo.name} after an interrupted run: restic unlock (stale locks "
            f"only) exited {done.returncode}",)


def result(job: Job, repository: str, mode: str, tested: Tested, *,
           steps: tuple[str, ...] = ()) -> VerifyResult:
    """The verdict on a restore test, as the run's result."""
    found = tested.all_findings
    snap = tested.snapshot
    judged = verdict(found, job=job.name, what=f"snapshot {snap.short_id} of {repository}",
                     rto_seconds=job.verify.rto if mode == "full" else None)
    details = VerifyDetails(
        mode="full" if mode == "full" else "quick", files_checked=found.files_checked,
        bytes_checked=found.bytes_checked, mismatches=list(found.mismatches),
        failures=list(found.failures), changed_since_snapshot=list(found.changed),
        unverifiable=list(found.unverifiable), commands=list(found.commands),
        restore_ms=found.rto_ms, rto_seconds=job.verify.rto,
        files_restored=found.files_restored, bytes_restored=found.bytes_restored,
        check_output=tested.check.output if tested.check else "",
        coverage=ratio(tested.coverage), restic_invocations=tested.restic_invocations,
        timings_ms=tested.timings_ms, steps=[*steps, *tested.steps],
        databases=list(found.databases))
    return VerifyResult(job.name, "verify", judged.status, details, error=judged.error,
                        repository=repository, snapshot_id=snap.id,
                        snapshot_time=parse_time(snap.time).isoformat())
