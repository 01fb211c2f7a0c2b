"""What came back, told by the backup's listing digest: equal only when every listed file is
there with its size; anything it cannot tell gives way to the snapshot's listing (None)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from backupctl.actions.restore_test.compare import compare, count_all, count_by_digest
from backupctl.actions.restore_test.snapshot import Reference
from backupctl.state.records import ManifestSummary
from backupctl.verify import names
from backupctl.verify.listing import FileNode, files_digest

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


CP932 = "/srv/" + os.fsdecode("カルテ".encode("cp932")) + "/" + os.fsdecode(
    "患者.txt".encode("cp932"))  # a Shift_JIS name from a Windows share, as its bytes
LISTED = names.listed(CP932)  # how restic 0.14 to 0.18 list it: U+FFFD for each odd byte


def test_names_that_are_not_utf8_are_counted_as_restic_lists_them(tmp_path: Path) -> None:
    _restored(tmp_path, {**FILES, CP932: b"karte"})
    summary = _summary({**FILES, LISTED: b"karte"}, files_digest_version=2)

    counted = count_by_digest(tmp_path, summary)

    assert counted is not None and counted.unverifiable == ()
    assert (counted.files, counted.bytes) == (4, 16)
    assert count_by_digest(tmp_path, _summary(FILES, files_digest_version=2)) is None, \
        "one more than recorded"
    shorter = _summary({**FILES, LISTED: b"kart"}, files_digest_version=2)
    assert count_by_digest(tmp_path, shorter) is None, "its size is compared too"


def test_a_version_1_digest_left_names_not_utf8_out_so_the_listing_tells(
        tmp_path: Path) -> None:
    _restored(tmp_path, {**FILES, CP932: b"karte"})
    old = _summary(FILES, unverifiable=[LISTED], unverifiable_count=1)
    assert count_by_digest(tmp_path, old) is None
    _restored(tmp_path / "plain", FILES)
    assert count_by_digest(tmp_path / "plain", _summary(FILES)) is not None, \
        "a version 1 digest of a tree without such names is the same digest"


def test_count_all_finds_a_name_not_utf8_by_its_bytes(tmp_path: Path) -> None:
    _restored(tmp_path, {**FILES, CP932: b"karte"})
    listing = [FileNode(p, len(d), 0) for p, d in {**FILES, LISTED: b"karte"}.items()]

    counted = count_all(tmp_path, listing)

    assert (counted.files, counted.mismatches, counted.unverifiable) == (4, (), ())
    (tmp_path / CP932.lstrip("/")).write_bytes(b"kar")
    (wrong,) = count_all(tmp_path, listing).mismatches
    assert wrong.reason == "size" and wrong.path == names.shown(CP932)
    assert "\\x83J" in wrong.path, "shown escaped, readable and valid UTF-8"
    (tmp_path / CP932.lstrip("/")).unlink()
    (gone,) = count_all(tmp_path, listing).mismatches
    assert (gone.reason, gone.path) == ("missing", LISTED), "never left out unchecked"


def test_compare_hashes_a_name_not_utf8_by_its_bytes(tmp_path: Path) -> None:
    _restored(tmp_path, {CP932: b"karte"})
    good = hashlib.sha256(b"karte").hexdigest()
    ref = Reference(LISTED, 5, good, CP932)

    assert compare(tmp_path, [ref]).files == 1 and not compare(tmp_path, [ref]).mismatches
    (tmp_path / CP932.lstrip("/")).write_bytes(b"KARTE")
    (bad,) = compare(tmp_path, [ref]).mismatches
    assert bad.reason == "hash" and bad.path == names.shown(CP932)
    bad.model_dump_json()  # safe in JSON (no surrogate escapes)


def test_older_manifests_need_the_listing(tmp_path: Path) -> None:
    _restored(tmp_path, FILES)
    assert count_by_digest(tmp_path, None) is None
    assert count_by_digest(tmp_path, ManifestSummary(files_total=3)) is None


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
