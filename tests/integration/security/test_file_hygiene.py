"""Files that hold secrets or patient data, and values that reach units (issue #13):
secrets others could read are refused, what backupctl writes is private, control
characters never reach a unit file, and a scratch_dir others can write is refused."""

from __future__ import annotations

import stat
from datetime import date

import pytest

from tests import yaml_helpers
from tests.conftest import Sshd, Workspace


def _mode(path: object) -> int:
    from pathlib import Path

    return stat.S_IMODE(Path(str(path)).stat().st_mode)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_password_file_others_can_read_is_refused_naming_file_and_mode(
        workspace: Workspace, mode: int) -> None:
    workspace.job("pw")
    password = workspace.password_file()
    password.chmod(mode)
    done = workspace.run("backup", "pw")
    assert done.returncode == 2
    assert f"{password}" in done.stderr and f"mode {mode:04o}" in done.stderr
    assert "jobs/pw.yaml:" in done.stderr and "password_file" in done.stderr
    assert not (workspace.state_dir / "state.db").exists(), "nothing ran"


def test_an_identity_file_others_can_read_is_refused(ssh_workspace: Workspace,
                                                     sshd: Sshd) -> None:
    ssh_workspace.job("id", sshd=sshd)
    sshd.identity.chmod(0o640)
    done = ssh_workspace.run("validate")
    assert done.returncode == 2
    assert "identity file" in done.stderr and "mode 0640" in done.stderr


def test_a_bundle_password_file_others_can_read_is_refused(workspace: Workspace) -> None:
    workspace.job("b")
    bundle_pw = workspace.password_file("bundle", "bundle-password-1")
    bundle_pw.chmod(0o644)
    year = date.today().year
    done = workspace.run("evidence", "export", "--from", f"{year}-01-01", "--to",
                         f"{year}-12-31", "-o", str(workspace.root / "b.zip"),
                         "--password-file", str(bundle_pw))
    assert done.returncode == 2 and "mode 0644" in done.stderr
    assert not (workspace.root / "b.zip").exists()


def test_the_state_database_and_reports_are_private(workspace: Workspace) -> None:
    workspace.job("priv")
    (workspace.root / "src" / "priv" / "カルテ.txt").write_text("患者\n")
    assert workspace.run("backup", "priv").returncode == 0
    year = date.today().year
    report = workspace.root / "report.html"
    assert workspace.run("report", "--from", f"{year}-01-01", "--to", f"{year}-12-31",
                         "-o", str(report)).returncode == 0
    assert _mode(workspace.state_dir / "state.db") == 0o600
    assert _mode(workspace.state_dir) == 0o700
    assert _mode(report) == 0o600


def test_an_older_state_database_readable_by_others_is_made_private(
        workspace: Workspace) -> None:
    workspace.job("old")
    assert workspace.run("status").returncode == 0
    (workspace.state_dir / "state.db").chmod(0o644)
    assert workspace.run("status").returncode == 0
    assert _mode(workspace.state_dir / "state.db") == 0o600


def test_a_newline_in_a_job_value_is_a_config_error_and_never_reaches_a_unit(
        workspace: Workspace) -> None:
    data = workspace.job("nl")
    data["source"]["paths"].append("/srv/x\nExecStartPre=/bin/sh -c 'id > /tmp/pwned'")
    (workspace.jobs_dir / "nl.yaml").write_text(yaml_helpers.dump(data))
    for args in (["validate"], ["schedule", "install", "--dry-run"]):
        done = workspace.run(*args)
        assert done.returncode == 2, args
        assert "nl.yaml:" in done.stderr and "source.paths[1]" in done.stderr
        assert "control character" in done.stderr
        assert "ExecStartPre=/bin/sh" not in done.stdout


def test_a_scratch_dir_others_can_write_is_refused_and_nothing_is_restored(
        workspace: Workspace) -> None:
    workspace.job("scr", verify={"sample": "all"})
    (workspace.root / "src" / "scr" / "a.txt").write_text("患者\n")
    assert workspace.run("backup", "scr").returncode == 0
    workspace.scratch_dir.mkdir(exist_ok=True)
    workspace.scratch_dir.chmod(0o777)
    done = workspace.run("verify", "scr", "--mode", "full")
    assert done.returncode == 2
    assert str(workspace.scratch_dir) in done.stderr and "writable by group or others" \
        in done.stderr
    assert list(workspace.scratch_dir.iterdir()) == []
    assert f"run: chmod 711 {workspace.scratch_dir}" in done.stderr  # what databases need
    workspace.scratch_dir.chmod(0o711)  # the hint, followed
    assert workspace.run("verify", "scr", "--mode", "full").returncode == 0


def test_a_planted_symlink_in_scratch_is_removed_and_its_target_untouched(
        workspace: Workspace) -> None:
    workspace.job("sym")
    target = workspace.root / "etc-like"
    target.mkdir()
    target.chmod(0o755)
    (target / "passwd").write_text("root:x:0:0\n")
    workspace.scratch_dir.mkdir(mode=0o700)
    (workspace.scratch_dir / "sym.quick-planted").symlink_to(target)
    assert workspace.run("status").returncode == 0  # the next start wipes leftovers
    assert not (workspace.scratch_dir / "sym.quick-planted").is_symlink()
    assert (target / "passwd").read_text() == "root:x:0:0\n"
    assert _mode(target) == 0o755
