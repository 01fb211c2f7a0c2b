"""The proofs table: a backup's diff, the due order, proofs recorded, the freshness read."""

from __future__ import annotations

from pathlib import Path

from backupctl.state import proofs
from backupctl.state.db import Store

T0 = "2026-12-01T00:00:00.000000+00:00"
T1 = "2026-12-02T00:00:00.000000+00:00"
T2 = "2026-12-03T00:00:00.000000+00:00"
M = "2026-11-01T00:00:00.000000000+00:00"


def row(path: str, *, sha: str | None = "a" * 64, seen: str = T0,
        proven: str | None = None) -> dict[str, object]:
    return {"path": path, "size": 1, "mtime": M, "sha256": sha, "seen_at": seen,
            "proven_at": proven}


def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'state.db'}")


def test_due_is_unproven_first_then_longest_unproven_and_only_hashed(tmp_path: Path) -> None:
    s = store(tmp_path)
    with s.transaction() as conn:
        proofs.apply(conn, "emr", snapshot_id="s1", remove=[], add=[
            row("/recent", proven=T2), row("/old", proven=T0), row("/nohash", sha=None),
            row("/late", seen=T1), row("/early", seen=T0), row("/\ufffd.txt")],
            files=6, changed=6, untracked=0, at=T0)
    due = s.query(proofs.due, "emr", limit=None)
    assert [d.path for d in due] == ["/early", "/late", "/old", "/recent"]
    assert [d.path for d in s.query(proofs.due, "emr", limit=1)] == ["/early"]


def test_marking_proven_needs_the_same_identity_and_hash(tmp_path: Path) -> None:
    s = store(tmp_path)
    with s.transaction() as conn:
        proofs.apply(conn, "emr", snapshot_id="s1", remove=[], add=[row("/a"), row("/b")],
                     files=2, changed=2, untracked=0, at=T0)
        proofs.mark_proven(conn, "emr", [("/a", 1, "a" * 64), ("/b", 1, "f" * 64)], at=T1)
    fresh = s.query(proofs.freshness, ["emr", "other"])
    assert set(fresh) == {"emr"}
    assert (fresh["emr"].files, fresh["emr"].unproven) == (2, 1)
    assert fresh["emr"].oldest_proof == T1 and fresh["emr"].oldest_unproven == T0


def test_a_backup_rewrites_only_what_changed_and_untracked_names_stay_unproven(
        tmp_path: Path) -> None:
    s = store(tmp_path)
    with s.transaction() as conn:
        proofs.apply(conn, "emr", snapshot_id="s1", remove=[], add=[row("/a"), row("/b")],
                     files=2, changed=2, untracked=0, at=T0)
        proofs.mark_proven(conn, "emr", [("/a", 1, "a" * 64), ("/b", 1, "a" * 64)], at=T1)
        proofs.apply(conn, "emr", snapshot_id="s2", remove=["/b"], add=[row("/b", seen=T2)],
                     files=3, changed=1, untracked=1, at=T2)
    fresh = s.query(proofs.freshness, ["emr"])["emr"]
    assert (fresh.files, fresh.unproven, fresh.snapshot_id) == (3, 2, "s2")
    assert s.query(proofs.known, "emr")["/a"].proven_at == T1
    assert s.query(proofs.tree, "emr") == proofs.Tree("s2", 3, 1, T2, 1)


def test_standing_is_met_while_no_file_waited_longer_than_the_window() -> None:
    from datetime import datetime

    now = datetime.fromisoformat(T2)
    fresh = proofs.Freshness(files=3, unproven=1, oldest_proof=T1, oldest_unproven=T0,
                             snapshot_id="s")
    waited_two_days = proofs.standing(fresh, window=2 * 86400, now=now)
    assert waited_two_days.met and waited_two_days.age_seconds == 2 * 86400
    assert not proofs.standing(fresh, window=86400, now=now).met
    proven = proofs.Freshness(files=3, unproven=0, oldest_proof=T1, oldest_unproven=None,
                              snapshot_id="s")
    assert proofs.standing(proven, window=86400, now=now).met
    assert not proofs.standing(proven, window=3600, now=now).met


def test_the_read_data_rotation_counts_quick_verifies_of_the_repository_only(
        tmp_path: Path) -> None:
    from tests import runs

    s = store(tmp_path)
    ran: list[tuple[str, str, int | None]] = [
        ("verify", "primary", None), ("verify", "usb", None), ("verify", "primary", 90_000),
        ("backup", "primary", None), ("verify", "primary", None)]
    for kind, repository, restore_ms in ran:
        run_id = runs.start(s, job="emr", kind=kind, repository=repository)
        runs.finish(s, run_id, status="success", evidence=False, restore_ms=restore_ms)
    assert s.query(proofs.verifies_of, "emr", "primary") == 2
    assert s.query(proofs.verifies_of, "emr", "usb") == 1
