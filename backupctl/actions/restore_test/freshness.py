"""Proof freshness in the pipelines (SPEC §12, `verify.prove_within`).

The backup: its sample is `freshness.choose_for_backup` of the files the state knows
(`Prepared.chooser`), and its snapshot's files are written to `proofs` as a diff
(`Prepared.update`, recorded with the run). The quick verify: besides the newest manifest's
references it restores the due files (`with_due`: unproven first, then the longest-unproven,
at least its share), records those that matched as proven with the run (`to_prove`,
`record_proven`; its evidence says how many: `steps`),
and `restic check` reads pack group n/t in turn (`read_data`), so every pack is read within
the window too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from sqlalchemy import Connection

from backupctl.actions.context import Context
from backupctl.actions.restore_test.pipeline import Tested
from backupctl.actions.restore_test.snapshot import PRIMARY, Reference, References
from backupctl.config.schema import Job
from backupctl.restic.run import Repo
from backupctl.state import proofs
from backupctl.verify import freshness
from backupctl.verify.listing import NOT_UTF8, FileNode, Listing
from backupctl.verify.manifest import Chooser, Manifest
from backupctl.verify.names import shown

# restic refuses `--read-data-subset=n/t` with t over 256 ("t must be at most 256", 0.14 to
# 0.18): more quick verifies than that within the window read 1/256 each, every pack still
# within the window.
MAX_GROUPS = 256


def scheduled_runs(ctx: Context, job: Job, schedule: str) -> freshness.Runs:
    """The runs `schedule` is sure to give within the job's window, from now on."""
    assert job.verify.prove_within is not None
    return freshness.runs_within(schedule, job.verify.prove_within, base=ctx.clock())


def take(files: int, runs: int, *, churn: int) -> int:
    """A run's share, plus (up to another share) the files changed since the run before:
    changes must not push the longest-unproven files out of the window."""
    share = freshness.share(files, runs)
    return share + min(churn, share)


# -- the backup ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Prepared:
    """What the state knows of the job's newest snapshot, read before the backup's sample."""

    job: Job
    known: Mapping[str, proofs.Known]
    runs: int

    def chooser(self) -> Chooser:
        def choose(pool: list[FileNode]) -> list[FileNode]:
            churn = 0 if not self.known else sum(  # new or changed since the last backup
                1 for n in pool if not freshness.same(n, self.known.get(n.path)))
            count = max(self.job.verify.sample.size(len(pool)),
                        take(len(pool), self.runs, churn=churn))
            return freshness.choose_for_backup(pool, self.known, take=min(count, len(pool)))
        return choose

    def update(self, listing: Listing, built: Manifest, *, at: str) -> freshness.TreeUpdate:
        hashed = {e["path"]: (e["size"], e["mtime"], e["sha256"]) for e in built.entries
                  if e["state"] == "ok" and e["sha256"]}
        return freshness.tree_update(listing.files, self.known, hashed, at=at)


def prepare(ctx: Context, job: Job) -> Prepared | None:
    """None unless the job sets `verify.prove_within`."""
    if job.verify.prove_within is None:
        return None
    known = ctx.store.query(proofs.known, job.name)
    return Prepared(job, known, scheduled_runs(ctx, job, job.schedule.backup).count)


def record_tree(conn: Connection, job: str, snapshot_id: str, update: freshness.TreeUpdate,
                *, at: str) -> None:
    proofs.apply(conn, job, snapshot_id=snapshot_id, remove=update.remove, add=update.add,
                 files=update.files, changed=update.changed, untracked=update.untracked,
                 at=at)


# -- the quick verify ---------------------------------------------------------------------

def with_due(ctx: Context, job: Job, repo: Repo, refs: References) -> References:
    """`refs` and the due files of the snapshot, when `proofs` mirrors that snapshot."""
    if job.verify.prove_within is None or repo.name != PRIMARY:
        return refs
    with ctx.store.read() as conn:
        tree = proofs.tree(conn, job.name)
        if tree is None or tree.snapshot_id != refs.manifest_id:
            return refs
        count = take(tree.files, scheduled_runs(ctx, job, job.schedule.verify).count,
                     churn=tree.changed)
        due = proofs.due(conn, job.name, limit=count)
    have = {r.path for r in refs.refs}
    extra = tuple(Reference(d.path, d.size, d.sha256) for d in due if d.path not in have)
    return replace(refs, refs=refs.refs + extra)


# A directory with at least this many of a run's files, all of them directly in it (no
# subdirectory) and at least half of its files, is restored whole: restic 0.14 matches every
# file it walks against every --include, so a due share of 33 000 files as single patterns
# would cost hours on a tree of a million; the files not chosen are restored, not hashed.
DENSE = 64


def includes(ctx: Context, job: Job, refs: References) -> list[str]:
    """What the quick verify restores: `refs.paths`, with dense directories as one
    pattern each (prove_within only: the state knows the tree)."""
    paths = refs.paths
    if job.verify.prove_within is None or len(paths) < DENSE:
        return paths
    by_dir: dict[str, int] = {}
    for ref in refs.refs:
        if ref.on_disk == ref.path and NOT_UTF8 not in ref.path:
            parent = ref.path.rpartition("/")[0]
            by_dir[parent] = by_dir.get(parent, 0) + 1
    dense = [d for d, n in by_dir.items() if n >= DENSE and d]
    if not dense:
        return paths
    whole: set[str] = set()
    with ctx.store.read() as conn:
        for directory in dense:
            files, deeper = proofs.directory_files(conn, job.name, directory)
            if not deeper and files <= 2 * by_dir[directory]:
                whole.add(directory)
    return [p for p in paths if p.rpartition("/")[0] not in whole] + sorted(whole)


def proven(tested: Tested) -> list[tuple[str, int, str]]:
    """(path, size, sha256) of the references that came back and matched. A name that is
    not UTF-8 counts only when every mismatch names another reference (a mismatch shows a
    name in its own safe form, which is not the listed one)."""
    # Compared in the mismatches' own form: names.shown escapes control characters, so a
    # name with a newline is not its shown form.
    bad = {m.path for m in tested.findings.mismatches}
    plain = {shown(r.on_disk) for r in tested.references.refs if NOT_UTF8 not in r.path}
    lossy_ok = bad <= plain
    return [(r.path, r.size, r.sha256) for r in tested.references.refs
            if shown(r.on_disk) not in bad and (NOT_UTF8 not in r.path or lossy_ok)]


def to_prove(ctx: Context, job: Job, repo: Repo,
             tested: Tested) -> list[tuple[str, int, str]] | None:
    """The files a restore test proved, if `proofs` mirrors its snapshot (None: no
    prove_within, another repository, or an older snapshot: nothing is recorded)."""
    if job.verify.prove_within is None or repo.name != PRIMARY:
        return None
    tree = ctx.store.query(proofs.tree, job.name)
    if tree is None or tree.snapshot_id != tested.references.manifest_id:
        return None
    return proven(tested)


def steps(job: Job, proved: list[tuple[str, int, str]] | None) -> tuple[str, ...]:
    """What the run's evidence record says of it."""
    if job.verify.prove_within is None:
        return ()
    if proved is None:
        return ("prove_within: not the newest snapshot of the primary repository, no proof "
                "recorded",)
    return (f"prove_within: {len(proved)} file(s) of the newest snapshot restored and "
            "matched their source hash, recorded as proven",)


def record_proven(conn: Connection, job: str, proved: list[tuple[str, int, str]] | None, *,
                  at: str) -> None:
    """Record `to_prove`'s files as proven at `at` (in the run's own transaction)."""
    if proved:
        proofs.mark_proven(conn, job, proved, at=at)


def read_data(ctx: Context, job: Job, repo: Repo) -> tuple[int, int] | None:
    """`restic check --read-data-subset n/t`: t = the quick verifies the window holds, n
    the next group in turn; None: the job's `read_data_subset` (no prove_within)."""
    if job.verify.prove_within is None:
        return None
    groups = min(MAX_GROUPS, max(1, scheduled_runs(ctx, job, job.schedule.verify).count))
    done = ctx.store.query(proofs.verifies_of, job.name, repo.name)
    return (done % groups) + 1, groups
