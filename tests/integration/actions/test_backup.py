"""Backups against a real sshd and real restic (SPEC §2, issue #3 acceptance)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from tests.conftest import PASSWORD, Sshd, Workspace, restic
from tests.integration.cli.helpers import edit_job

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


def _set_hooks(ws: Workspace, name: str, **source: object) -> None:
    edit_job(ws, name, source=source)


def _snapshots(ws: Workspace, name: str) -> list[dict[str, object]]:
    return list(json.loads(restic(ws.root / "repos" / name, "snapshots", "--json").stdout))


def test_failing_before_skips_restic_runs_after_and_names_the_command(
        ssh_workspace: Workspace, sshd: Sshd) -> None:
    ssh_workspace.job("hooks", sshd=sshd)
    marker = ssh_workspace.root / "after-ran"
    _set_hooks(ssh_workspace, "hooks", before=["echo dumping; exit 4"],
               after=[f"touch '{marker}'"])

    result = ssh_workspace.run("backup", "hooks", "--json")

    assert result.returncode == 1
    [job] = json.loads(result.stdout)["jobs"]
    assert "before command 'echo dumping; exit 4' failed" in job["error"]
    assert "exited 4" in job["error"]
    assert marker.exists(), "the after command did not run"
    assert _snapshots(ssh_workspace, "hooks") == []


def test_unreadable_file_restic_exit_3_fails_with_the_file_list(
        ssh_workspace: Workspace, sshd: Sshd) -> None:
    # As root nothing is unreadable by mode; /proc/self/mem (restic's own memory) fails to
    # read at offset 0 with EIO, which makes restic 0.14 exit 3 with a snapshot.
    ssh_workspace.job("partial", sshd=sshd)
    src = ssh_workspace.root / "src" / "partial"
    (src / "ok.txt").write_text("fine\n")
    edit_job(ssh_workspace, "partial", source={"paths": [str(src), "/proc/self/mem"]})

    result = ssh_workspace.run("backup", "partial", "--json")

    assert result.returncode == 1, result.stderr
    [job] = json.loads(result.stdout)["jobs"]
    assert job["status"] == "failed"
    assert "some files could not be read" in job["error"]
    assert "/proc/self/mem: read failed: Input/output error (errno 5)" in job["error"]
    # restic made a snapshot, an incomplete one: the failed run removed it again
    assert job["snapshot_id"] and job["removed_snapshots"] == [job["snapshot_id"]]
    assert _snapshots(ssh_workspace, "partial") == []
    status = json.loads(ssh_workspace.run("status", "--json").stdout)["jobs"][0]
    assert status["last_backup_status"] == "failed"
    assert status["last_success_at"] is None


def test_missing_source_path_is_a_failure_not_a_silent_skip(workspace: Workspace) -> None:
    workspace.job("gone")
    src = workspace.root / "src" / "gone"
    (src / "f").write_text("x\n")
    edit_job(workspace, "gone", source={"paths": [str(src), str(workspace.root / "nothere")]})

    result = workspace.run("backup", "gone")

    assert result.returncode == 1
    assert "source path(s) missing" in result.stderr
    assert str(workspace.root / "nothere") in result.stderr


def test_a_failed_backup_leaves_nothing_that_looks_like_a_backup(workspace: Workspace) -> None:
    """SPEC §15: with one source path missing, restic 0.14 still makes a snapshot; the run
    fails and removes it, so that it counts as no generation, is never copied, and the next
    verify proves the last good backup instead of blaming "another tool"."""
    src = workspace.root / "src" / "half"
    extra = workspace.root / "src" / "extra"
    for d in (src, extra):
        d.mkdir(parents=True, exist_ok=True)
        (d / "data.txt").write_text(f"{d.name}\n")
    workspace.job("half", source=src)
    edit_job(workspace, "half", source={"paths": [str(src), str(extra)]})
    assert workspace.run("backup", "half").returncode == 0
    repo = workspace.root / "repos" / "half"
    [good] = json.loads(restic(repo, "snapshots", "--json").stdout)

    (extra / "data.txt").unlink()
    extra.rmdir()
    failed = workspace.run("backup", "half", "--json")
    assert failed.returncode == 1, failed.stderr
    [job] = json.loads(failed.stdout)["jobs"]
    assert "source path(s) missing" in job["error"]
    assert job["removed_snapshots"] == [job["snapshot_id"]]
    assert "None generation" not in failed.stderr
    assert [s["id"] for s in json.loads(restic(repo, "snapshots", "--json").stdout)] \
        == [good["id"]]

    verified = workspace.run("verify", "half")
    assert verified.returncode == 0, verified.stderr
    assert good["short_id"] in verified.stderr
