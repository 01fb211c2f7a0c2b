"""The kept listing of an unchanged backup: kept, trusted only when it is the newest recorded
backup's, and used only when restic's counts show that no file was new, changed or removed.
Real SQLite state; restic itself in tests/integration/actions/test_unchanged.py."""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from backupctl import execute
from backupctl.actions import unchanged
from backupctl.actions.context import Context
from backupctl.config.schema import Job
from backupctl.execute import Env, Result
from backupctl.execute.local import LocalRunner
from backupctl.restic.parse import BackupSummary
from backupctl.state import queries
from backupctl.state.records import BackupDetails, ManifestSummary
from backupctl.state.schema import listings
from backupctl.verify import manifest
from backupctl.verify.listing import FileNode, Listing
from tests.unit.actions.conftest import make_context

WHOLE = "4a04c7b9" + "e" * 56
LATER = "5b15d8ca" + "f" * 56


def _listing(snapshot_id: str = WHOLE) -> Listing:
    return Listing(snapshot_id=snapshot_id, snapshot_time="2026-12-07T02:00:01.5Z",
                   files=[FileNode("/srv/emr/a", 10, 1), FileNode("/srv/emr/b\ufffd", 20, 2)],
                   directories=3)


def _record(ctx: Context, job: str, listing: Listing, *, status: str = "success",
            snapshot: str | None = None) -> None:
    """A finished backup run of `listing`'s snapshot, as backup.py records it."""
    details = BackupDetails(manifest=ManifestSummary(
        snapshot_id=listing.snapshot_id, files_total=len(listing.files),
        bytes_total=listing.total_bytes, files_digest=listing.digest))
    with ctx.store.transaction() as conn:
        run_id = queries.start_run(conn, job=job, kind="backup", repository="primary",
                                   operator="t", orchestrator="o", pid=1,
                                   started_at=ctx.store.now())
        queries.finish_run(conn, run_id, status=status, exit_code=0,
                           finished_at=ctx.store.now(), details=details,
                           snapshot_id=snapshot or listing.snapshot_id[:8])


def _summary(**counts: object) -> BackupSummary:
    base: dict[str, object] = dict(
        snapshot_id=LATER[:8], files_new=0, files_changed=0, files_unmodified=2,
        data_added=0, total_files=2, total_bytes=30, duration=0.1, dirs=3,
        full_id=LATER, started="2026-12-08T02:00:00.25Z")
    return BackupSummary(**{**base, **counts})  # type: ignore[arg-type]


def _keep(ctx: Context, job: str, listing: Listing, *, kept: bool = False) -> None:
    with ctx.store.transaction() as conn:
        unchanged.keep(conn, job, listing, kept=kept)


def _stored(ctx: Context) -> Any:
    with ctx.store.read() as conn:
        return conn.execute(select(listings)).one()


@pytest.fixture
def kept(tmp_path: Path) -> tuple[Context, Job]:
    ctx, job = make_context(tmp_path)
    _keep(ctx, job.name, _listing())
    _record(ctx, job.name, _listing())
    return ctx, job


def test_a_kept_listing_is_read_back_whole(kept: tuple[Context, Job]) -> None:
    ctx, job = kept
    found = unchanged.load(ctx, job)
    assert found is not None
    assert found.snapshot_id == WHOLE and found.files == _listing().files
    assert found.directories == 3 and found.digest == _listing().digest
    assert found.snapshot_time == _listing().snapshot_time


def test_the_parents_listing_is_not_written_again_a_changed_one_replaces_it(
        kept: tuple[Context, Job]) -> None:
    ctx, job = kept
    before = _stored(ctx)
    _keep(ctx, job.name, replace(_listing(LATER), files=[]), kept=True)  # body not read
    after = _stored(ctx)
    assert (after.snapshot_id, after.body, after.sha256) == (LATER, before.body,
                                                             before.sha256)
    changed = replace(_listing(LATER), files=[FileNode("/srv/emr/a", 11, 1)])
    _keep(ctx, job.name, changed)
    assert _stored(ctx).body != before.body
    with ctx.store.transaction() as conn:
        conn.execute(delete(listings))
    _keep(ctx, job.name, _listing(), kept=True)  # no row to update: written whole
    assert _stored(ctx).sha256 == before.sha256


def test_no_kept_listing_means_no_parent(tmp_path: Path) -> None:
    ctx, job = make_context(tmp_path)
    assert unchanged.parent(ctx, job, version="0.18.0") is None


def test_a_listing_another_backup_made_since_is_not_used(kept: tuple[Context, Job]) -> None:
    ctx, job = kept  # e.g. one whose listing could not be kept: its snapshot is not the kept one
    _record(ctx, job.name, _listing(LATER))
    assert unchanged.load(ctx, job) is None


def test_a_failed_newer_backup_leaves_the_kept_listing_usable(
        kept: tuple[Context, Job]) -> None:
    ctx, job = kept
    _record(ctx, job.name, _listing(LATER), status="failed")
    assert unchanged.load(ctx, job) is not None


@pytest.mark.parametrize("tamper", ["body", "body and its hash", "not gzip", "not json",
                                    "a gzip bomb", "cut short", "time not a time",
                                    "id not an id"])
def test_a_kept_listing_that_is_not_what_was_recorded_is_not_used(
        kept: tuple[Context, Job], tamper: str) -> None:
    ctx, job = kept
    data = json.loads(gzip.decompress(_stored(ctx).body))
    data["files"].pop()  # a file taken out of the listing
    raw = json.dumps(data).encode()
    choices: dict[str, dict[str, Any]] = {
        "body": {"body": gzip.compress(raw)},
        # the row's own hash made to match: the recorded manifest's digest still tells
        "body and its hash": {"body": gzip.compress(raw),
                              "sha256": hashlib.sha256(raw).hexdigest()},
        "not gzip": {"body": b"\x1f\x8b garbage"},
        "not json": {"body": gzip.compress(b"{"), "sha256": hashlib.sha256(b"{").hexdigest()},
        # 50 MB of spaces in ~50 KB: refused before it is inflated whole
        "a gzip bomb": {"body": gzip.compress(b" " * 50_000_000, compresslevel=1)},
        "cut short": {"body": gzip.compress(raw)[:-20]},
        # the row's head is not hashed: what restic is given must be what backupctl wrote
        "time not a time": {"snapshot_time": "\x1b[2J"},
        "id not an id": {"snapshot_id": WHOLE[:8] + " --no-scan"},
    }
    with ctx.store.transaction() as conn:
        conn.execute(update(listings).values(**choices[tamper]))
    assert unchanged.load(ctx, job) is None
    assert unchanged.parent(ctx, job, version="0.14.0") is None  # the backup goes on


def test_restic_0_17_needs_only_the_parent(kept: tuple[Context, Job]) -> None:
    ctx, job = kept
    parent = unchanged.parent(ctx, job, version="0.18.0")
    assert parent is not None
    assert parent.argv == ("--parent", WHOLE) and parent.time is None


def test_restic_0_14_is_given_the_time_in_utc_when_the_repository_is_a_local_directory(
        kept: tuple[Context, Job]) -> None:
    ctx, job = kept
    parent = unchanged.parent(ctx, job, version="0.14.0")
    assert parent is not None and parent.time is not None
    assert parent.argv[:3] == ("--parent", WHOLE, "--time")
    assert parent.time.endswith("+00:00") and parent.argv[3] == parent.time[:19].replace(
        "T", " ")
    assert parent.argv[4] == Env((("TZ", "UTC0"),))  # restic reads --time in its own zone


def test_restic_0_14_with_a_remote_repository_lists_the_snapshot(tmp_path: Path) -> None:
    ctx, job = make_context(tmp_path, repository={
        "url": "rest:http://backup01:8000/emr/", "password_file": str(tmp_path / "pw")})
    _keep(ctx, job.name, _listing())
    _record(ctx, job.name, _listing())
    assert unchanged.load(ctx, job) is not None
    assert unchanged.parent(ctx, job, version="0.14.0") is None
    assert unchanged.parent(ctx, job, version="0.17.3") is not None


def _parent(ctx: Context, job: Job) -> unchanged.Parent:
    parent = unchanged.parent(ctx, job, version="0.18.0")
    assert parent is not None
    return parent


def test_nothing_new_changed_or_removed_gives_the_kept_files_under_the_new_id_and_time(
        kept: tuple[Context, Job]) -> None:
    ctx, job = kept
    found = unchanged.listing(job, _parent(ctx, job), _summary())
    assert found is not None
    assert found.snapshot_id == LATER and found.snapshot_time == "2026-12-08T02:00:00.25Z"
    assert found.files == _listing().files and found.directories == 3


@pytest.mark.parametrize("counts", [
    {"files_new": 1, "total_files": 3},  # added
    {"files_changed": 1, "files_unmodified": 1},  # rewritten
    {"files_unmodified": 1, "total_files": 1, "total_bytes": 10},  # removed
    {"files_new": 1, "files_unmodified": 1},  # renamed: as many files, one new
    {"dirs": 4},  # a directory more (an empty one holds no file)
    {"dirs": 2},
    {"total_bytes": 31},
    {"full_id": None},  # 0.14's 8 digits and no local repository to find the rest in
    {"started": None},  # and no time given
])
def test_any_difference_lists_the_snapshot_with_restic(
        kept: tuple[Context, Job], counts: dict[str, object]) -> None:
    ctx, job = kept
    assert unchanged.listing(job, _parent(ctx, job), _summary(**counts)) is None


def test_no_parent_no_kept_listing(kept: tuple[Context, Job]) -> None:
    _, job = kept
    assert unchanged.listing(job, None, _summary()) is None


def test_restic_0_14s_eight_digits_are_found_in_the_local_repository(
        kept: tuple[Context, Job]) -> None:
    ctx, job = kept
    parent = unchanged.parent(ctx, job, version="0.14.0")
    assert parent is not None
    snapshots = Path(job.repository.orchestrator_url) / "snapshots"
    snapshots.mkdir(parents=True)
    summary = _summary(full_id=None, started=None)
    assert unchanged.listing(job, parent, summary) is None  # not there
    (snapshots / LATER).write_bytes(b"")
    found = unchanged.listing(job, parent, summary)
    assert found is not None and found.snapshot_id == LATER
    assert found.snapshot_time == parent.time
    (snapshots / (LATER[:8] + "0" * 56)).write_bytes(b"")  # two with those digits
    assert unchanged.listing(job, parent, summary) is None
    (snapshots / (LATER[:8] + "0" * 56)).unlink()
    # the 8 digits come from the host's restic: a pattern is never looked for
    assert unchanged.listing(job, parent, replace(summary, snapshot_id="5b15d8c?")) is None
    assert unchanged.listing(job, parent, replace(summary, snapshot_id="*")) is None


def test_only_restics_own_words_for_the_parent_mean_it_is_gone(
        kept: tuple[Context, Job]) -> None:
    ctx, job = kept
    parent = _parent(ctx, job)

    def result(code: int, stderr: str) -> Result:
        return Result(argv="restic backup", returncode=code, stderr=stderr)

    gone = f'Fatal: invalid id "{WHOLE}": no matching ID found for prefix "{WHOLE}"'
    assert parent.missing(result(1, gone))
    assert not parent.missing(result(1, "Fatal: unable to open config file"))
    assert not parent.missing(result(3, gone))
    assert not parent.missing(result(1, 'no matching ID found for prefix "4a04c7b9"'))


class _Stuck(LocalRunner):
    """Every command is a long `sleep`: the hashing beside the backup never ends by itself."""

    def run(self, argv, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.pop("stdin", None)
        return super().run(["sleep", "60"], **kwargs)


def test_the_hashing_beside_the_backup_stops_with_its_job(tmp_path: Path) -> None:
    _, job = make_context(tmp_path)
    selection = manifest.select(job, _listing(), history=lambda window: (0, set()),
                                host="local")
    with execute.job_scope() as scope:
        early = unchanged.Early(_Stuck(), selection, job=job.name, timeout=None)
        scope.cancel("the job's lease was lost")
        early._thread.join(timeout=30)  # the sleep is killed, not waited for
        assert not early._thread.is_alive()
        assert early.hashed() == {}
