"""The repository password never leaks during a backup over SSH (SPEC §7, issue #3).

The leak watcher (tests/leaks.py) samples /proc/*/cmdline and /proc/*/environ of every
process every few milliseconds while the real CLI backs up over a real sshd with real restic.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

from tests.conftest import Sshd, Workspace
from tests.integration.cli.helpers import edit_job
from tests.leaks import LeakWatch


def test_password_never_in_proc_output_logs_or_remote_disk(
        ssh_workspace: Workspace, sshd: Sshd, contained: Path) -> None:
    # A password unique to this test, so other tests' files on this machine cannot match.
    password = f"leak-canary-{secrets.token_hex(16)}"
    pw_file = ssh_workspace.password_file("unique", password)
    repo = ssh_workspace.root / "repos" / "leak"
    subprocess.run(["restic", "init", "-q", "--repo", str(repo), "--password-file",
                    str(pw_file)], check=True, capture_output=True)
    src = ssh_workspace.root / "src" / "leak"
    src.mkdir(parents=True)
    ssh_workspace.job("leak", sshd=sshd, repo=repo, source=src,
                      repository={"url": str(repo), "password_file": str(pw_file)})
    edit_job(ssh_workspace, "leak", source={"before": ["true"], "after": ["true"]})
    (src / "big.bin").write_bytes(os.urandom(32 * 1024 * 1024))
    (src / "カルテ.txt").write_text("患者データ\n")
    watch = LeakWatch(password.encode(), interval=0.002, allowed={pw_file})

    watch.start()
    try:
        result = ssh_workspace.run("-v", "backup", "leak", "--json")
    finally:
        watch.stop()

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["jobs"][0]["snapshot_id"]
    # The watcher really saw the restic processes it was guarding.
    ours = [argv for argv in watch.restic_argvs if any(str(repo) in w for w in argv)]
    assert {"backup", "ls", "forget"} <= {word for argv in ours for word in argv}, ours
    assert watch.sweeps > 20
    assert "DEBUG" in result.stderr  # -v really logged every command
    watch.text("stdout", result.stdout)
    watch.text("stderr", result.stderr)
    watch.text("sshd log", sshd.log.read_text())
    roots = [src, contained, sshd.root, ssh_workspace.root]  # every process's temp, cache
    assert watch.scan(roots) == []
