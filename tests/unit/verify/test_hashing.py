"""Streaming hashes: local files and the source-host helper script."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

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
