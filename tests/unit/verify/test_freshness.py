"""Proof freshness: the share arithmetic, the selection order, the tree diff (SPEC §12)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backupctl.state.proofs import Known
from backupctl.verify import freshness
from backupctl.verify.listing import FileNode, ns_iso

T0 = "2026-12-01T00:00:00.000000+00:00"
T1 = "2026-12-02T00:00:00.000000+00:00"
T2 = "2026-12-03T00:00:00.000000+00:00"


def node(path: str, size: int = 10, mtime_ns: int = 1_000_000_000) -> FileNode:
    return FileNode(path, size, mtime_ns)


def known(n: FileNode, *, sha: str | None = "a" * 64, seen: str = T0,
          proven: str | None = None) -> Known:
    return Known(n.size, ns_iso(n.mtime_ns), sha, seen, proven)


@pytest.mark.parametrize(("files", "runs", "expected"), [
    (1_000_000, 30, 33_334), (40, 10, 4), (41, 10, 5), (7, 10, 1), (0, 10, 0),
    (10, 0, 10), (10, 1, 10)])
def test_share_is_the_files_divided_by_the_runs_rounded_up(files: int, runs: int,
                                                           expected: int) -> None:
    assert freshness.share(files, runs) == expected


@pytest.mark.parametrize(("files", "runs"), [(1000, 30), (41, 10), (7, 3), (999_983, 29)])
def test_runs_in_a_row_taking_their_share_oldest_first_reach_every_file(files: int,
                                                                          runs: int) -> None:
    proven: dict[int, int] = {}  # file → the run that last proved it (-1: never)
    share = freshness.share(files, runs)
    for run in range(runs):
        order = sorted(range(files), key=lambda f: proven.get(f, -1))
        for f in order[:share]:
            proven[f] = run
    assert len(proven) == files


def test_backup_takes_files_without_a_hash_first_then_the_longest_unproven() -> None:
    new, changed, unhashed = node("/new"), node("/changed", size=11), node("/unhashed")
    waiting, old, recent = node("/waiting"), node("/old"), node("/recent")
    state = {"/changed": known(node("/changed")),  # the state holds its previous content
             "/unhashed": known(unhashed, sha=None),
             "/waiting": known(waiting, seen=T1),
             "/old": known(old, proven=T0), "/recent": known(recent, proven=T2)}
    pool = [recent, old, waiting, unhashed, changed, new]

    chosen = freshness.choose_for_backup(pool, state, take=len(pool))

    assert [n.path for n in chosen] == ["/changed", "/new", "/unhashed", "/waiting", "/old",
                                        "/recent"]
    assert [n.path for n in freshness.choose_for_backup(pool, state, take=2)] == \
        ["/changed", "/new"]


def test_tree_update_writes_only_new_changed_rehashed_and_removed_files() -> None:
    same, grown, gone = node("/same"), node("/grown", size=20), node("/gone")
    first_hash, rehashed_differs = node("/first-hash"), node("/silent")
    state = {"/same": known(same, proven=T1), "/grown": known(node("/grown"), proven=T1),
             "/gone": known(gone), "/first-hash": known(first_hash, sha=None, seen=T0),
             "/silent": known(rehashed_differs, proven=T1)}
    files = [same, grown, node("/added"), first_hash, rehashed_differs]
    hashed = {"/first-hash": (10, ns_iso(first_hash.mtime_ns), "b" * 64),
              "/silent": (10, ns_iso(rehashed_differs.mtime_ns), "c" * 64),
              "/same": (10, ns_iso(same.mtime_ns), "a" * 64)}

    update = freshness.tree_update(files, state, hashed, at=T2)

    rows = {r["path"]: r for r in update.add}
    assert set(rows) == {"/grown", "/added", "/first-hash", "/silent"}
    assert sorted(update.remove) == ["/first-hash", "/gone", "/grown", "/silent"]
    assert rows["/grown"]["size"] == 20 and rows["/grown"]["proven_at"] is None
    assert rows["/grown"]["seen_at"] == T2 and rows["/grown"]["sha256"] is None
    assert rows["/first-hash"]["seen_at"] == T0 and rows["/first-hash"]["sha256"] == "b" * 64
    assert rows["/silent"]["proven_at"] is None and rows["/silent"]["seen_at"] == T2
    assert update.files == 5 and update.changed == 3


def test_names_restic_lists_alike_or_too_long_to_index_are_counted_untracked() -> None:
    lossy = "/data/\ufffd\ufffd.txt"
    long = "/data/" + "カ" * 700  # 2 100 bytes
    update = freshness.tree_update([node(lossy, size=1), node(lossy, size=2), node(long)],
                                   {}, {}, at=T0)
    assert [r["path"] for r in update.add] == [lossy]
    assert update.untracked == 2 and update.files == 3


def test_runs_within_a_window_count_the_longest_gap() -> None:
    base = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    daily = freshness.runs_within("*-*-* 02:00:00", 10 * 86400, base=base)
    weekdays = freshness.runs_within("Mon..Fri *-*-* 02:00:00", 10 * 86400, base=base)
    once = freshness.runs_within("2020-01-01 00:00:00", 10 * 86400, base=base)
    assert (daily.count, daily.gap) == (10, 86400)
    assert weekdays.count == 3  # a weekend leaves a three-day gap
    assert once.count == 0
