"""The proof on the target: a file changed between restore and proof, owners by name when
the uid differs on the new server, a `--path` subtree, a `rest:` repository with a
password through the tunnel (leak-watched). Real sshd, restic, rclone."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests import yaml_helpers
from tests.conftest import BACKUPCTL, PASSWORD, RestServer, Sshd, Workspace
from tests.integration.recovery.conftest import (
    proven_job,
    recovery_evidence,
    rows,
    ssh_target,
    tree_of,
)
from tests.leaks import LeakWatch

# The CLI with the hook between restore and proof replaced: it flips one byte of the file
# named by argv[1] (a snapshot path) on the target, keeping its size.
CORRUPT = ("import sys; from pathlib import Path; import backupctl.actions.recovery.run as r; "
           "victim = sys.argv.pop(1)\n"
           "def hook(runner, prepared):\n"
           "    p = Path(prepared.target.root(victim)); data = bytearray(p.read_bytes())\n"
           "    data[0] ^= 0xFF; p.write_bytes(bytes(data))\n"
           "r.between_restore_and_proof = hook\n"
           "from backupctl.cli import main; main()")


def test_a_file_changed_on_the_target_before_the_proof_is_exit_3_naming_it(
        workspace: Workspace, replacement: Sshd, tmp_path: Path) -> None:
    src = proven_job(workspace)
    victim = f"{src}/患者 dir/カルテ 001.txt"
    target = tmp_path / "new"

    result = subprocess.run([sys.executable, "-c", CORRUPT, victim, "-c",
                             str(workspace.config), "restore", "emr", "--to",
                             ssh_target(replacement, target), "--identity",
                             str(replacement.identity), "--json"],
                            text=True, capture_output=True, timeout=300)

    assert result.returncode == 3, result.stdout + result.stderr
    [job] = json.loads(result.stdout)["jobs"]
    bad = f"{target}{victim}"
    assert [(m["path"], m["reason"]) for m in job["mismatches"]] == [(bad, "hash")]
    assert bad in job["error"] and job["result"] == "fail"
    [record] = recovery_evidence(workspace)
    assert record["result"] == "fail" and record["details"]["mismatches"][0]["path"] == bad


@pytest.fixture
def moved_user(workspace: Workspace) -> Iterator[str]:
    """A user (and its group) that owns source files, then "moved": recreated with another
    uid and gid, as on a replacement server installed in another order. Removed after."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a test user")
    name = f"bkr{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--no-create-home", "-U", "--shell", "/usr/sbin/nologin", name],
                   check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], capture_output=True, check=False)
        subprocess.run(["groupdel", name], capture_output=True, check=False)


def _free_id(start: int) -> int:
    import grp

    taken = {p.pw_uid for p in pwd.getpwall()} | {g.gr_gid for g in grp.getgrall()}
    return next(i for i in range(start, start + 10000) if i not in taken)


def test_owners_come_back_by_name_when_the_uid_differs_on_the_target(
        workspace: Workspace, replacement: Sshd, tmp_path: Path, moved_user: str) -> None:
    src = workspace.root / "src" / "owned"
    (src / "dir").mkdir(parents=True)
    (src / "dir" / "chart.txt").write_text("患者\n")
    os.chown(src / "dir", pwd.getpwnam(moved_user).pw_uid, pwd.getpwnam(moved_user).pw_gid)
    os.chown(src / "dir" / "chart.txt", pwd.getpwnam(moved_user).pw_uid,
             pwd.getpwnam(moved_user).pw_gid)
    old_uid = pwd.getpwnam(moved_user).pw_uid
    workspace.job("owned", source=src, verify={"sample": "all"})
    for args in (("backup", "owned"), ("verify", "owned", "--mode", "full")):
        assert workspace.run(*args).returncode == 0
    new_id = _free_id(old_uid + 100)
    subprocess.run(["usermod", "-u", str(new_id), moved_user], check=True, capture_output=True)
    subprocess.run(["groupmod", "-g", str(new_id), moved_user], check=True,
                   capture_output=True)
    target = tmp_path / "new"

    result = workspace.run("restore", "owned", "--to", ssh_target(replacement, target),
                           "--identity", str(replacement.identity), "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    [job] = json.loads(result.stdout)["jobs"]
    assert job["owners_mapped"] == 2
    for path in (target / str(src).lstrip("/") / "dir",
                 target / str(src).lstrip("/") / "dir" / "chart.txt"):
        assert (path.lstat().st_uid, path.lstat().st_gid) == (new_id, new_id)


def test_a_path_restore_brings_back_and_proves_only_that_subtree(
        workspace: Workspace, tmp_path: Path) -> None:
    src = proven_job(workspace)
    target = tmp_path / "part"

    result = workspace.run("restore", "emr", "--to", f"local:{target}", "--path",
                           f"{src}/private", "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    [job] = json.loads(result.stdout)["jobs"]
    assert job["files"] == 1 and job["files_checked"] == 1
    restored = target / str(src).lstrip("/")
    assert sorted(p.name for p in restored.iterdir()) == ["private"]
    assert tree_of(restored / "private") == tree_of(src / "private")
    assert oct((restored / "private").stat().st_mode & 0o777) == "0o750"


def test_a_rest_repository_with_a_password_never_leaks_it(
        workspace: Workspace, replacement: Sshd, tmp_path: Path, contained: Path,
        rest_server: Callable[..., RestServer]) -> None:
    src = proven_job(workspace)
    credential = f"rest-pass-{secrets.token_hex(12)}"
    server = rest_server(workspace.root / "repos", append_only=True, user="clinic",
                         password=credential)
    path = workspace.jobs_dir / "emr.yaml"
    data = YAML(typ="safe").load(path.read_text())
    data["repository"]["url"] = f"{server.url}emr/"
    path.write_text(yaml_helpers.dump(data))
    watch = LeakWatch(PASSWORD.encode(), also=(credential.encode(),), interval=0.002,
                      allowed={workspace.root / "secrets" / "pw", path,
                               *tmp_path.glob("htpasswd-*")})
    target = tmp_path / "new"

    watch.start()
    try:
        proc = subprocess.run([*BACKUPCTL, "-c", str(workspace.config), "-v", "restore", "emr",
                               "--to", ssh_target(replacement, target), "--identity",
                               str(replacement.identity), "--snapshot", "latest", "--json"],
                              text=True, capture_output=True, timeout=300)
    finally:
        watch.stop()

    assert proc.returncode == 0, proc.stdout + proc.stderr
    [job] = json.loads(proc.stdout)["jobs"]
    assert job["served"] is True and job["result"] == "pass"
    assert tree_of(target / str(src).lstrip("/")) == tree_of(src)
    for what, text in (("stdout", proc.stdout), ("stderr", proc.stderr),
                       ("sshd log", replacement.log.read_text())):
        watch.text(what, text)
    leaks = watch.scan([workspace.root, tmp_path])  # `contained`: every temp and cache
    assert leaks == [], leaks
    assert watch.sweeps > 20
    assert rows(workspace, "SELECT status FROM runs WHERE kind = 'recovery'")[0][0] == "success"
