"""Helpers for recovery tests: a hostile tree backed up and proven by a full verify, and a
second sshd on loopback playing the replacement server."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Sshd, Workspace, make_sshd

HOSTILE = ["カルテ 001.txt", "it's \"quoted\".txt", "new\nline.txt", "-rf", "$(touch x)"]


def hostile_tree(src: Path) -> Path:
    """Japanese names, quotes, a newline, `-rf`; hard links, symlinks, an empty directory,
    0640 files and 0750 directories."""
    data = src / "患者 dir"
    data.mkdir(parents=True)
    for i, name in enumerate(HOSTILE):
        (data / name).write_bytes(f"患者データ {i}\n".encode() * (100 + i))
    (data / "scan.bin").write_bytes(os.urandom(256 * 1024))
    os.link(data / "scan.bin", data / "scan-hardlink.bin")
    (data / "link to カルテ").symlink_to("カルテ 001.txt")
    (src / "empty").mkdir()
    private = src / "private"
    private.mkdir()
    (private / "secret.txt").write_text("0640\n")
    (private / "secret.txt").chmod(0o640)
    private.chmod(0o750)
    return src


def proven_job(ws: Workspace, name: str = "emr", **overrides: Any) -> Path:
    """A local job over the hostile tree, backed up and proven by a full verify."""
    src = hostile_tree(ws.root / "src" / name)
    ws.job(name, source=src, verify={"sample": "all"}, **overrides)
    for args in (("backup", name), ("verify", name, "--mode", "full")):
        result = ws.run(*args)
        assert result.returncode == 0, result.stdout + result.stderr
    return src


@pytest.fixture
def replacement(tmp_path: Path, workspace: Workspace) -> Iterator[Sshd]:
    """The replacement server: its own sshd on loopback, its key trusted by the workspace."""
    server = make_sshd(tmp_path / "replacement")
    server.start()
    with workspace.known_hosts.open("a") as known:
        known.write(server.known_hosts_line())
    yield server
    server.stop()


def ssh_target(server: Sshd, directory: Path) -> str:
    return f"ssh://root@127.0.0.1:{server.port}{directory}"


def rows(ws: Workspace, sql: str) -> list[sqlite3.Row]:
    db = sqlite3.connect(ws.state_dir / "state.db")
    db.row_factory = sqlite3.Row
    try:
        return list(db.execute(sql))
    finally:
        db.close()


def recovery_evidence(ws: Workspace) -> list[dict[str, Any]]:
    found = []
    for row in rows(ws, "SELECT * FROM evidence WHERE kind = 'recovery' ORDER BY seq"):
        record = dict(row)
        record["details"] = json.loads(record["details"])
        found.append(record)
    return found


def tree_of(root: Path) -> dict[str, tuple[str, int, int, str]]:
    """Every node under `root`: (type, mode bits, size or 0, symlink target or content hash)."""
    import hashlib
    import stat

    found = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        kind = ("symlink" if stat.S_ISLNK(st.st_mode) else "dir" if stat.S_ISDIR(st.st_mode)
                else "file")
        extra = (os.readlink(path) if kind == "symlink" else
                 hashlib.sha256(path.read_bytes()).hexdigest() if kind == "file" else "")
        found[str(path.relative_to(root))] = (kind, stat.S_IMODE(st.st_mode),
                                             st.st_size if kind == "file" else 0, extra)
    return found


def wipe(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
