"""`backupctl verify`: restore tests that prove the data against the source manifest.

quick: `restic restore --include` of only the manifest's files into a 0700 scratch dir,
hash them, compare, wipe, then `restic check` (`--read-data-subset` as the job says).
full: restore the whole snapshot into a 0700 scratch dir, time it against `verify.rto`,
count and size every file against the snapshot listing, hash the manifest's files, run
`verify.commands` on the restored tree, wipe, then `restic check`.

Both read any snapshot (`latest` or an id) of any repository (`primary` or a copy; a copied
snapshot finds its manifest through restic's `original` id). A restic start costs ~0.7 s, so
a verify runs a handful of restic processes whatever the sample size. It passes only when
every compared file matched, nothing was missing and every check passed; bad data is exit 3
with every bad path or pack named; anything that kept it from proving the data is exit 1.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shlex
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from backupctl.actions import record
from backupctl.actions import repo as repos
from backupctl.actions.context import Context
from backupctl.actions.outcome import ResultDict
from backupctl.config.schema import Job
from backupctl.errors import CommandFailed, DataError, ResticError
from backupctl.execute import Arg, Result, Secret, display, tail
from backupctl.restic import commands as restic
from backupctl.restic.codes import ResticExit, classify
from backupctl.restic.parse import parse_time
from backupctl.state.locks import job_lock
from backupctl.state.recovery import recover, wipe
from backupctl.state.schema import manifest as manifest_table
from backupctl.state.schema import runs
from backupctl.status import ExitStatus
from backupctl.verify import listing as listings
from backupctl.verify.hashing import sha256_many
from backupctl.verify.listing import Listing, SnapshotRef

log = logging.getLogger(__name__)

MODES = ("quick", "full")
# restic gets the sample as --include arguments; keep each command line far below ARG_MAX.
INCLUDE_ARGV_BYTES = 1 << 20
FREE_SPACE_MARGIN = 64 << 20
_HEX64 = re.compile(r"\b[0-9a-f]{64}\b")
_RESTORING = re.compile(rb"^restoring <Snapshot ([0-9a-f]{8}) of ", re.MULTILINE)
# Errors of the restore target itself (errno texts as Go prints them).
_LOCAL_FAILURE = re.compile(r"no space left on device|disk quota exceeded|read-only file system"
                            r"|too many open files", re.IGNORECASE)


@dataclass(frozen=True)
class Mismatch:
    path: str
    expected: str | None
    got: str | None
    reason: str  # missing | size | hash | not a file | restore error | check


@dataclass(frozen=True)
class VerifyResult(ResultDict):
    job: str
    status: ExitStatus
    error: str | None = None
    mode: str = "quick"
    repository: str = repos.PRIMARY
    snapshot_id: str | None = None
    snapshot_time: str | None = None
    files_checked: int = 0
    bytes_checked: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    changed_since_snapshot: list[str] = field(default_factory=list)
    check_output: str = ""
    restore_seconds: float | None = None
    rto_seconds: int | None = None
    coverage_ratio: float | None = None
    restic_invocations: int = 0
    files_restored: int | None = None
    bytes_restored: int | None = None
    failures: list[str] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)
    run_id: int | None = None
    kind: str = "verify"



def plan(job: Job, *, mode: str, snapshot: str = "latest", source: str = repos.PRIMARY,
         scratch_dir: Path) -> list[str]:
    """What `verify` would run, secrets masked (for --dry-run)."""
    masked = Secret("<password>")
    url = (job.repository.orchestrator_url if source == repos.PRIMARY
           else job.copy_named(source).url)
    target = str(scratch_dir / f"{job.name}.{mode}-XXXX")
    steps = ["on orchestrator: " + display(restic.snapshots(url, masked, host=job.name))]
    if mode == "full":
        steps.append("on orchestrator: " + display(restic.ls(url, masked, snapshot)))
        steps.append("on orchestrator: " + display(restic.restore(
            url, masked, snapshot=snapshot, target=target)))
        steps += [f"on orchestrator: sh -c {c.replace('{restored}', shlex.quote(target))!r}"
                  for c in job.verify.commands]
    else:
        steps.append("on orchestrator: " + display(restic.restore(
            url, masked, snapshot=snapshot, target=target)) + " --include <manifest files>")
    steps.append(f"hash the manifest files under {target}, compare, wipe {target}")
    steps.append("on orchestrator: " + display(restic.check(
        url, masked, read_data_subset=job.verify.read_data_subset)))
    return steps


def verify(ctx: Context, job: Job, *, mode: str = "quick", snapshot: str = "latest",
           source: str = repos.PRIMARY) -> VerifyResult:
    if mode not in MODES:
        raise CommandFailed(f"unknown verify mode {mode!r} (quick or full)")
    repo = repos.named(job, source)
    settings = ctx.config.settings
    with job_lock(settings.state_dir, job.name):
        stale = recover(ctx.store, state_dir=settings.state_dir,
                        scratch_dir=settings.scratch_dir, job=job.name)
        run_id = ctx.store.start_run(job=job.name, kind="verify", repository=repo.name,
                                     operator=ctx.operator)
        try:
            run = Verifier(ctx, job, repo, mode=mode, run_id=run_id)
            if stale:
                run.unlock()
            result = run.run(snapshot)
        except DataError as exc:  # bad data found before a result could be built
            ctx.store.finish_run(run_id, status="bad_data", exit_code=int(exc.status),
                                 error=str(exc))
            raise
        except BaseException as exc:  # record the failure now, then let it propagate
            record.aborted(ctx, job, run_id, exc)
            raise
        record.finish_result(ctx, job, result)
        return result



@dataclass(frozen=True)
class Reference:
    path: str
    size: int
    sha256: str


class Verifier:
    """The restore-test engine (verify and drill): one test; gathers findings as it goes
    and always wipes what it restored."""

    def __init__(self, ctx: Context, job: Job, repo: repos.Repo, *, mode: str,
                 run_id: int) -> None:
        self.ctx, self.job, self.repo, self.mode, self.run_id = ctx, job, repo, mode, run_id
        self.invocations = 0
        self.mismatches: list[Mismatch] = []
        self.failures: list[str] = []
        self.steps: list[str] = []
        self.timings: dict[str, float] = {}
        self.commands: list[dict[str, Any]] = []
        self.check_output = ""
        self.check_mismatches: list[Mismatch] = []
        self.check_failures: list[str] = []
        self.restored: set[str] = set()  # short ids restic said it restored
        self.scratch: list[Path] = []
        self._counter = threading.Lock()

    # -- restic --------------------------------------------------------------------------

    def count(self) -> None:
        with self._counter:
            self.invocations += 1

    def restic(self, argv: list[Arg], *, what: str, timeout: float | None = None,
               allow: tuple[ResticExit, ...] = ()) -> tuple[Result, ResticExit]:
        self.count()
        return repos.run_restic(self.ctx.local, argv, job=self.job.name, what=what,
                                timeout=self.ctx.timeout if timeout is None else timeout,
                                allow=allow)

    def run_unlocking(self, argv: list[Arg]) -> tuple[Result, ResticExit]:
        """Run restic once; if a lock stops it, remove *stale* locks and try once more.

        restic 0.14 never ignores the lock of a killed restic (an interrupted restore test
        leaves one); `restic unlock` removes only locks whose process is gone (same host) or
        that are older than 30 minutes, never a live one.
        """
        for attempt in range(2):
            self.count()
            result = self.ctx.local.run(argv, timeout=self.ctx.timeout)
            outcome = ResticExit.FATAL if result.timed_out else classify(result.returncode,
                                                                      result.stderr)
            if outcome is not ResticExit.LOCKED or attempt:
                return result, outcome
            self.unlock(why="was locked")
        return result, outcome

    def unlock(self, *, why: str = "after an interrupted run") -> None:
        """`restic unlock`: removes only stale locks (dead process on this host, or > 30 min)."""
        self.count()
        unlocked = self.ctx.local.run(restic.unlock(self.repo.url, self.repo.password),
                                      timeout=600)
        self.steps.append(f"repository {self.repo.name} {why}: restic unlock (stale locks "
                          f"only) exited {unlocked.returncode}")

    def resolve(self, wanted: str) -> SnapshotRef:
        result, outcome = self.run_unlocking(restic.snapshots(self.repo.url, self.repo.password,
                                                              host=self.job.name))
        if outcome is not ResticExit.OK:
            raise ResticError(f"{self.job.name}: listing snapshots of {self.repo.name} failed "
                              f"({outcome.value}) {result.describe()}"
                              + repos.hint(self.job.name, outcome))
        held = listings.snapshot_refs(result.stdout)
        if wanted == "latest" and self.repo.name == repos.PRIMARY:
            self.lost_snapshot(held)
        found = listings.pick(held, wanted)
        if found is None:
            raise CommandFailed(f"{self.job.name}: no snapshot {wanted!r} of host {self.job.name} "
                                f"in repository {self.repo.name} ({self.repo.url})")
        return found

    def lost_snapshot(self, held: list[SnapshotRef]) -> None:
        """The newest successful backup's snapshot must still be there: `latest` must never
        quietly fall back to an older snapshot when the newest one was deleted."""
        newest = self.ctx.store.last_run(self.job.name, "backup", repository=repos.PRIMARY,
                                         status="success")
        if newest is None or not newest.snapshot_id:
            return
        if not any(s.id.startswith(newest.snapshot_id) for s in held):
            raise DataError(f"{self.job.name}: BAD DATA: snapshot {newest.snapshot_id} of the "
                            f"last successful backup ({newest.finished_at}) is missing from "
                            f"repository {self.repo.name} ({self.repo.url}): it was deleted "
                            "or the repository was replaced")

    def references(self, snap: SnapshotRef) -> tuple[list[Reference], list[str], str]:
        """The manifest of the snapshot (or of the one it was copied from)."""
        ids = {snap.id, snap.id[:8]}
        if snap.original:
            ids |= {snap.original, snap.original[:8]}
        with self.ctx.store.read() as conn:
            m = manifest_table.c
            rows = list(conn.execute(select(m.snapshot_id, m.path, m.size, m.sha256, m.state).where(
                manifest_table.c.job == self.job.name,
                manifest_table.c.snapshot_id.in_(sorted(ids))).order_by(manifest_table.c.id)))
        if not rows:
            raise CommandFailed(
                f"{self.job.name}: snapshot {snap.short_id} of {self.repo.name} has no source "
                "manifest (it was taken before backupctl recorded manifests, or by another "
                "tool), so its data cannot be proven; verify a snapshot taken by "
                f"`backupctl backup {self.job.name}`")
        # One manifest per snapshot; if several were stored, the newest rows win.
        latest_id = rows[-1].snapshot_id
        refs: dict[str, Reference] = {}
        changed: list[str] = []
        for row in rows:
            if row.snapshot_id != latest_id:
                continue
            if row.state == "ok" and row.sha256:
                refs[row.path] = Reference(row.path, int(row.size), row.sha256)
            elif row.state == "changed":
                changed.append(row.path)
        return list(refs.values()), changed, latest_id

    def manifest_coverage(self, manifest_id: str) -> tuple[int | None, float | None]:
        """(files in the snapshot, cumulative source-hash coverage) from the backup run."""
        with self.ctx.store.read() as conn:
            rows = conn.execute(select(runs.c.details).where(
                runs.c.job == self.job.name, runs.c.kind == "backup",
                runs.c.snapshot_id.in_([manifest_id, manifest_id[:8]]))
                .order_by(runs.c.id.desc()).limit(1)).first()
        if rows is None:
            return None, None
        summary = (json.loads(rows.details) or {}).get("manifest") or {}
        total = summary.get("files_total")
        return (int(total) if total is not None else None), summary.get("coverage_ratio")

    # -- scratch -------------------------------------------------------------------------

    def scratch_dir(self) -> Path:
        base = self.ctx.config.settings.scratch_dir
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = Path(tempfile.mkdtemp(prefix=f"{self.job.name}.{self.mode}-", dir=base))
        self.scratch.append(path)
        path.chmod(0o700)
        return path

    def wipe(self) -> None:
        for path in self.scratch:
            try:
                wipe(path)
            except OSError as exc:
                self.failures.append(f"could not wipe restored data {path}: {exc}; it is "
                                     "wiped on the next run")
        self.scratch.clear()

    def free_space(self, needed: int) -> None:
        base = self.ctx.config.settings.scratch_dir
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        free = shutil.disk_usage(base).free
        if free < needed + FREE_SPACE_MARGIN:
            raise CommandFailed(
                f"{self.job.name}: not enough free space in scratch_dir {base} for a full "
                f"restore: the snapshot needs {_size(needed)} (+{_size(FREE_SPACE_MARGIN)} "
                f"margin), {_size(free)} free. Free space there, point scratch_dir at a "
                "larger disk, or use --mode quick; nothing was restored")

    # -- restore and compare -------------------------------------------------------------

    def restore(self, snap: SnapshotRef, target: Path, includes: list[str] | None, *,
                latest: bool = False) -> float:
        """Run restic restore (chunks of --include); returns seconds. Restore errors are
        findings (bad data); failing to run restic at all raises. With `latest`, restic picks
        the job's newest snapshot itself and the ids it restored are kept in `restored`."""
        seconds = 0.0
        for chunk in _chunks(includes) if includes is not None else [None]:
            argv = restic.restore(self.repo.url, self.repo.password,
                                  snapshot="latest" if latest else snap.id,
                                  target=str(target), include=chunk,
                                  host=self.job.name if latest else None)
            result, outcome = self.run_unlocking(argv)
            self.restored.update(m.decode() for m in _RESTORING.findall(result.stdout))
            seconds += result.duration
            if outcome is ResticExit.OK:
                continue
            local = _local_failure(target, result.stderr) if not result.ok or \
                _restore_errors(result.stderr) else None
            if local:
                # The orchestrator's disk failed, not the data: not proven, never bad data.
                raise CommandFailed(
                    f"{self.job.name}: restoring into scratch_dir {target.parent} failed on "
                    f"the orchestrator ({local}); the data is not proven. Free space/inodes "
                    f"there or point scratch_dir at a larger disk {result.describe()}")
            if outcome is ResticExit.FATAL and not result.timed_out and _restore_errors(
                    result.stderr):
                for path, message in _restore_errors(result.stderr):
                    self.mismatches.append(Mismatch(path, None, message, "restore error"))
                continue
            raise ResticError(f"{self.job.name}: restic restore from {self.repo.name} failed "
                              f"({outcome.value}) {result.describe()}")
        return seconds

    def compare(self, root: Path, refs: list[Reference]) -> tuple[int, int]:
        """Hash every reference under `root`, recording mismatches; (files, bytes) hashed."""
        files = size = 0
        digests = sha256_many(_inside(root, r.path) for r in refs)
        for ref, digest in zip(refs, digests, strict=True):
            if digest.missing:
                self.mismatches.append(Mismatch(ref.path, ref.sha256, None, "missing"))
                continue
            if digest.error is not None:
                self.mismatches.append(Mismatch(ref.path, ref.sha256, digest.error,
                                                "unreadable"))
                continue
            files += 1
            size += digest.size or 0
            if digest.size != ref.size:
                self.mismatches.append(Mismatch(ref.path, f"{ref.size} bytes",
                                                f"{digest.size} bytes", "size"))
            elif digest.sha256 != ref.sha256:
                self.mismatches.append(Mismatch(ref.path, ref.sha256, digest.sha256, "hash"))
        return files, size

    def count_all(self, root: Path, listing: Listing) -> tuple[int, int]:
        """Every file of the snapshot is there with its size (metadata only, no reads)."""
        count = size = 0
        for node in listing.files:
            try:
                info = _inside(root, node.path).lstat()
            except OSError:
                self.mismatches.append(Mismatch(node.path, f"{node.size} bytes", None,
                                                "missing"))
                continue
            if not stat.S_ISREG(info.st_mode):
                self.mismatches.append(Mismatch(node.path, "file", "not a file", "not a file"))
                continue
            count += 1
            size += info.st_size
            if info.st_size != node.size:
                self.mismatches.append(Mismatch(node.path, f"{node.size} bytes",
                                                f"{info.st_size} bytes", "size"))
        return count, size

    def run_commands(self, root: Path) -> None:
        for command in self.job.verify.commands:
            real = command.replace("{restored}", shlex.quote(str(root)))
            result = self.ctx.local.shell(real, timeout=self.ctx.timeout)
            output = tail((result.stdout.decode("utf-8", "replace") + "\n" + result.stderr)
                          .strip(), 15)
            self.commands.append({"command": command, "exit_code": result.returncode,
                                  "output_tail": output, "seconds": round(result.duration, 3)})
            if not result.ok:
                what = "timed out" if result.timed_out else f"exited {result.returncode}"
                self.failures.append(f"check command {command!r} {what}: {output}")

    def check(self, *, no_lock: bool = False) -> None:
        """restic check; findings go to their own lists (it may run in a thread)."""
        subset = self.job.verify.read_data_subset
        argv = restic.check(self.repo.url, self.repo.password, read_data_subset=subset)
        if no_lock:
            argv.insert(argv.index("check"), "--no-lock")
        result, outcome = self.run_unlocking(argv)
        text = (result.stdout.decode("utf-8", "replace") + "\n" + result.stderr).strip()
        self.check_output = tail("\n".join(line for line in text.splitlines()
                                           if not line.startswith("[")), 40)
        self.timings["check"] = round(result.duration, 3)
        if outcome is ResticExit.OK:
            self.steps.append("restic check" + (f" --read-data-subset={subset * 100:g}%"
                                                if subset else "") + ": no errors")
            return
        # restic 0.14 ends every check that found damage with "repository contains errors";
        # any other failure (network, permissions) means the check could not run: exit 1.
        if outcome is ResticExit.FATAL and not result.timed_out and "contains errors" in text:
            packs = sorted(set(_HEX64.findall(text)))
            for line in _check_errors(text):
                found = _HEX64.search(line)
                self.check_mismatches.append(Mismatch(f"pack {found.group(0)}" if found
                                                      else "repository", None, line, "check"))
            self.check_failures.append(f"restic check found repository errors"
                                 f"{' in pack(s) ' + ', '.join(packs) if packs else ''}")
            return
        raise ResticError(f"{self.job.name}: restic check of {self.repo.name} failed "
                          f"({outcome.value}) {result.describe()}")

    # -- the run -------------------------------------------------------------------------

    def run(self, wanted: str) -> VerifyResult:
        if self.mode == "quick":
            return self._quick(wanted)
        snap, listing = self._resolve_and_list(wanted)
        refs, changed, _ = self.references(snap)
        if isinstance(listing, ResticError):
            return self._unreadable(snap, listing)
        checker: _Background | None = None
        try:
            self.free_space(listing.total_bytes)
            root = self.scratch_dir()
            restore_seconds = self.restore(snap, root, None)
            self.timings["restore"] = round(restore_seconds, 3)
            self.steps.append(f"restored snapshot {snap.short_id} in {restore_seconds:.1f}s")
            # The restore time (RTO) is measured; the check may now share the machine.
            checker = _Background(self.check)
            files_restored, bytes_restored = self.count_all(root, listing)
            files, size = self._hash(root, refs)
            self.run_commands(root)
        finally:
            self.wipe()
            if checker is not None:
                checker.join()
        assert checker is not None
        checker.result()
        return self._result(snap, files=files, size=size, total=len(listing.files),
                            changed=changed, restore_seconds=restore_seconds,
                            files_restored=files_restored, bytes_restored=bytes_restored)

    def _resolve_and_list(self, wanted: str) -> tuple[SnapshotRef, Listing | ResticError]:
        """The snapshot and its listing (or why restic could not list it). For `latest` of
        the primary repository the newest manifest's snapshot is listed while `restic
        snapshots` confirms, in parallel, that it is the latest."""
        guess = self.newest_manifest() if (
            wanted == "latest" and self.repo.name == repos.PRIMARY) else None
        lister = _Background(lambda: self.resolve(wanted)) if guess is not None else None
        listing: Listing | ResticError | None = None
        if guess is not None:
            try:
                listing = self.list_snapshot(guess)
            except ResticError as exc:
                listing = exc
        snap: SnapshotRef = lister.result() if lister is not None else self.resolve(wanted)
        if guess is None or not isinstance(listing, Listing) or listing.snapshot_id != snap.id:
            try:
                listing = self.list_snapshot(snap)
            except ResticError as exc:
                listing = exc
        assert listing is not None
        return snap, listing

    def _unreadable(self, snap: SnapshotRef, error: ResticError) -> VerifyResult:
        """restic could not even list the snapshot (e.g. its index is gone): bad data if
        `restic check` confirms damage, else the run could not complete."""
        self.check()
        if not (self.check_mismatches or self.check_failures):
            raise error
        self.failures.append(f"restic could not list snapshot {snap.short_id}: "
                             f"{str(error).splitlines()[0]}")
        return self._result(snap, files=0, size=0, total=None, changed=[],
                            restore_seconds=None, files_restored=None, bytes_restored=None)

    def _quick(self, wanted: str) -> VerifyResult:
        """Restore + hash the manifest's files while `restic check` runs alongside.

        check runs with --no-lock (our restore holds restic's shared lock; within backupctl
        the job lock already keeps prune away). For `latest` on the primary repository the
        newest manifest's files are restored from restic's own `latest`; restic prints which
        snapshot that was, and if it is not the manifest's, the real latest is verified.
        """
        checker = _Background(self._quick_check)
        try:
            guess = self.newest_manifest() if (
                wanted == "latest" and self.repo.name == repos.PRIMARY) else None
            outcome: tuple[list[Reference], list[str], str, int, int] | None = None
            if guess is not None:
                # restic resolves `latest` itself (saving a `restic snapshots` start); the
                # result counts only if it restored the snapshot the manifest belongs to.
                with contextlib.suppress(ResticError):
                    outcome = self._quick_restore(guess, latest=True)
                if outcome is not None and self.restored == {guess.short_id}:
                    snap = guess
                else:
                    self.steps.append("the latest snapshot is not the newest manifest's; "
                                      "verifying the latest")
                    outcome = None
                    self.mismatches.clear()
            if outcome is None:
                snap = self.resolve(wanted)
                outcome = self._quick_restore(snap)
            _, changed, manifest_id, files, size = outcome
        finally:
            self.wipe()
            checker.join()
        checker.result()
        total, _ = self.manifest_coverage(manifest_id)
        return self._result(snap, files=files, size=size, total=total, changed=changed,
                            restore_seconds=None, files_restored=None, bytes_restored=None)

    def _quick_check(self) -> None:
        """`restic check` alongside the restore; first asks restic its version for the run's
        evidence record, so that start is not paid after the restore."""
        _ = self.ctx.restic_version
        self.check(no_lock=True)

    def _quick_restore(self, snap: SnapshotRef, *, latest: bool = False
                       ) -> tuple[list[Reference], list[str], str, int, int]:
        refs, changed, manifest_id = self.references(snap)
        root = self.scratch_dir()
        seconds = self.restore(snap, root, [r.path for r in refs], latest=latest)
        self.timings["restore"] = round(seconds, 3)
        self.steps.append(f"restored {len(refs)} manifest file(s) of "
                          f"{'/'.join(sorted(self.restored)) or snap.short_id} in "
                          f"{seconds:.1f}s")
        files, size = self._hash(root, refs)
        self.wipe()
        return refs, changed, manifest_id, files, size

    def newest_manifest(self) -> SnapshotRef | None:
        """The snapshot of the job's newest source manifest (a guess at `latest`)."""
        with self.ctx.store.read() as conn:
            row = conn.execute(select(manifest_table.c.snapshot_id).where(
                manifest_table.c.job == self.job.name).order_by(
                manifest_table.c.id.desc()).limit(1)).first()
            if row is None:
                return None
            run = conn.execute(select(runs.c.snapshot_time).where(
                runs.c.job == self.job.name, runs.c.kind == "backup",
                runs.c.snapshot_id.in_([row.snapshot_id, row.snapshot_id[:8]]),
                runs.c.snapshot_time.is_not(None)).order_by(runs.c.id.desc()).limit(1)).first()
        if run is None:
            return None
        return SnapshotRef(id=row.snapshot_id, short_id=row.snapshot_id[:8],
                           time=run.snapshot_time, original=None)

    def list_snapshot(self, snap: SnapshotRef) -> Listing:
        out = Listing()
        self.count()
        repos.run_restic(self.ctx.local, restic.ls(self.repo.url, self.repo.password, snap.id),
                         job=self.job.name, what=f"listing snapshot {snap.short_id}",
                         timeout=self.ctx.timeout, stdout_sink=out.feed)
        return out.close()

    def _hash(self, root: Path, refs: list[Reference]) -> tuple[int, int]:
        started = time.monotonic()
        files, size = self.compare(root, refs)
        self.timings["hash"] = round(time.monotonic() - started, 3)
        return files, size

    def _result(self, snap: SnapshotRef, *, files: int, size: int, total: int | None,
                changed: list[str], restore_seconds: float | None,
                files_restored: int | None, bytes_restored: int | None) -> VerifyResult:
        rto = self.job.verify.rto
        if self.mode == "full" and rto is not None and restore_seconds is not None \
                and restore_seconds > rto:
            self.failures.append(f"restore took {restore_seconds:.1f}s, more than the RTO of "
                                 f"{rto}s")
        status = ExitStatus.OK
        error = None
        self.mismatches.extend(self.check_mismatches)
        self.failures.extend(self.check_failures)
        if self.mismatches or self.failures:
            status = ExitStatus.BAD_DATA
            listed = [f"{m.path} ({m.reason})" for m in self.mismatches] + self.failures
            error = (f"{self.job.name}: BAD DATA in snapshot {snap.short_id} of "
                     f"{self.repo.name}: " + "; ".join(listed))
        elif files == 0:
            status = ExitStatus.FAILED
            error = (f"{self.job.name}: nothing could be compared: the manifest of snapshot "
                     f"{snap.short_id} has no usable reference "
                     f"({len(changed)} file(s) changed since snapshot); the data is not proven")
        coverage = round(min(files, total) / total, 6) if total else None
        return VerifyResult(
            job=self.job.name, status=status, error=error, mode=self.mode,
            repository=self.repo.name, snapshot_id=snap.id,
            snapshot_time=parse_time(snap.time).isoformat(),
            files_checked=files, bytes_checked=size, mismatches=list(self.mismatches),
            changed_since_snapshot=changed, check_output=self.check_output,
            restore_seconds=round(restore_seconds, 3) if restore_seconds is not None else None,
            rto_seconds=rto, coverage_ratio=coverage, restic_invocations=self.invocations,
            files_restored=files_restored, bytes_restored=bytes_restored,
            failures=list(self.failures), commands=list(self.commands),
            timings=dict(self.timings), steps=list(self.steps), run_id=self.run_id)


class _Background:
    """Run a function in a thread; `result()` joins and re-raises its exception."""

    def __init__(self, fn: Callable[[], object]) -> None:
        self._value: object = None
        self._error: BaseException | None = None

        def target() -> None:
            try:
                self._value = fn()
            except BaseException as exc:  # handed to the caller in result()
                self._error = exc

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _inside(root: Path, path: str) -> Path:
    """Where restic put an absolute snapshot path under the restore target."""
    return root / path.lstrip("/")


def _chunks(paths: list[str]) -> Iterator[list[str]]:
    """--include lists whose command line stays below INCLUDE_ARGV_BYTES."""
    chunk: list[str] = []
    used = 0
    for path in paths:
        cost = len(os.fsencode(restic.escape_glob(path))) + len("--include") + 2
        if chunk and used + cost > INCLUDE_ARGV_BYTES:
            yield chunk
            chunk, used = [], 0
        chunk.append(path)
        used += cost
    if chunk:
        yield chunk


def _local_failure(target: Path, stderr: str) -> str | None:
    """Why the restore target itself failed (disk full, read-only, ...), or None.

    restic prints one error per file and only the tail of stderr is kept, so a full disk
    is also recognised from the file system itself."""
    found = _LOCAL_FAILURE.search(stderr)
    if found:
        return found.group(0)
    try:
        fs = os.statvfs(target)
    except OSError:
        return None
    if fs.f_bavail * fs.f_frsize < FREE_SPACE_MARGIN // 64:
        return "no space left on device"
    if fs.f_files and not fs.f_favail:
        return "no space left on device (no free inodes)"
    return None


def _restore_errors(stderr: str) -> list[tuple[str, str]]:
    """(path, message) of restic 0.14's `ignoring error for PATH: MESSAGE` lines."""
    found = []
    for line in stderr.splitlines():
        if line.startswith("ignoring error for "):
            path, _, message = line.removeprefix("ignoring error for ").rpartition(": ")
            found.append((path or line, message))
    if not found and "There were" in stderr and "errors" in stderr:
        found.append(("restore", tail(stderr, 5)))
    return found


def _check_errors(text: str) -> list[str]:
    skip = ("create exclusive lock", "load indexes", "check all packs", "check snapshots",
            "read ", "no errors", "Fatal: repository contains errors", "using temporary cache")
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.startswith("[") and not line.startswith(skip)]
    return lines or ["restic check reported errors"]


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"

