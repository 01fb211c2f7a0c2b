"""Ransomware tripwires and the generation assertion, end to end (real restic, real CLI)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3

from tests.conftest import Sshd, Workspace, restic
from tests.repo_damage import flip_byte_in_largest_pack

from .helpers import (
    copy_entry,
    copy_of,
    job_status,
    repo_at,
    run_json,
    snapshot_times,
    touch_source,
)


def _runs(ws: Workspace, kind: str) -> list[tuple[str, str, str]]:
    with sqlite3.connect(ws.state_dir / "state.db") as db:
        return db.execute("SELECT status, operator, details FROM runs WHERE kind = ? "
                          "ORDER BY id", (kind,)).fetchall()


def test_encrypted_canary_freezes_pruning_until_cleared(workspace: Workspace) -> None:
    ws = workspace
    src = ws.root / "src" / "tw"
    src.mkdir(parents=True)
    canary = src / "経理 canary; $(x).docx"
    usb = repo_at(ws, ws.root / "usb" / "tw")
    ws.job("tw", source=src, generations={"last": 1}, verify={"canaries": [str(canary)]},
           copies=[copy_entry("usb", "offline", usb, ws)])
    assert ws.run("canary", "init", "tw").returncode == 0
    armed = canary.read_bytes()
    assert b"backupctl" in armed and len(armed) > 4096
    touch_source(ws, "tw")
    assert ws.run("backup", "tw").returncode == 0

    canary.write_bytes(os.urandom(len(armed)))  # "encrypted"
    code, result, _ = run_json(ws, "backup", "tw")

    assert code == 3
    job = result["jobs"][0]
    assert any("canary" in r and "changed" in r for r in job["suspicious"])
    assert "SUSPICIOUS" in job["error"]
    # still raised: later backups do not prune (last: 1 would keep one snapshot)
    touch_source(ws, "tw", "day3.bin")
    code, result, _ = run_json(ws, "backup", "tw")
    assert code == 3
    assert len(snapshot_times(ws.root / "repos" / "tw")) == 3
    code, copied, stderr = run_json(ws, "copy", "tw")
    assert code == 0, stderr
    assert "tripwire" in copy_of(copied, "usb")["pruned"]
    assert len(snapshot_times(usb)) == 3
    status = job_status(ws, "tw")
    assert status["suspicious"] is True
    assert any(f.startswith("SUSPICIOUS") for f in status["findings"])

    cleared = ws.run("clear", "tw", "--operator", "山田", "--reason", "canary test file")
    assert cleared.returncode == 0, cleared.stderr
    (status_, operator, details), = _runs(ws, "clear")
    assert (status_, operator) == ("success", "山田")
    assert json.loads(details)["reason"] == "canary test file"
    assert job_status(ws, "tw")["suspicious"] is False
    verified = ws.run("evidence", "verify", "--db")
    assert verified.returncode == 0, verified.stderr

    assert ws.run("canary", "init", "tw").returncode == 0  # re-arm
    code, result, stderr = run_json(ws, "backup", "tw")
    assert code == 0, (result, stderr)
    assert len(snapshot_times(ws.root / "repos" / "tw")) == 1  # pruning resumed


def test_vanished_canary_is_suspicious(workspace: Workspace) -> None:
    ws = workspace
    src = ws.root / "src" / "gone"
    src.mkdir(parents=True)
    canary = src / ".canary"
    ws.job("gone", source=src, verify={"canaries": [str(canary)]})
    assert ws.run("canary", "init", "gone").returncode == 0
    canary.unlink()

    code, result, _ = run_json(ws, "backup", "gone")

    assert code == 3
    assert any("vanished" in r for r in result["jobs"][0]["suspicious"])


def test_mass_change_is_a_spike_that_freezes_pruning(workspace: Workspace) -> None:
    """Every file rewritten at once (ransomware encrypting the share), measured by real
    restic against the job's earlier daily change, raises the tripwire."""
    ws = workspace
    ws.job("share", generations={"last": 1},
           tripwire={"changed_factor": 5, "changed_min": 20})
    names = [f"doc {i:03d}.xlsx" for i in range(60)]
    for name in names:
        touch_source(ws, "share", name, size=1024)
    assert ws.run("backup", "share").returncode == 0  # initial: not a daily change
    for day, edited in enumerate((names[:2], names[2:5], names[5:7]), start=2):
        for name in edited:
            touch_source(ws, "share", name, size=1024)
        code, result, stderr = run_json(ws, "backup", "share")
        assert code == 0 and not result["jobs"][0]["suspicious"], (day, result, stderr)

    for name in names:  # "encrypted"
        touch_source(ws, "share", name, size=1024)
    code, result, _ = run_json(ws, "backup", "share")

    assert code == 3
    [reason] = result["jobs"][0]["suspicious"]
    assert reason.startswith("60 files new or changed") and "median 2" in reason, reason
    assert len(snapshot_times(ws.root / "repos" / "share")) == 2  # last: 1, yet not pruned
    assert job_status(ws, "share")["suspicious"] is True


def test_snapshot_deleted_behind_the_tools_back_is_reported(workspace: Workspace) -> None:
    ws = workspace
    usb = repo_at(ws, ws.root / "usb" / "gl")
    ws.job("gl", generations={"last": 3}, copies=[copy_entry("usb", "offline", usb, ws)])
    for i in range(3):
        touch_source(ws, "gl", f"day{i}.bin")
        assert ws.run("backup", "gl").returncode == 0
    assert job_status(ws, "gl")["repositories"][0]["finding"] is None
    snaps = json.loads(restic(ws.root / "repos" / "gl", "snapshots", "--json").stdout)
    victim = sorted(snaps, key=lambda s: s["time"])[1]
    restic(ws.root / "repos" / "gl", "forget", victim["id"])

    code, result, stderr = run_json(ws, "copy", "gl")

    assert code == 3, stderr
    primary = result["jobs"][0]["primary_generations"]
    assert primary["count"] == 2 and primary["expected"] == 3
    assert len(primary["missing"]) == 1
    assert "primary LOST 1 snapshot" in result["jobs"][0]["error"]
    status = job_status(ws, "gl")
    assert any("primary LOST 1 snapshot" in f for f in status["findings"])
    rows = {r["repository"]: r for r in status["repositories"]}
    assert rows["primary"]["count"] == 2 and rows["primary"]["expected"] == 3
    # the copy got everything the primary still had; it lost nothing itself
    assert rows["usb"]["finding"] is None
    # the next backup still reports it (restic keeps the 3 newest it has; one is gone)
    touch_source(ws, "gl", "day4.bin")
    code, result, _ = run_json(ws, "backup", "gl")
    assert any("LOST 1 snapshot" in w for w in result["jobs"][0]["warnings"])


def test_verify_from_a_copy_passes_and_fails_on_a_corrupted_copy(workspace: Workspace) -> None:
    ws = workspace
    usb = repo_at(ws, ws.root / "usb" / "vf")
    ws.job("vf", verify={"sample": "all"}, copies=[copy_entry("usb", "offline", usb, ws)])
    touch_source(ws, "vf", "big.bin", 3 * 1024 * 1024)
    assert ws.run("backup", "vf").returncode == 0
    assert ws.run("copy", "vf").returncode == 0

    code, result, stderr = run_json(ws, "verify", "vf", "--from", "usb")
    assert code == 0, (result, stderr)
    verified = result["jobs"][0]
    assert verified["repository"] == "usb" and verified["files_checked"] >= 1

    flip_byte_in_largest_pack(usb)

    code, result, stderr = run_json(ws, "verify", "vf", "--from", "usb")
    assert code == 3, (result, stderr)
    assert result["jobs"][0]["status"] == "bad_data"
    # the primary is untouched and still verifies
    code, _, stderr = run_json(ws, "verify", "vf")
    assert code == 0, stderr


def test_canaries_over_ssh_are_written_and_checked_on_the_host(ssh_workspace: Workspace,
                                                               sshd: Sshd) -> None:
    ws = ssh_workspace
    src = ws.root / "src" / "remote"
    src.mkdir(parents=True)
    canary = src / "カナリア 'q' $(touch pwned).xlsx"
    ws.job("remote", source=src, sshd=sshd, verify={"canaries": [str(canary)]})

    proc = ws.run("canary", "init", "remote", "--json")

    assert proc.returncode == 0, proc.stderr
    armed = json.loads(proc.stdout)["canaries"][0]
    assert armed["path"] == str(canary)
    assert armed["sha256"] == hashlib.sha256(canary.read_bytes()).hexdigest()
    assert ws.run("backup", "remote").returncode == 0
    canary.write_bytes(canary.read_bytes()[:-10] + b"encrypted!")
    code, result, _ = run_json(ws, "backup", "remote")
    assert code == 3 and "changed" in result["jobs"][0]["suspicious"][0]
    assert not list(ws.root.rglob("pwned*"))
