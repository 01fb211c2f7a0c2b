"""Who ran it (SPEC §6 `operator`, issue 29): a manual full verify without a terminal was
recorded as `scheduler`; only what a timer or cron starts is the scheduler."""

from __future__ import annotations

import getpass
import os
import shlex
import subprocess

from tests.conftest import BACKUPCTL, Workspace
from tests.integration.cli.helpers import runs


def _clean() -> dict[str, str]:
    """This test's environment without the markers it sets itself (the suite itself may run
    under sudo or systemd)."""
    return {k: v for k, v in os.environ.items() if k not in (
        "SUDO_USER", "BACKUPCTL_OPERATOR", "INVOCATION_ID", "SYSTEMD_EXEC_PID")}


def _verify_full(ws: Workspace, **env: str) -> str:
    result = subprocess.run([*BACKUPCTL, "-c", str(ws.config), "verify", "--mode", "full",
                             "emr"], capture_output=True, text=True, timeout=300,
                            stdin=subprocess.DEVNULL, env={**_clean(), **env})
    assert result.returncode == 0, result.stderr
    return str(runs(ws)[-1]["operator"])


def test_a_manual_full_verify_is_the_persons_and_a_timers_is_the_schedulers(
        workspace: Workspace) -> None:
    workspace.job("emr")
    (workspace.root / "src" / "emr" / "karte.txt").write_text("カルテ\n")
    assert workspace.run("backup", "emr").returncode == 0

    # ws.run has no terminal (like `ssh backup01 backupctl …` or a script): still a person
    assert _verify_full(workspace) == getpass.getuser()
    assert _verify_full(workspace, SUDO_USER="tanaka") == "tanaka"
    assert _verify_full(workspace, BACKUPCTL_OPERATOR="山田") == "山田"
    # what `schedule install`'s units and `schedule cron`'s crontab set
    assert _verify_full(workspace, BACKUPCTL_OPERATOR="scheduler") == "scheduler"


def test_a_unit_installed_before_the_operator_variable_is_still_the_scheduler(
        workspace: Workspace) -> None:
    """systemd's marks: INVOCATION_ID, and this process is the unit's main process."""
    workspace.job("emr")
    command = shlex.join([*BACKUPCTL, "-c", str(workspace.config), "backup", "emr"])
    as_unit = subprocess.run(
        ["sh", "-c", f'exec env INVOCATION_ID=0123 SYSTEMD_EXEC_PID="$$" {command}'],
        capture_output=True, text=True, timeout=300, env=_clean())
    assert as_unit.returncode == 0, as_unit.stderr
    # a shell whose INVOCATION_ID was inherited from a terminal's unit: a person
    in_shell = subprocess.run(
        ["sh", "-c", f"INVOCATION_ID=0123 SYSTEMD_EXEC_PID=1 {command}"],
        capture_output=True, text=True, timeout=300, env=_clean())
    assert in_shell.returncode == 0, in_shell.stderr
    assert [r["operator"] for r in runs(workspace)] == ["scheduler", getpass.getuser()]
