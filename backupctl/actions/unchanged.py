"""An unchanged backup without `restic ls` (issue #25): the listing of the job's previous
snapshot, kept in the state database, stands for the new snapshot's when restic itself shows
that no regular file was added, changed or removed.

The manifest, the tripwire and the proof freshness read a snapshot's *listing*: its regular
files with path, size and mtime, and its directory count (verify/listing.py). Each successful
backup keeps its listing in the `listings` table (one row per job, gzip'd JSON with its
SHA-256), in the transaction that records the run; an unchanged listing is not written
again. Shared by every orchestrator of a PostgreSQL state, so whichever one backs the job up
next finds it.

The next backup passes that snapshot to restic as `--parent`. restic compares every regular
file with the parent's node at the same path (size, mtime, ctime, inode: restic's own test
for reading a file again) and counts it new, changed or unmodified, and counts every
directory. When its summary says 0 new, 0 changed, as many unmodified as the kept listing
has files and as many directories, every file of the new snapshot is one of the parent's
with the same size, mtime and content, and none is missing: the kept listing *is* the new
snapshot's. Anything else (a count that differs, a parent restic cannot find, a listing
whose recorded digest does not match, another orchestrator's newer backup) falls back to
`restic ls`, as before this module: never a listing that might be wrong.

With a kept listing the manifest's files are hashed on the source *beside* `restic backup`
(`Early`): chosen from the kept listing as they would be from the new one, and reused by
`manifest.build` for every file the new snapshot lists with the same path, size and mtime
(an unchanged backup: all of them; the others are hashed after the listing, as before).

The counts come from the host's restic, as the snapshot's id always has: a host that lies
about them gains nothing a restore test does not catch, since the manifest then describes the
kept files (their digest, counts and references), which a snapshot holding anything else
fails against.

What the listing also gives, the snapshot's whole id and time, must then come from the
backup: restic 0.17+ prints both in its summary; with 0.14 (8 digits, no time) a job qualifies
when its repository is a directory on the orchestrator (`url` or `local_url`): the id is the
one file in `snapshots/` with those 8 digits, and the time is the one backupctl gave restic
(`--time`, in UTC, to the second; `TZ=UTC0` in restic's environment, `env TZ=UTC0 restic …`
on a host over SSH).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import threading
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from backupctl import execute
from backupctl.actions.context import Context
from backupctl.config.schema import Job
from backupctl.config.served import local_directory
from backupctl.execute import Arg, Env, Result, Runner
from backupctl.restic.parse import BackupSummary, full_id, parse_time
from backupctl.restic.versions import at_least
from backupctl.state import queries
from backupctl.state.records import BackupDetails, read
from backupctl.state.schema import listings
from backupctl.verify import manifest
from backupctl.verify.listing import FileNode, Listing

log = logging.getLogger(__name__)

SUMMARY_SINCE = (0, 17, 0)  # `backup_start` and the whole snapshot id in the summary
RESTIC_TIME = "%Y-%m-%d %H:%M:%S"  # what `restic backup --time` reads (in restic's TZ)
# A listing's JSON gzips 4-10×: a body inflating beyond this is not one (a gzip bomb).
INFLATE_RATIO, INFLATE_SLACK = 64, 1 << 20
UTC_ZONE = Env((("TZ", "UTC0"),))  # restic reads --time in UTC (locally; `env` over SSH)


@dataclass(frozen=True)
class Parent:
    """What the backup asks of restic so that its summary can stand for `restic ls`."""

    kept: Listing  # of the job's newest successful backup (its whole id, its time)
    argv: tuple[Arg, ...]  # `--parent ID` (and `--time T` in UTC for restic 0.14)
    time: str | None = None  # the snapshot's time, when backupctl gave it

    def missing(self, result: Result) -> bool:
        """restic could not find the parent (removed since): run again without it."""
        return result.returncode == 1 and (
            f'no matching ID found for prefix "{self.kept.snapshot_id}"' in result.stderr)


# -- keeping ------------------------------------------------------------------------------

def keep(conn: Connection, job: str, listing: Listing, *, kept: bool) -> None:
    """Keep the listing of `job`'s new snapshot, with the successful run that made it (in
    its transaction). `kept`: the listing is the parent's, whose body is stored already."""
    assert listing.snapshot_time is not None
    head = {"snapshot_id": listing.snapshot_id, "snapshot_time": listing.snapshot_time}
    if kept and conn.execute(update(listings).where(listings.c.job == job)
                             .values(**head)).rowcount == 1:
        return
    body = json.dumps({"directories": listing.directories, "files": [
        [f.path, f.size, f.mtime_ns] for f in listing.files]}).encode()
    conn.execute(delete(listings).where(listings.c.job == job))
    conn.execute(insert(listings).values(job=job, **head,
                                         sha256=hashlib.sha256(body).hexdigest(),
                                         body=gzip.compress(body, compresslevel=1, mtime=0)))


def load(ctx: Context, job: Job) -> Listing | None:
    """The kept listing, if it is the job's newest successful backup's and matches what that
    backup recorded; else None (the backup lists its snapshot with `restic ls`)."""
    row = ctx.store.query(_row, job.name)
    if row is None:
        return None
    try:
        body = _inflate(bytes(row.body))
        if hashlib.sha256(body).hexdigest() != row.sha256:
            raise ValueError("it does not match its SHA-256")
        kept = _kept(row.snapshot_id, row.snapshot_time, json.loads(body))
    except (zlib.error, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: the kept listing of snapshot %s is unreadable (%s): listing with "
                    "restic ls", job.name, str(row.snapshot_id)[:8], exc)
        return None
    return kept if _recorded(ctx, job, kept) else None


def _inflate(data: bytes) -> bytes:
    """gunzip, refusing more than INFLATE_RATIO times the stored size (a crafted row in a
    database in someone else's hands must not take the orchestrator's memory)."""
    inflater = zlib.decompressobj(wbits=31)  # gzip
    body = inflater.decompress(data, INFLATE_RATIO * len(data) + INFLATE_SLACK)
    if inflater.unconsumed_tail or not inflater.eof:
        raise ValueError("it inflates beyond what a listing compresses to, or is cut short")
    return body


def _row(conn: Connection, job: str) -> Any:
    return conn.execute(select(listings).where(listings.c.job == job)).first()


def _kept(snapshot_id: str, snapshot_time: str, body: dict[str, Any]) -> Listing:
    """The row as a listing; ValueError unless its head is what `keep` writes (the head is
    not under the body's hash, and restic is given the id, `parent` reads the time)."""
    if full_id(snapshot_id) is None:
        raise ValueError("its snapshot id is not a whole id")
    parse_time(snapshot_time)  # ValueError if it is not a time
    files = [FileNode(path=str(p), size=int(s), mtime_ns=int(m)) for p, s, m in body["files"]]
    return Listing(snapshot_id=snapshot_id, snapshot_time=snapshot_time, files=files,
                   directories=int(body["directories"]))


def _recorded(ctx: Context, job: Job, kept: Listing) -> bool:
    """The job's newest successful backup made the kept snapshot, and its manifest's digest
    and counts are the kept listing's (another orchestrator's newer backup, or a listing
    that is not the one recorded, is not used)."""
    newest = ctx.store.query(queries.last_run, job.name, "backup", repository="primary",
                             status="success")
    if newest is None or not newest.snapshot_id \
            or not kept.snapshot_id.startswith(newest.snapshot_id):
        return False
    summary = read(BackupDetails, newest.details).manifest
    return summary is not None and summary.files_digest == kept.digest \
        and summary.files_total == len(kept.files) and summary.bytes_total == kept.total_bytes


# -- the backup ---------------------------------------------------------------------------

def parent(ctx: Context, job: Job, *, version: str) -> Parent | None:
    """The `--parent` (and `--time`) to give `restic backup`, or None: no kept listing, or
    the new snapshot's id or time could not be known without `restic ls`."""
    kept = load(ctx, job)
    if kept is None:
        return None
    argv = ("--parent", kept.snapshot_id)
    if at_least(version, SUMMARY_SINCE):
        return Parent(kept, argv)
    if local_directory(job.repository.orchestrator_url) is None:
        return None
    now = datetime.now(UTC).replace(microsecond=0)  # restic's own clock would say the same
    if kept.snapshot_time is None or now <= parse_time(kept.snapshot_time):
        return None  # the same second as the parent: let restic choose its time
    return Parent(kept, (*argv, "--time", now.strftime(RESTIC_TIME), UTC_ZONE),
                  time=now.isoformat())


def listing(job: Job, parent: Parent | None, summary: BackupSummary) -> Listing | None:
    """The new snapshot's listing without `restic ls`, when restic's counts show that it is
    the parent's; else None."""
    if parent is None:
        return None
    kept = parent.kept
    if (summary.files_new, summary.files_changed) != (0, 0) \
            or summary.files_unmodified != len(kept.files) \
            or summary.total_files != len(kept.files) \
            or summary.total_bytes != kept.total_bytes or summary.dirs != kept.directories:
        return None
    whole = summary.full_id or _whole_id(job, summary.snapshot_id)
    time = summary.started or parent.time
    if whole is None or time is None:
        return None
    return Listing(snapshot_id=whole, snapshot_time=time, files=kept.files,
                   directories=kept.directories)


def _whole_id(job: Job, short: str) -> str | None:
    """restic 0.14's 8 digits → the snapshot's whole id: the one file in the local
    repository's `snapshots/` that starts with them."""
    directory = local_directory(job.repository.orchestrator_url)
    if directory is None or len(short) != 8 or short.strip("0123456789abcdef"):
        return None  # (the summary comes from the host: never a pattern of its making)
    try:
        found = [p.name for p in (directory / "snapshots").glob(f"{short}*")]
    except OSError:
        return None
    return found[0] if len(found) == 1 and len(found[0]) == 64 else None


# -- hashing beside the backup ------------------------------------------------------------

class Early:
    """The manifest's hashing of the kept listing's choice, in a thread beside `restic
    backup` (the key derivation and the walk of restic, the reading and hashing here: two
    cores). `hashed()` waits for it; `close()` must follow in any case."""

    def __init__(self, runner: Runner, selection: manifest.Selection, *, job: str,
                 timeout: float | None) -> None:
        self.selection = selection
        self._found: dict[tuple[str, int, int], dict[str, Any]] = {}
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(
            runner, job, timeout, execute.current()), name=f"{job}-hash-early", daemon=True)
        self._thread.start()

    def _run(self, runner: Runner, job: str, timeout: float | None,
             scope: execute.Scope) -> None:
        execute.adopt(scope)  # stops with the job (a lost lease, a signal)
        try:
            self._found = manifest.hash_early(runner, self.selection, job=job, timeout=timeout)
        except BaseException as exc:  # a stopped run too: nothing is reused
            self._failed = exc

    def hashed(self) -> manifest.Hashed:
        """The hashes taken, or none when the early hashing failed (`build` then hashes
        every file itself and reports any failure there)."""
        self._thread.join()
        if self._failed is not None:
            log.debug("hashing beside the backup failed: %s", self._failed)
            return {}
        return self._found

    def close(self) -> None:
        self._thread.join()
