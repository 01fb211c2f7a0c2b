"""`backupctl restore JOB --to TARGET` (SPEC §11): the real CLI, restic, sshd and rclone."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

from tests.conftest import BACKUPCTL, Sshd, Workspace, need
from tests.integration.recovery.conftest import (
    proven_job,
    recovery_evidence,
    ssh_target,
    tree_of,
)


def test_a_local_target_gets_the_whole_tree_proven_and_recorded(
        workspace: Workspace, tmp_path: Path) -> None:
    src = proven_job(workspace)
    target = tmp_path / "new-server"

    result = workspace.run("restore", "emr", "--to", f"local:{target}", "--operator",
                           "山田", "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    [job] = json.loads(result.stdout)["jobs"]
    assert job["kind"] == "recovery" and job["result"] == "pass"
    assert job["files_checked"] == job["files"] > 5 and job["mismatches"] == []
    assert tree_of(target / str(src).lstrip("/")) == tree_of(src)
    [record] = recovery_evidence(workspace)
    assert record["operator"] == "山田" and record["result"] == "pass"
    assert record["details"]["target"] == f"local:{target}"
    assert record["details"]["restore_ms"] > 0
    _status_and_metrics_show_it(workspace, target, job["restore_ms"])
    chain = workspace.run("evidence", "verify", "--db")
    assert chain.returncode == 0, chain.stdout + chain.stderr
    report = workspace.run("report", "--from", "2000-01-01", "--to", "2100-01-01", "--format",
                           "json")
    assert report.returncode == 0, report.stderr


def _status_and_metrics_show_it(ws: Workspace, target: Path, restore_ms: int) -> None:
    status = ws.run("status", "--json")
    [row] = json.loads(status.stdout)["jobs"]
    recovery = row["last_recovery"]
    assert (recovery["status"], recovery["target"], recovery["operator"]) == (
        "success", f"local:{target}", "山田")
    assert "last recovery" in ws.run("status").stderr
    metrics = ws.run("metrics")
    assert metrics.returncode == 0, metrics.stderr
    [line] = [x for x in metrics.stdout.splitlines()
              if x.startswith("backupctl_recovery_duration_seconds{")]
    assert line == f'backupctl_recovery_duration_seconds{{backup_job="emr"}} {restore_ms / 1000}'
    check = subprocess.run([need("promtool"), "check", "metrics"], input=metrics.stdout,
                           capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout + check.stderr == "", check


def test_an_ssh_target_is_restored_through_the_tunnel_and_proven(
        workspace: Workspace, replacement: Sshd, tmp_path: Path) -> None:
    src = proven_job(workspace)
    target = tmp_path / "replacement-data"

    result = workspace.run("restore", "emr", "--to", ssh_target(replacement, target),
                           "--identity", str(replacement.identity), "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    [job] = json.loads(result.stdout)["jobs"]
    assert job["served"] is True and job["result"] == "pass"
    assert tree_of(target / str(src).lstrip("/")) == tree_of(src)


def _on_a_terminal(ws: Workspace, *args: str, env: dict[str, str]) -> str:
    """The CLI under a pseudo-terminal (`script`): what the admin's terminal shows."""
    command = shlex.join([*BACKUPCTL, "-c", str(ws.config), *args])
    done = subprocess.run(["script", "-qefc", command, "/dev/null"], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env},
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_terminal_shows_progress_and_systemd_stays_quiet(
        workspace: Workspace, tmp_path: Path) -> None:
    proven_job(workspace)

    shown = _on_a_terminal(workspace, "restore", "emr", "--to", f"local:{tmp_path / 'a'}",
                           env={})
    quiet = _on_a_terminal(workspace, "restore", "emr", "--to", f"local:{tmp_path / 'b'}",
                           env={"INVOCATION_ID": "0123456789abcdef"})

    assert "restoring" in shown and "files" in shown and "[OK] emr: recovery pass" in shown
    assert "restoring" not in quiet and "[OK] emr: recovery pass" in quiet
