"""The quick verify's due files and what it restores (proof freshness, SPEC §12)."""

from __future__ import annotations

from pathlib import Path

from backupctl.actions import repo as repos
from backupctl.actions.context import Context
from backupctl.actions.restore_test import freshness
from backupctl.actions.restore_test.snapshot import Reference, References
from backupctl.state import proofs
from tests.unit.actions.conftest import make_context

T0 = "2026-12-01T00:00:00.000000+00:00"
M = "2026-11-01T00:00:00.000000000+00:00"
SHA = "a" * 64


def _tree(ctx: Context, paths: list[str]) -> None:
    with ctx.store.transaction() as conn:
        proofs.apply(conn, "emr", snapshot_id="s1", remove=[], add=[
            {"path": p, "size": 1, "mtime": M, "sha256": SHA, "seen_at": T0,
             "proven_at": None} for p in paths], files=len(paths), changed=len(paths),
            untracked=0, at=T0)


def _refs(paths: list[str]) -> References:
    return References("s1", tuple(Reference(p, 1, SHA) for p in paths), (), None)


def test_dense_leaf_directories_are_restored_whole(tmp_path: Path) -> None:
    ctx, job = make_context(tmp_path, verify={"prove_within": "30d"})
    dense = [f"/srv/a/f{i:03d}" for i in range(100)]
    half = [f"/srv/b/f{i:03d}" for i in range(200)]
    nested = [f"/srv/c/f{i:03d}" for i in range(100)] + ["/srv/c/sub/x"]
    sparse = [f"/srv/d/f{i:03d}" for i in range(10)]
    _tree(ctx, dense + half + nested + sparse)
    chosen = dense + half[:100] + nested[:100] + sparse[:3]

    restored = freshness.includes(ctx, job, _refs(chosen))

    # /srv/a: all of it; /srv/b: half of it; /srv/c has a subdirectory; /srv/d: too few
    assert restored == nested[:100] + sparse[:3] + ["/srv/a", "/srv/b"]


def test_without_prove_within_every_file_is_its_own_include(tmp_path: Path) -> None:
    ctx, job = make_context(tmp_path)
    paths = [f"/srv/a/f{i:03d}" for i in range(100)]
    _tree(ctx, paths)
    assert freshness.includes(ctx, job, _refs(paths)) == paths


def test_due_files_join_the_manifest_only_for_the_snapshot_the_state_mirrors(
        tmp_path: Path) -> None:
    ctx, job = make_context(tmp_path, verify={"prove_within": "30d"},
                            schedule={"backup": "*-*-* 02:00:00", "verify": "*-*-* 04:00:00"})
    _tree(ctx, [f"/srv/f{i:02d}" for i in range(60)])
    primary = repos.named(job, repos.PRIMARY)
    refs = freshness.with_due(ctx, job, primary, _refs(["/srv/f00"]))
    # 60 files / 30 daily runs = 2, plus up to 2 more for the 60 new files: 4 due files
    # beside the manifest's one (which may be among them)
    assert refs.refs[0].path == "/srv/f00" and len(refs.refs) in (4, 5)
    assert len({r.path for r in refs.refs}) == len(refs.refs)
    other = References("s0", (Reference("/srv/f00", 1, SHA),), (), None)
    assert freshness.with_due(ctx, job, primary, other) == other


def test_only_references_that_came_back_and_matched_are_proven() -> None:
    from backupctl.actions.restore_test.pipeline import Tested
    from backupctl.actions.restore_test.verdict import Findings
    from backupctl.state.records import Mismatch
    from backupctl.verify.listing import SnapshotRef

    lossy = "/srv/\ufffd.txt"
    refs = References("s1", (Reference("/srv/a", 1, SHA), Reference("/srv/b", 1, SHA),
                             Reference(lossy, 1, SHA, "/srv/\udc83.txt")), (), None)
    snap = SnapshotRef("s1", "s1", "2026-12-01T00:00:00Z", None)

    def tested(*bad: str) -> Tested:
        return Tested(snap, refs, Findings(mismatches=tuple(
            Mismatch(path=p, reason="hash") for p in bad)), None)

    assert freshness.proven(tested("/srv/b")) == [("/srv/a", 1, SHA), (lossy, 1, SHA)]
    # a mismatch in a name's own safe form (not the listed one): the lossy name is not
    # credited, the plain ones that came back are
    assert freshness.proven(tested("/srv/\\x83.txt")) == [("/srv/a", 1, SHA),
                                                          ("/srv/b", 1, SHA)]


def test_a_name_with_a_newline_that_mismatched_is_never_proven() -> None:
    """A mismatch names the file in its shown form (control characters escaped): the
    reference it stands for is found by that form, not by the raw name."""
    from backupctl.actions.restore_test.pipeline import Tested
    from backupctl.actions.restore_test.verdict import Findings
    from backupctl.state.records import Mismatch
    from backupctl.verify.listing import SnapshotRef
    from backupctl.verify.names import shown

    hostile = "/srv/ok\nverify: all proven"
    refs = References("s1", (Reference("/srv/a", 1, SHA), Reference(hostile, 1, SHA)), (),
                      None)
    snap = SnapshotRef("s1", "s1", "2026-12-01T00:00:00Z", None)
    tested = Tested(snap, refs, Findings(mismatches=(
        Mismatch(path=shown(hostile), reason="hash"),)), None)

    assert freshness.proven(tested) == [("/srv/a", 1, SHA)]


def test_the_read_data_rotation_never_asks_restic_for_more_than_256_groups(
        tmp_path: Path) -> None:
    """400 daily quick verifies within prove_within: restic 0.14-0.18 refuse t > 256."""
    ctx, job = make_context(tmp_path, verify={"prove_within": "400d"},
                            schedule={"backup": "*-*-* 02:00:00", "verify": "*-*-* 04:00:00"})
    primary = repos.named(job, repos.PRIMARY)
    assert freshness.read_data(ctx, job, primary) == (1, 256)
