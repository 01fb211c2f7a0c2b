"""What came back, told by the backup's listing digest: equal only when every listed file is
there with its size; anything it cannot tell gives way to the snapshot's listing (None)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backupctl.actions.restore_test.compare import count_by_digest
from backupctl.state.records import ManifestSummary
from backupctl.verify.listing import files_digest

# paths as restic lists them: spaces, quotes, `;`, `$()`, a newline, Japanese
FILES = {"/srv/emr/a b.dat": b"A" * 10, "/srv/emr/'q';$(x)\nz": b"", "/srv/カルテ/患者.pdf": b"B"}


def _restored(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _summary(files: dict[str, bytes], **extra: object) -> ManifestSummary:
    return ManifestSummary(files_total=len(files), files_digest=files_digest(
        (p, len(d)) for p, d in files.items()), **extra)  # type: ignore[arg-type]


def test_every_file_back_with_its_size_is_counted(tmp_path: Path) -> None:
    _restored(tmp_path, FILES)
    (tmp_path / "srv/emr/empty dir").mkdir()
    os.symlink("/etc/passwd", tmp_path / "srv/emr/link")  # a link is not a file of the listing

    counted = count_by_digest(tmp_path, _summary(FILES))

    assert counted is not None and not counted.mismatches
    assert (counted.files, counted.bytes) == (3, 11)


@pytest.mark.parametrize("change", ["missing", "size", "extra", "a directory"])
def test_a_tree_that_differs_cannot_be_told_here(tmp_path: Path, change: str) -> None:
    _restored(tmp_path, FILES)
    victim = tmp_path / "srv/emr/a b.dat"
    if change == "missing":
        victim.unlink()
    elif change == "size":
        victim.write_bytes(b"A" * 11)
    elif change == "extra":
        (tmp_path / "srv/emr/new.dat").write_bytes(b"")
    else:
        victim.unlink()
        victim.mkdir()
    assert count_by_digest(tmp_path, _summary(FILES)) is None


def test_a_link_in_place_of_a_file_is_not_that_file(tmp_path: Path) -> None:
    _restored(tmp_path, FILES)
    victim = tmp_path / "srv/emr/a b.dat"
    (tmp_path / "elsewhere").write_bytes(b"A" * 10)
    victim.unlink()
    victim.symlink_to(tmp_path / "elsewhere")
    assert count_by_digest(tmp_path, _summary(FILES)) is None


def test_names_that_are_not_utf8_are_counted_apart(tmp_path: Path) -> None:
    _restored(tmp_path, FILES)
    (tmp_path / "srv/emr").joinpath(os.fsdecode(b"\xff\xfe.txt")).write_bytes(b"x")
    listed = "/srv/emr/\ufffd\ufffd.txt"  # how restic 0.14 lists it
    summary = _summary(FILES, unverifiable=[listed], unverifiable_count=1)

    counted = count_by_digest(tmp_path, summary)

    assert counted is not None and counted.unverifiable == (listed,)
    assert counted.files == 3
    assert count_by_digest(tmp_path, _summary(FILES)) is None, "one more than recorded"


def test_older_manifests_and_long_unverifiable_lists_need_the_listing(tmp_path: Path) -> None:
    _restored(tmp_path, FILES)
    assert count_by_digest(tmp_path, None) is None
    assert count_by_digest(tmp_path, ManifestSummary(files_total=3)) is None
    kept_short = _summary(FILES, unverifiable=["/x\ufffd"], unverifiable_count=101)
    assert count_by_digest(tmp_path, kept_short) is None


def test_an_unreadable_directory_gives_way_to_the_listing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A directory restored without permissions (root reads it anyway, so it is faked)."""
    _restored(tmp_path, FILES)
    scandir = os.scandir

    def refusing(path: str) -> object:
        if path.endswith("/srv/emr"):
            raise PermissionError(13, "Permission denied", path)
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    assert count_by_digest(tmp_path, _summary(FILES)) is None
