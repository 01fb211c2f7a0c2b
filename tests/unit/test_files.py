"""The one atomic writer (temp file in the target's directory, mode, rename, no leftovers)
and the one wipe of restored data (never following a link)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from backupctl.files import wipe, write_atomic


def test_write_atomic_reports_whether_it_changed_anything(tmp_path: Path) -> None:
    path = tmp_path / "unit.timer"
    assert write_atomic(path, "a\n", mode=0o644, unchanged_ok=True) is True
    assert write_atomic(path, "a\n", mode=0o644, unchanged_ok=True) is False
    assert path.read_text() == "a\n" and stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["unit.timer"]


def test_a_missing_directory_is_an_error_not_created(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "backupctl.prom", "x")
    assert not (tmp_path / "missing").exists()


def test_the_default_mode_is_private(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text("old")
    path.chmod(0o644)
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             ) -> None:
    path = tmp_path / "x.prom"
    path.write_text("old")

    def boom(*_a: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError, match="No space"):
        write_atomic(path, "new")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.prom"]


def test_wipe_unlinks_many_files_at_once_and_never_follows_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "dir" / "keep.txt").write_text("keep")
    (outside / "file.txt").write_text("keep")
    tree = tmp_path / "restored"
    for d in range(3):
        sub = tree / f"d{d} 日本" / "deeper"
        sub.mkdir(parents=True)
        for i in range(100):
            (sub / f"f{i}\n;$(x)").write_bytes(b"x" * i)
    (tree / "to-dir").symlink_to(outside / "dir")
    (tree / "d0 日本" / "to-file").symlink_to(outside / "file.txt")
    (tree / "d1 日本" / "deeper").chmod(0o500)  # restic restores directory modes

    wipe(tree)

    assert not tree.exists()
    assert (outside / "dir" / "keep.txt").read_text() == "keep"
    assert (outside / "file.txt").read_text() == "keep"
