"""Refusals of `backupctl restore` before anything runs (exit 2, nothing recorded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Sshd, Workspace, make_sshd
from tests.integration.recovery.conftest import proven_job, rows, ssh_target


@pytest.mark.parametrize(("to", "said"), [
    ("ssh://127.0.0.1", "absolute path"),
    ("ftp://127.0.0.1/x", "unknown form"),
    ("local:relative/dir", "absolute path"),
    ("ssh://root@127.0.0.1:99999/x", "port '99999'"),
    ("ssh://root@127.0.0.1:22/a/../b", "`..`"),
    ("ssh://ro ot@host/x", "not an ssh:// URL"),
])
def test_a_malformed_target_is_refused_naming_what_is_wrong(
        workspace: Workspace, to: str, said: str) -> None:
    workspace.job("emr")

    result = workspace.run("restore", "emr", "--to", to)

    assert result.returncode == 2, result.stderr
    assert said in result.stderr and "local:/ABS/DIR or ssh://" in result.stderr


def _recoveries(ws: Workspace) -> int:
    if not (ws.state_dir / "state.db").exists():
        return 0
    return len(rows(ws, "SELECT id FROM runs WHERE kind = 'recovery'"))


def test_no_proven_snapshot_non_empty_target_and_live_source_are_refused(
        workspace: Workspace, tmp_path: Path) -> None:
    src = proven_job(workspace)
    workspace.job("unproven", source=src)
    assert workspace.run("backup", "unproven").returncode == 0
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("data already there\n")

    unproven = workspace.run("restore", "unproven", "--to", f"local:{tmp_path / 'new'}")
    not_empty = workspace.run("restore", "emr", "--to", f"local:{busy}")
    live = workspace.run("restore", "emr", "--to", "local:/")
    own = workspace.run("restore", "emr", "--to", f"local:{src}")
    no_such = workspace.run("restore", "emr", "--to", f"local:{tmp_path / 'x'}",
                            "--snapshot", "deadbeef")
    no_path = workspace.run("restore", "emr", "--to", f"local:{tmp_path / 'y'}",
                            "--path", "/no/such/path")

    assert unproven.returncode == 2 and "--snapshot latest" in unproven.stderr
    assert "full verify" in unproven.stderr
    assert not_empty.returncode == 2 and "not empty" in not_empty.stderr
    assert "--overwrite" in not_empty.stderr
    assert live.returncode == 2 and "live source" in live.stderr and str(src) in live.stderr
    assert own.returncode == 2 and "live source" in own.stderr
    assert no_such.returncode == 2 and "deadbeef" in no_such.stderr
    assert no_path.returncode == 2 and "/no/such/path" in no_path.stderr
    assert (busy / "keep.txt").read_text() == "data already there\n"
    assert not (tmp_path / "new").exists()
    assert _recoveries(workspace) == 0


def test_an_untrusted_replacement_server_is_refused_until_trusted(
        workspace: Workspace, tmp_path: Path) -> None:
    proven_job(workspace)
    server: Sshd = make_sshd(tmp_path / "new-hardware")
    server.start()
    try:
        to = ssh_target(server, tmp_path / "data")
        refused = workspace.run("restore", "emr", "--to", to, "--identity",
                                str(server.identity))
        untouched = not (tmp_path / "data").exists()
        wrong = workspace.run("trust", to, "--fingerprint", "SHA256:" + "A" * 43)
        trusted = workspace.run("trust", to, "--fingerprint", server.fingerprint())
        restored = workspace.run("restore", "emr", "--to", to, "--identity",
                                 str(server.identity), "--snapshot", "latest")
    finally:
        server.stop()

    assert refused.returncode == 2, refused.stderr
    assert "not trusted" in refused.stderr and f"backupctl trust {to}" in refused.stderr
    assert server.fingerprint() in refused.stderr
    assert untouched
    assert wrong.returncode != 0 and "nothing was trusted" in wrong.stderr
    assert trusted.returncode == 0, trusted.stderr
    assert f"[127.0.0.1]:{server.port}" in workspace.known_hosts.read_text()
    assert restored.returncode == 0, restored.stdout + restored.stderr


def test_dry_run_prints_the_plan_masked_and_runs_nothing(
        workspace: Workspace, tmp_path: Path) -> None:
    workspace.job("emr")
    to = f"ssh://root@127.0.0.1:2222{tmp_path / 'new'}"

    result = workspace.run("restore", "emr", "--to", to, "--path", "/srv/emr", "--dry-run")

    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "rclone serve restic --append-only" in text and "remote port forward" in text
    assert "--no-lock restore" in text and "--include /srv/emr" in text
    assert "<rest:http://backupctl:***@127.0.0.1:<port>/>" in text
    assert "newest snapshot whose full verify passed" in text
    assert _recoveries(workspace) == 0 and not (tmp_path / "new").exists()
