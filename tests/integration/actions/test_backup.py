"""Backups against a real sshd and real restic (SPEC §2, issue #3 acceptance)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from conftest import PASSWORD, Sshd, Workspace, restic

NASTY_NAMES = ["スキャン 001.pdf", "a'b\"c", "x;y$(touch pwned)", "new\nline", "-rf",
               "back`tick`", "back\\slash", "star*?[x]"]


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _fill(src: Path) -> None:
    for i, name in enumerate(NASTY_NAMES):
        (src / name).write_bytes(f"content {i} {name}\n".encode())
    sub = src / "日本語 dir; $(touch pwned2)"
    sub.mkdir()
    (sub / "カルテ.txt").write_text("患者データ\n")
    (src / "big.bin").write_bytes(os.urandom(20 * 1024 * 1024))


def test_backup_over_ssh_keeps_every_nasty_name_byte_identical(
        ssh_workspace: Workspace, sshd: Sshd, tmp_path: Path) -> None:
    src = tmp_path / "source dir ' $(x)"
    src.mkdir()
    _fill(src)
    ssh_workspace.job("nasty", source=src, sshd=sshd)

    result = ssh_workspace.run("backup", "nasty", "--json")

    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    snapshot = payload["jobs"][0]["snapshot_id"]
    restored = tmp_path / "restored"
    restic(ssh_workspace.root / "repos" / "nasty", "restore", snapshot, "--target",
           str(restored))
    assert _tree(restored / src.relative_to("/")) == _tree(src)
    assert not list(Path("/").glob("pwned*")), "a file name was executed"
    assert not list(tmp_path.rglob("pwned*"))
    assert not list(Path.home().glob("pwned*"))


def test_generations_are_pruned_to_the_policy(workspace: Workspace) -> None:
    workspace.job("gen", generations={"last": 2})
    src = workspace.root / "src" / "gen"
    for i in range(4):
        (src / f"f{i}").write_text(str(i))
        assert workspace.run("backup", "gen").returncode == 0
    snaps = json.loads(restic(workspace.root / "repos" / "gen", "snapshots", "--json").stdout)
    assert len(snaps) == 2


def test_password_never_in_argv_or_output(ssh_workspace: Workspace, sshd: Sshd) -> None:
    ssh_workspace.job("secret", sshd=sshd)
    (ssh_workspace.root / "src" / "secret" / "f").write_bytes(os.urandom(1024))
    result = ssh_workspace.run("-v", "backup", "secret", "--json")
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert PASSWORD not in sshd.log.read_text()
