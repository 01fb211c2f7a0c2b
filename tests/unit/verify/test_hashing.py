"""Streaming hashes: local files and the source-host helper script."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from backupctl.verify import names
from backupctl.verify.hashing import REMOTE_SCRIPT, sha256_file, sha256_many

NAMES = ["plain", "スキャン 001.pdf", "a'b\"c", "x;y$(touch pwned)", "new\nline",
         "star*?[x]", "back\\slash"]


def test_sha256_file_matches_hashlib_across_chunk_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = os.urandom(3 * 1024 + 17)
    path.write_bytes(data)
    digest = sha256_file(path, chunk=1024)
    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert digest.size == len(data)


def test_missing_and_symlinked_files_are_not_hashed(tmp_path: Path) -> None:
    assert sha256_file(tmp_path / "absent").missing
    (tmp_path / "target").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    assert sha256_file(tmp_path / "link").error is not None


def test_sha256_many_keeps_order(tmp_path: Path) -> None:
    paths = []
    for i in range(20):
        paths.append(tmp_path / f"f{i}")
        paths[-1].write_bytes(os.urandom(i * 1000))
    got = [d.sha256 for d in sha256_many(paths, workers=2)]
    assert got == [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def test_remote_script_hashes_nasty_names_from_stdin(tmp_path: Path) -> None:
    paths = []
    for name in NAMES:
        (tmp_path / name).write_bytes(name.encode() * 1000)
        paths.append(str(tmp_path / name))
    paths.append(str(tmp_path / "absent"))
    proc = subprocess.run([sys.executable, "-I", "-c", REMOTE_SCRIPT],
                          input=json.dumps(paths).encode(), capture_output=True, check=True)
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["i"] for r in records] == list(range(len(paths)))
    for record, path in zip(records[:-1], paths[:-1], strict=True):
        data = Path(path).read_bytes()
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
        assert record["size"] == len(data)
        assert record["mtime_ns"] == os.stat(path).st_mtime_ns
        assert record["stable"] is True
    assert "error" in records[-1]
    assert not list(tmp_path.glob("pwned*"))


def _remote(items: list[object], *, env: dict[str, str] | None = None) -> list[dict[str, object]]:
    proc = subprocess.run([sys.executable, "-I", "-c", REMOTE_SCRIPT], env=env,
                          input=json.dumps(items).encode(), capture_output=True, check=True)
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_remote_script_finds_a_name_not_utf8_by_the_form_restic_lists_it(
        tmp_path: Path) -> None:
    """A cp932 directory and file name: given as restic lists them (U+FFFD), found by their
    bytes on the host, hashed, and the bytes handed back; or given as the bytes themselves.
    Under the C locale too (the host's locale never decides how a name is opened)."""
    folder = os.fsencode(tmp_path) + b"/" + "カルテ".encode("cp932")
    os.mkdir(folder)
    path = folder + b"/" + "患者.txt".encode("cp932")
    Path(os.fsdecode(path)).write_bytes(b"record")
    info = os.stat(path)
    listed = names.lossy(path)
    items: list[object] = [
        {"lossy": listed, "size": info.st_size, "mtime_ns": info.st_mtime_ns},
        {"raw": base64.b64encode(path).decode()},
        {"lossy": listed.replace(".txt", ".doc"), "size": 1, "mtime_ns": 1}]

    found, raw, absent = _remote(items, env={"LANG": "C", "LC_ALL": "C", "PATH": "/usr/bin"})

    assert base64.b64decode(str(found["raw"])) == path
    assert found["sha256"] == raw["sha256"] == hashlib.sha256(b"record").hexdigest()
    assert "raw" not in raw and absent["error"] == "No such file or directory"


def test_remote_script_tells_names_listed_alike_apart_by_size_and_mtime(
        tmp_path: Path) -> None:
    """\\x83 and \\x84 are both one U+FFFD in restic's listing."""
    first, second = (os.fsencode(tmp_path) + b"/" + b for b in (b"\x83.txt", b"\x84.txt"))
    Path(os.fsdecode(first)).write_bytes(b"one")
    Path(os.fsdecode(second)).write_bytes(b"other")
    listed = names.lossy(first)
    assert listed == names.lossy(second)
    info = os.stat(second)

    told, alike = _remote([
        {"lossy": listed, "size": info.st_size, "mtime_ns": info.st_mtime_ns},
        {"lossy": listed, "size": 99, "mtime_ns": 1}])

    assert base64.b64decode(str(told["raw"])) == second
    assert alike["ambiguous"] is True and "sha256" not in alike
