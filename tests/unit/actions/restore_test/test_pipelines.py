"""The quick and full pipelines on FakeRunners: what they run, and that a restic failure or
damage is never a pass."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from backupctl.actions import verify as verify_action
from backupctl.actions.context import Context
from backupctl.actions.restore_test import full, snapshot
from backupctl.actions.restore_test.snapshot import References
from backupctl.config.schema import Job
from backupctl.execute import Result
from backupctl.execute.fake import Call, FakeRunner
from backupctl.state import queries
from backupctl.state.db import StateError
from backupctl.state.records import BackupDetails, ManifestSummary
from backupctl.status import ExitStatus
from backupctl.verify.listing import files_digest
from tests import runs as seed
from tests.unit.actions.conftest import make_context

SNAP = "4a04c7b9" + "0" * 56
TIME = "2026-11-25T02:00:01.123456789Z"
FILES = {"/srv/emr/a.dat": b"patient A\n", "/srv/emr/b b.dat": b"patient B\n" * 100}
DIGEST = files_digest((p, len(d)) for p, d in FILES.items())  # of the snapshot's listing


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _restore(files: dict[str, bytes], *, snapshot: str = SNAP) -> object:
    """Answer `restic restore` by writing `files` (or the --include'd ones) into --target."""

    def respond(call: Call) -> Result:
        words = call.words
        target = Path(words[words.index("--target") + 1])
        wanted = [w.replace("\\", "") for i, w in enumerate(words)
                  if i and words[i - 1] == "--include"]
        for path, data in files.items():
            if not wanted or path in wanted:
                (target / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
                (target / path.lstrip("/")).write_bytes(data)
        out = f"restoring <Snapshot {snapshot[:8]} of [/srv/emr] at {TIME}> to {target}\n"
        return Result(call.text, 0, out.encode())

    return respond


def _env(tmp_path: Path, *, digest: str = "") -> tuple[Context, Job, FakeRunner]:
    local = FakeRunner(host="local")
    ctx, job = make_context(tmp_path, local=local)
    summary = ManifestSummary(files_total=len(FILES), bytes_total=sum(map(len, FILES.values())),
                              snapshot_id=SNAP, files_digest=digest)
    seed.record(ctx.store, job="emr", snapshot_id=SNAP, snapshot_time=TIME,
                details=BackupDetails(manifest=summary), evidence=False)
    with ctx.store.transaction() as conn:
        queries.insert_manifest(conn, "emr", SNAP, [
            {"path": p, "size": len(d), "mtime": "2026-11-25T01:00:00.000000000+00:00",
             "sha256": _digest(d), "role": "sample", "state": "ok", "note": None}
            for p, d in FILES.items()])
    local.on("check", stdout=b"no errors were found\n")
    return ctx, job, local


@pytest.fixture
def env(tmp_path: Path) -> tuple[Context, Job, FakeRunner]:
    """A backup whose manifest predates the listing digest: `restic ls` tells."""
    return _env(tmp_path)


@pytest.fixture
def digest_env(tmp_path: Path) -> tuple[Context, Job, FakeRunner]:
    """A backup that recorded its listing's digest."""
    return _env(tmp_path, digest=DIGEST)


def _snapshots() -> bytes:
    """`restic snapshots --json` holding the newest backup's snapshot."""
    return json.dumps([{"id": SNAP, "short_id": SNAP[:8], "time": TIME}]).encode()


def _listing(snapshot: str = SNAP) -> bytes:
    lines = [json.dumps({"struct_type": "snapshot", "id": snapshot, "time": TIME})]
    lines += [json.dumps({"type": "file", "path": p, "size": len(d),
                          "mtime": "2026-11-25T01:00:00Z"}) for p, d in FILES.items()]
    return "\n".join(lines).encode()


def test_quick_restores_only_the_manifest_files_once_and_proves_them(
        env: tuple[Context, Job, FakeRunner]) -> None:
    ctx, job, local = env
    local.on("restore", respond=_restore(FILES))  # type: ignore[arg-type]

    result = verify_action.verify(ctx, job, mode="quick")

    assert result.status is ExitStatus.OK, result.error
    assert result.details.files_checked == 2 and result.details.mismatches == []
    (restore,) = local.commands("restore")
    assert restore.has("latest", "--host", "emr") and restore.words.count("--include") == 2
    assert local.commands("check")[0].has("--no-lock")
    assert not local.commands("snapshots"), "restic resolved latest itself"
    assert result.details.restic_invocations == 2  # check and restore of the test itself


def test_quick_finds_a_file_that_came_back_different(
        env: tuple[Context, Job, FakeRunner]) -> None:
    ctx, job, local = env
    local.on("restore", respond=_restore({**FILES,  # type: ignore[arg-type]
                                          "/srv/emr/a.dat": b"PATIENT A\n"}))
    result = verify_action.verify(ctx, job, mode="quick")
    assert result.status is ExitStatus.BAD_DATA
    assert "/srv/emr/a.dat (hash)" in (result.error or "")


@pytest.mark.parametrize("mode", ["quick", "full"])
def test_a_restic_that_cannot_restore_is_never_a_pass(
        digest_env: tuple[Context, Job, FakeRunner], mode: str) -> None:
    """The newest backup's snapshot is there (`restic snapshots` says so once the restore of
    `latest` failed), so the failed restore is the run's failure. A full restore (which of a
    damaged snapshot can take minutes) is not tried again; quick's small sample is, by id."""
    ctx, job, local = digest_env
    local.on("snapshots", stdout=_snapshots())
    local.on("restore", returncode=1, stderr="Fatal: unable to load index: pack lost")
    result = verify_action.verify(ctx, job, mode=mode)
    assert result.status is ExitStatus.FAILED
    assert "restic restore" in (result.error or "") and result.run_id is not None
    assert len(local.commands("restore")) == (1 if mode == "full" else 2)
    assert not list(ctx.config.settings.scratch_dir.iterdir()), "scratch wiped"


def test_damage_found_by_restic_check_is_bad_data(env: tuple[Context, Job, FakeRunner]) -> None:
    ctx, job, local = env
    local.on("restore", respond=_restore(FILES))  # type: ignore[arg-type]
    pack = "cb" * 32
    local.on("check", returncode=1, stdout=f"Pack ID does not match, want {pack}\n".encode(),
             stderr="Fatal: repository contains errors")
    result = verify_action.verify(ctx, job, mode="quick")
    assert result.status is ExitStatus.BAD_DATA
    assert f"pack {pack} (check)" in (result.error or "")


def test_full_lists_the_latest_beside_the_restore_and_counts_every_file(
        env: tuple[Context, Job, FakeRunner]) -> None:
    """One `restic ls latest --host JOB` beside the restore says what must come back and
    that the newest backup's snapshot is the latest: no `restic snapshots`."""
    ctx, job, local = env
    local.on("ls", stdout=_listing())
    restore_files = _restore(FILES)
    beside: list[bool] = []

    def restore_while_checking(call: Call) -> Result:
        deadline = time.monotonic() + 5
        while not local.commands("check") and time.monotonic() < deadline:
            time.sleep(0.01)
        beside.append(bool(local.commands("check")))
        return restore_files(call)  # type: ignore[operator, no-any-return]

    local.on("restore", respond=restore_while_checking)

    result = verify_action.verify(ctx, job, mode="full")

    assert result.status is ExitStatus.OK, result.error
    assert beside == [True], "restic check starts while the restore runs"
    details = result.details
    assert (details.files_restored, details.files_checked) == (2, 2)
    assert details.restore_ms is not None and details.coverage == "1.000000"
    assert local.commands("restore")[0].has("latest", "--host", "emr")
    (ls,) = local.commands("ls")
    assert ls.has("--host", "emr", "latest") and "--tag" not in ls.words
    assert not local.commands("snapshots"), "restic's latest came with the listing"
    assert details.restic_invocations == 3  # restore, ls, check
    assert local.commands("check")[0].has("--no-lock"), "beside the restore (shared lock)"
    assert not list(ctx.config.settings.scratch_dir.iterdir()), "scratch wiped"


def test_full_proves_the_real_latest_when_the_listing_names_another(
        env: tuple[Context, Job, FakeRunner]) -> None:
    """A newer snapshot of the host made outside backupctl: the fast path gives way, the
    snapshot is resolved and, having no source manifest, is not proven (never a pass)."""
    ctx, job, local = env
    foreign = "f0" * 32
    local.on("snapshots", stdout=json.dumps([
        {"id": SNAP, "short_id": SNAP[:8], "time": TIME},
        {"id": foreign, "short_id": foreign[:8], "time": "2026-11-26T02:00:00Z"}]).encode())
    local.on("ls", stdout=json.dumps({"struct_type": "snapshot", "id": foreign,
                                      "time": "2026-11-26T02:00:00Z"}).encode())
    local.on("restore", respond=_restore(FILES))  # type: ignore[arg-type]

    result = verify_action.verify(ctx, job, mode="full")

    assert result.status is ExitStatus.FAILED
    assert "no source manifest" in (result.error or "")
    assert local.commands("snapshots"), "resolved the slow way"
    assert not list(ctx.config.settings.scratch_dir.iterdir()), "scratch wiped"


def test_full_whose_newest_snapshot_is_gone_is_bad_data_not_a_failed_restore(
        env: tuple[Context, Job, FakeRunner]) -> None:
    """restic finds no latest (the newest backup's snapshot was deleted): the fast path's
    failed restore gives way to the slow path, which names the missing snapshot (exit 3)."""
    ctx, job, local = env
    nothing = "latest snapshot for criteria not found: no snapshot found"
    local.on("snapshots", stdout=b"[]")
    local.on("ls", returncode=1, stderr=nothing)
    local.on("restore", returncode=1, stderr=nothing)

    result = verify_action.verify(ctx, job, mode="full")

    assert result.status is ExitStatus.BAD_DATA, result.error
    assert SNAP[:8] in (result.error or "") and "missing" in (result.error or "")
    assert not list(ctx.config.settings.scratch_dir.iterdir()), "scratch wiped"


def test_full_restore_failing_on_the_newest_snapshot_is_not_tried_twice(
        env: tuple[Context, Job, FakeRunner]) -> None:
    """The listing names the newest backup's snapshot, so it is there: a restore that
    fails on it is the run's failure, and restic (whose restore of a damaged snapshot can
    take minutes) is not asked again."""
    ctx, job, local = env
    local.on("ls", stdout=json.dumps({"struct_type": "snapshot", "id": SNAP,
                                      "time": TIME}).encode())
    local.on("restore", returncode=1, stderr="Load(<data/0123abcd>, 0, 0) returned error")

    result = verify_action.verify(ctx, job, mode="full")

    assert result.status is not ExitStatus.OK
    assert len(local.commands("restore")) == 1 and not local.commands("snapshots")
    assert not list(ctx.config.settings.scratch_dir.iterdir()), "scratch wiped"


@pytest.mark.parametrize("recorded", [False, True], ids=["listed beside", "by digest"])
def test_full_names_a_file_missing_from_the_restore_once(tmp_path: Path,
                                                         recorded: bool) -> None:
    """Listed beside the restore (older manifests), or after it when the tree does not give
    the backup's digest: the missing file is named, once."""
    ctx, job, local = _env(tmp_path, digest=DIGEST if recorded else "")
    local.on("ls", stdout=_listing())
    local.on("restore", respond=_restore({"/srv/emr/a.dat": FILES["/srv/emr/a.dat"]}))  # type: ignore[arg-type]

    result = verify_action.verify(ctx, job, mode="full")

    assert result.status is ExitStatus.BAD_DATA
    assert [(m.path, m.reason) for m in result.details.mismatches] == [
        ("/srv/emr/b b.dat", "missing")]
    (ls,) = local.commands("ls")
    if recorded:
        assert ls.has(SNAP) and "latest" not in ls.words, "the restored snapshot, by its id"


def test_full_by_the_backups_digest_runs_no_listing(
        digest_env: tuple[Context, Job, FakeRunner]) -> None:
    """The restored tree gives the digest the backup recorded of the snapshot's listing:
    every file came back with its size, and restic runs twice (restore, check)."""
    ctx, job, local = digest_env
    local.on("restore", respond=_restore(FILES))  # type: ignore[arg-type]

    result = verify_action.verify(ctx, job, mode="full")

    assert result.status is ExitStatus.OK, result.error
    details = result.details
    assert (details.files_restored, details.files_checked) == (2, 2)
    assert details.bytes_restored == sum(map(len, FILES.values()))
    assert not local.commands("ls") and not local.commands("snapshots")
    assert details.restic_invocations == 2 and details.coverage == "1.000000"
    (restore,) = local.commands("restore")
    assert restore.has("latest", "--host", "emr") and "--tag" not in restore.words, \
        "restic's latest of the host, whoever made it"
    assert not list(ctx.config.settings.scratch_dir.iterdir()), "scratch wiped"


def _after_the_restore_starts(local: FakeRunner, monkeypatch: pytest.MonkeyPatch, *,
                              fail: Exception | None = None) -> None:
    """The manifest's rows load only once the restore runs (or fail to): a restore that
    waited for them would make the load time out."""
    restoring = threading.Event()
    respond = _restore(FILES)

    def restore(call: Call) -> Result:
        restoring.set()
        return respond(call)  # type: ignore[operator, no-any-return]

    def references(*args: Any, **kwargs: Any) -> References:
        assert restoring.wait(5), "the restore waited for the manifest's rows"
        if fail is not None:
            raise fail
        return snapshot.references(*args, **kwargs)

    monkeypatch.setattr(full, "references", references)
    local.on("restore", respond=restore)


def test_full_loads_the_manifests_rows_beside_the_restore(
        digest_env: tuple[Context, Job, FakeRunner], monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, job, local = digest_env
    _after_the_restore_starts(local, monkeypatch)
    result = verify_action.verify(ctx, job, mode="full")
    assert result.status is ExitStatus.OK, result.error
    assert result.details.files_checked == 2


def test_full_whose_manifest_rows_cannot_load_fails_and_wipes_the_restore(
        digest_env: tuple[Context, Job, FakeRunner], monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, job, local = digest_env
    _after_the_restore_starts(local, monkeypatch, fail=StateError("state database is gone"))
    result = verify_action.verify(ctx, job, mode="full")
    assert result.status is ExitStatus.FAILED
    assert "state database is gone" in (result.error or "")
    assert not list(ctx.config.settings.scratch_dir.iterdir()), "scratch wiped"


def test_full_by_digest_a_file_of_another_size_is_named(
        digest_env: tuple[Context, Job, FakeRunner]) -> None:
    ctx, job, local = digest_env
    local.on("ls", stdout=_listing())
    local.on("restore", respond=_restore({**FILES,  # type: ignore[arg-type]
                                          "/srv/emr/a.dat": b"patient A, longer\n"}))
    result = verify_action.verify(ctx, job, mode="full")
    assert result.status is ExitStatus.BAD_DATA
    assert ("/srv/emr/a.dat", "size") in [(m.path, m.reason) for m in result.details.mismatches]


def test_full_by_digest_unlistable_after_a_differing_restore_is_never_a_pass(
        digest_env: tuple[Context, Job, FakeRunner]) -> None:
    ctx, job, local = digest_env
    local.on("ls", returncode=1, stderr="Fatal: unable to load index")
    local.on("restore", respond=_restore({"/srv/emr/a.dat": FILES["/srv/emr/a.dat"]}))  # type: ignore[arg-type]
    result = verify_action.verify(ctx, job, mode="full")
    assert result.status is ExitStatus.FAILED, result.error
    assert not list(ctx.config.settings.scratch_dir.iterdir()), "scratch wiped"


def test_full_by_digest_whose_newest_snapshot_is_gone_is_bad_data(
        digest_env: tuple[Context, Job, FakeRunner]) -> None:
    ctx, job, local = digest_env
    local.on("snapshots", stdout=b"[]")
    local.on("restore", returncode=1, stderr="latest snapshot for criteria not found")
    result = verify_action.verify(ctx, job, mode="full")
    assert result.status is ExitStatus.BAD_DATA, result.error
    assert SNAP[:8] in (result.error or "") and "missing" in (result.error or "")


def test_full_by_digest_restoring_another_snapshot_gives_way_to_the_slow_path(
        digest_env: tuple[Context, Job, FakeRunner]) -> None:
    """restic's latest is a snapshot made outside backupctl (its short id in the restore's
    output): resolved the slow way, it has no manifest, so it is never a pass."""
    ctx, job, local = digest_env
    foreign = "f0" * 32
    local.on("snapshots", stdout=json.dumps([
        {"id": SNAP, "short_id": SNAP[:8], "time": TIME},
        {"id": foreign, "short_id": foreign[:8], "time": "2026-11-26T02:00:00Z"}]).encode())
    local.on("restore", respond=_restore(FILES, snapshot=foreign))  # type: ignore[arg-type]
    result = verify_action.verify(ctx, job, mode="full")
    assert result.status is ExitStatus.FAILED
    assert "no source manifest" in (result.error or "")
    assert not list(ctx.config.settings.scratch_dir.iterdir()), "scratch wiped"
