"""SSH host keys and connection failures through the real CLI and a real sshd (issue #3)."""

from __future__ import annotations

import subprocess
import time

from tests.conftest import BACKUPCTL, Sshd, Workspace
from tests.integration.cli.helpers import runs, snapshot_count


def _job(ws: Workspace, sshd: Sshd, name: str = "emr") -> None:
    ws.job(name, sshd=sshd)
    (ws.root / "src" / name / "カルテ.txt").write_text("患者データ\n")


def test_unknown_host_key_is_refused_with_the_fingerprint_and_the_fix(
        workspace: Workspace, sshd: Sshd) -> None:
    _job(workspace, sshd)  # workspace.known_hosts does not exist: the key is unknown

    result = workspace.run("backup", "emr")

    assert result.returncode == 1, result.stderr
    assert sshd.fingerprint() in result.stderr
    # one form for the connection; known_hosts' own form only where known_hosts is quoted
    assert f"host key of root@127.0.0.1:{sshd.port} is unknown" in result.stderr
    assert f"has no key for [127.0.0.1]:{sshd.port}" in result.stderr
    assert result.stderr.count(f"127.0.0.1]:{sshd.port}") == 1
    assert "backupctl trust emr" in result.stderr and "compare" in result.stderr.lower()
    # never a ready-made command that trusts the key just offered (a man in the middle's)
    assert "--fingerprint" not in result.stderr
    assert snapshot_count(workspace.root / "repos" / "emr") == 0
    assert [r["status"] for r in runs(workspace)] == ["failed"]
    assert not workspace.known_hosts.exists(), "a key was trusted on first use"


def test_changed_host_key_is_refused(ssh_workspace: Workspace, sshd: Sshd) -> None:
    _job(ssh_workspace, sshd)
    old = sshd.fingerprint()
    sshd.rotate_host_key()

    result = ssh_workspace.run("backup", "emr")

    assert result.returncode == 1, result.stderr
    assert f"host key of root@127.0.0.1:{sshd.port} CHANGED" in result.stderr
    assert f"expects {old} for [127.0.0.1]:{sshd.port}" in result.stderr
    assert sshd.fingerprint() in result.stderr and old in result.stderr
    assert "backupctl trust emr" in result.stderr
    assert snapshot_count(ssh_workspace.root / "repos" / "emr") == 0


def test_trust_with_the_right_fingerprint_then_backup_works(
        workspace: Workspace, sshd: Sshd) -> None:
    _job(workspace, sshd)

    trusted = workspace.run("trust", "emr", "--fingerprint", sshd.fingerprint())

    assert trusted.returncode == 0, trusted.stderr
    assert f"emr: root@127.0.0.1:{sshd.port} offers" in trusted.stderr
    assert f"{workspace.known_hosts} (as [127.0.0.1]:{sshd.port})" in trusted.stderr
    assert sshd.fingerprint() in trusted.stderr
    backup = workspace.run("backup", "emr")
    assert backup.returncode == 0, backup.stderr
    assert snapshot_count(workspace.root / "repos" / "emr") == 1


def test_trust_after_a_reinstall_replaces_the_old_key(ssh_workspace: Workspace,
                                                      sshd: Sshd) -> None:
    _job(ssh_workspace, sshd)
    sshd.rotate_host_key()

    trusted = ssh_workspace.run("trust", "emr", "--fingerprint", sshd.fingerprint())

    assert trusted.returncode == 0, trusted.stderr
    assert "REPLACES" in trusted.stderr
    assert ssh_workspace.run("backup", "emr").returncode == 0
    assert ssh_workspace.known_hosts.read_text().count(f"[127.0.0.1]:{sshd.port}") == 1


def test_trust_with_a_wrong_fingerprint_is_refused(workspace: Workspace, sshd: Sshd) -> None:
    _job(workspace, sshd)
    wrong = "SHA256:" + "A" * 43

    result = workspace.run("trust", "emr", "--fingerprint", wrong)

    assert result.returncode == 1
    assert wrong in result.stderr and sshd.fingerprint() in result.stderr
    assert "nothing was trusted" in result.stderr
    assert not workspace.known_hosts.exists()
    assert workspace.run("backup", "emr").returncode == 1


def test_trust_without_fingerprint_asks_and_a_no_trusts_nothing(
        workspace: Workspace, sshd: Sshd) -> None:
    _job(workspace, sshd)
    result = workspace.run("trust", "emr", input="n\n")
    assert result.returncode == 1
    assert sshd.fingerprint() in result.stderr
    assert not workspace.known_hosts.exists()
    result = workspace.run("trust", "emr", input="y\n")
    assert result.returncode == 0, result.stderr
    assert workspace.known_hosts.exists()


def test_wrong_identity_file_fails_with_exit_1(ssh_workspace: Workspace, sshd: Sshd,
                                               tmp_path: object) -> None:
    other = ssh_workspace.root / "other_id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True)
    ssh_workspace.job("emr", sshd=sshd, host={"identity_file": str(other)})

    result = ssh_workspace.run("backup", "emr")

    assert result.returncode == 1
    assert "authentication as root" in result.stderr and str(other) in result.stderr
    assert snapshot_count(ssh_workspace.root / "repos" / "emr") == 0


def test_sshd_stopped_fails_after_bounded_retries(ssh_workspace: Workspace,
                                                  sshd: Sshd) -> None:
    _job(ssh_workspace, sshd)
    sshd.stop()

    started = time.monotonic()
    result = ssh_workspace.run("backup", "emr", timeout=120)
    elapsed = time.monotonic() - started

    assert result.returncode == 1
    assert f"cannot connect to root@127.0.0.1:{sshd.port}" in result.stderr
    assert "tried 3 times" in result.stderr
    assert elapsed < 60, "connect retries are not bounded"
    assert snapshot_count(ssh_workspace.root / "repos" / "emr") == 0
    # The server comes back: the next run works (nothing was left locked or broken).
    sshd.start()
    assert ssh_workspace.run("backup", "emr").returncode == 0


def test_trust_of_a_local_job_is_refused(workspace: Workspace) -> None:
    workspace.job("here")
    result = workspace.run("trust", "here")
    assert result.returncode == 2, "a usage error: nothing to trust, nothing was run"
    assert "host is local" in result.stderr


def test_trust_without_a_terminal_names_fingerprint_and_exits_2(
        workspace: Workspace, sshd: Sshd) -> None:
    """Under systemd, cron or `ssh host backupctl trust` there is nobody to answer (issue 29):
    not click's bare `Aborted.`, but how to do it without a terminal."""
    _job(workspace, sshd)
    result = subprocess.run([*BACKUPCTL, "-c", str(workspace.config), "trust", "emr"],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Aborted" not in result.stderr
    assert "emr: no terminal to confirm: pass --fingerprint SHA256:… (shown above)" \
        in result.stderr
    assert sshd.fingerprint() in result.stderr  # the one to compare, shown above
    assert not workspace.known_hosts.exists()
