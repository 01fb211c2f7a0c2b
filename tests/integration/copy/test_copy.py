"""`backupctl copy` against real restic, real rclone REST servers and real chattr seals."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.conftest import PASSWORD, RestServer, Workspace, restic

from .helpers import (
    copy_entry,
    copy_of,
    job_status,
    repo_at,
    run_json,
    snapshot_times,
    touch_source,
)


def test_offline_append_only_and_sealed_copies_hold_every_snapshot_and_pass_the_probe(
        workspace: Workspace, rest_server: Callable[..., RestServer], chattr_dir: Path) -> None:
    ws = workspace
    usb = repo_at(ws, ws.root / "usb" / "restic" / "multi")
    worm = rest_server(repo_at(ws, ws.root / "worm"), append_only=True)
    sealed = repo_at(ws, chattr_dir / "multi")
    ws.job("multi", copies=[
        copy_entry("usb", "offline", usb, ws),
        copy_entry("worm", "immutable", worm.url, ws, max_age="2d"),
        copy_entry("sealed", "immutable", sealed, ws, seal="chattr")])
    assert ws.run("media", "init", "multi", "usb").returncode == 0
    touch_source(ws, "multi")
    assert ws.run("backup", "multi").returncode == 0

    code, result, stderr = run_json(ws, "copy", "multi")

    assert code == 0, stderr
    primary = snapshot_times(ws.root / "repos" / "multi")
    assert snapshot_times(usb) == primary
    assert snapshot_times(worm.url) == primary
    assert snapshot_times(sealed) == primary
    assert copy_of(result, "worm")["probe"]["ok"] is True
    assert copy_of(result, "sealed")["probe"]["ok"] is True
    label = copy_of(result, "usb")["medium"]["label"]
    assert label and label.startswith("backupctl-")
    # the seal is real: every repository file but locks/ is immutable
    attrs = subprocess.run(["lsattr", "-R", str(sealed / "snapshots")], capture_output=True,
                           text=True, check=True).stdout
    assert attrs.strip() and all("i" in line.split()[0] for line in attrs.splitlines()
                                 if line.strip() and not line.endswith(":"))
    # a second copy after a new backup still works on the sealed and append-only copies
    touch_source(ws, "multi", "more.bin")
    assert ws.run("backup", "multi").returncode == 0
    code, result, stderr = run_json(ws, "copy", "multi")
    assert code == 0, stderr
    assert len(snapshot_times(sealed)) == 2 and len(snapshot_times(worm.url)) == 2
    assert copy_of(result, "sealed")["copied"] == 1
    assert restic(sealed, "check").returncode == 0

    status = job_status(ws, "multi")
    assert status["suspicious"] is False
    copies = {c["name"]: c for c in status["copies"]}
    assert copies["worm"]["probe"]["ok"] is True and copies["sealed"]["probe"]["ok"] is True
    assert copies["usb"]["medium"]["label"] == label
    assert copies["usb"]["media"][0]["last_attached"] is not None
    assert all(c["too_old"] is False and c["last_copy_status"] == "success"
               for c in copies.values())
    repos = {r["repository"]: r for r in status["repositories"]}
    assert set(repos) == {"primary", "usb", "worm", "sealed"}
    assert all(r["finding"] is None and r["count"] == 2 for r in repos.values())
    assert not [f for f in status["findings"] if "copy" in f or "LOST" in f], status["findings"]


def test_declared_immutable_but_writable_copies_fail_the_probe_with_exit_3(
        workspace: Workspace, rest_server: Callable[..., RestServer]) -> None:
    ws = workspace
    writable_rest = rest_server(repo_at(ws, ws.root / "fake-worm"), append_only=False)
    plain = repo_at(ws, ws.root / "plain-dir")
    ws.job("liar", copies=[copy_entry("fake-worm", "immutable", writable_rest.url, ws),
                           copy_entry("plain", "immutable", plain, ws)])
    touch_source(ws, "liar")
    assert ws.run("backup", "liar").returncode == 0

    code, result, stderr = run_json(ws, "copy", "liar")

    assert code == 3, stderr
    for name in ("fake-worm", "plain"):
        entry = copy_of(result, name)
        assert entry["status"] == "bad_data"
        assert entry["probe"]["ok"] is False
        assert f"copy {name} is NOT immutable: deleting" in entry["error"]
        assert "succeeded" in entry["error"]
        # the data itself was copied: only the immutability claim is false
        assert entry["snapshots"] == 1
    status = job_status(ws, "liar")
    assert [c["probe"]["ok"] for c in status["copies"]] == [False, False]
    assert any("fake-worm: immutability NOT proven" in f for f in status["findings"])


def test_missing_offline_medium_is_reported_and_other_copies_still_run(
        workspace: Workspace, rest_server: Callable[..., RestServer]) -> None:
    ws = workspace
    (ws.root / "usb-mount").mkdir()  # the mount point exists, the disk is not mounted
    worm = rest_server(repo_at(ws, ws.root / "worm"), append_only=True)
    ws.job("away", copies=[
        copy_entry("usb", "offline", ws.root / "usb-mount" / "restic" / "away", ws),
        copy_entry("worm", "immutable", worm.url, ws)])
    touch_source(ws, "away")
    assert ws.run("backup", "away").returncode == 0

    proc = ws.run("copy", "away")
    assert proc.returncode == 1
    assert "medium not attached" in proc.stderr
    code, result, _ = run_json(ws, "copy", "away")

    assert code == 1
    usb, good = copy_of(result, "usb"), copy_of(result, "worm")
    assert usb["status"] == "failed" and "medium not attached" in usb["error"]
    assert good["status"] == "ok" and good["probe"]["ok"] is True
    assert snapshot_times(worm.url) == snapshot_times(ws.root / "repos" / "away")
    status = job_status(ws, "away")
    assert any("copy usb has never succeeded" in f for f in status["findings"])
    assert any("last copy to usb failed" in f and "not attached" in f
               for f in status["findings"])


def test_rest_credentials_never_leak(workspace: Workspace,
                                     rest_server: Callable[..., RestServer]) -> None:
    ws = workspace
    server = rest_server(repo_at(ws, ws.root / "worm"), append_only=True)
    url = f"rest:http://backup:{PASSWORD}x@127.0.0.1:{server.port}/"
    ws.job("creds", copies=[copy_entry("worm", "immutable", url, ws)])
    touch_source(ws, "creds")
    assert ws.run("backup", "creds").returncode == 0

    proc = ws.run("-v", "copy", "creds", "--json")
    status = ws.run("status", "--json")

    assert proc.returncode == 0, proc.stderr
    for text in (proc.stdout, proc.stderr, status.stdout):
        assert f"{PASSWORD}x" not in text and PASSWORD not in text
    assert "backup:***@" in proc.stdout
    dump = subprocess.run(["sqlite3", str(ws.state_dir / "state.db"), ".dump"],
                          capture_output=True, text=True, check=True).stdout
    assert PASSWORD not in dump


def test_the_text_output_says_what_the_copy_holds(workspace: Workspace) -> None:
    """`1 held` meant nothing to an admin (issue 29): the snapshots now in the copy."""
    usb = repo_at(workspace, workspace.root / "usb" / "plain")
    workspace.job("plain", copies=[copy_entry("usb", "offline", usb, workspace)])
    touch_source(workspace, "plain")
    assert workspace.run("backup", "plain").returncode == 0

    result = workspace.run("copy", "plain")

    assert result.returncode == 0, result.stderr
    assert "[OK] plain: usb ok (1 copied, 1 snapshot(s) in the copy)" in result.stderr
    assert " held" not in result.stderr
