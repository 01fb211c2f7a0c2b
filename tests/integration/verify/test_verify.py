"""Restore tests against real restic (local repository and over the real sshd), issue #4."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests import yaml_helpers
from tests.conftest import BACKUPCTL, PASSWORD, Sshd, Workspace, restic
from tests.repo_damage import flip_byte

from .conftest import backup, fill, leftovers, packs, run_json

MODES = ["quick", "full"]


def _hostile(mode: str, sshd: Sshd | None, ws: Workspace, name: str) -> Path:
    src = ws.root / "src" / f"{name} ' $(x) 日本"
    fill(src)
    ws.job(name, source=src, sshd=sshd, verify={"sample": "all"})
    return src


@pytest.mark.parametrize("mode", MODES)
def test_clean_snapshot_verifies_locally(workspace: Workspace, mode: str) -> None:
    src = _hostile(mode, None, workspace, "clean")
    backup(workspace, "clean")

    code, result, stderr = run_json(workspace, "verify", "clean", "--mode", mode)

    assert code == 0, (result, stderr)
    files = [p for p in src.rglob("*") if p.is_file()]
    assert result["status"] == "ok" and result["mode"] == mode
    assert result["files_checked"] == len(files)
    assert result["bytes_checked"] == sum(p.stat().st_size for p in files)
    assert result["mismatches"] == [] and result["coverage"] == "1.000000"
    assert 2 <= result["restic_invocations"] <= 5, "one restic process per file?"
    if mode == "full":
        assert result["files_restored"] == len(files)
        assert result["restore_ms"] > 0
        # restore and check: the backup's listing digest stood in for `restic ls`
        assert result["restic_invocations"] == 2
    assert leftovers(workspace) == []
    assert not list(workspace.root.rglob("pwned*"))


@pytest.mark.parametrize("mode", MODES)
def test_clean_snapshot_verifies_over_ssh(ssh_workspace: Workspace, sshd: Sshd,
                                          mode: str) -> None:
    _hostile(mode, sshd, ssh_workspace, "remote")
    job = backup(ssh_workspace, "remote")
    assert job["manifest"]["references"] == job["manifest"]["files_total"] > 30

    code, result, stderr = run_json(ssh_workspace, "verify", "remote", "--mode", mode)

    assert code == 0, (result, stderr)
    assert result["files_checked"] == job["manifest"]["files_total"]
    assert PASSWORD not in json.dumps(result) + stderr + sshd.log.read_text()
    assert leftovers(ssh_workspace) == []


def test_many_sampled_files_cost_a_handful_of_restic_runs(workspace: Workspace) -> None:
    src = workspace.root / "src" / "many"
    src.mkdir(parents=True)
    for i in range(600):
        (src / f"f{i:04d} *.txt").write_text(str(i))
    workspace.job("many", source=src, verify={"sample": 500})
    backup(workspace, "many")

    code, result, _ = run_json(workspace, "verify", "many")

    assert code == 0
    assert result["files_checked"] == 500
    # restore --include (restic resolves `latest` itself) and check; never one per file
    assert result["restic_invocations"] <= 3




@pytest.mark.parametrize("mode", MODES)
def test_flipped_byte_in_a_pack_is_bad_data(workspace: Workspace, mode: str) -> None:
    src = _hostile(mode, None, workspace, "flip")
    backup(workspace, "flip")
    flip_byte(packs(workspace.root / "repos" / "flip")[0])

    code, result, stderr = run_json(workspace, "verify", "flip", "--mode", mode)

    assert code == 3, (result, stderr)
    assert result["status"] == "bad_data"
    bad = {m["path"] for m in result["mismatches"]}
    assert str(src / "big.bin") in bad
    assert str(src / "big.bin") in result["error"]
    assert leftovers(workspace) == []


def test_deleted_pack_is_bad_data_naming_the_pack(workspace: Workspace) -> None:
    _hostile("quick", None, workspace, "gone")
    backup(workspace, "gone")
    victim = packs(workspace.root / "repos" / "gone")[0]
    victim.unlink()

    code, result, stderr = run_json(workspace, "verify", "gone")

    assert code == 3, (result, stderr)
    assert victim.name in result["error"] or any(
        victim.name in (m["path"] + (m["got"] or "")) for m in result["mismatches"])
    assert leftovers(workspace) == []


def test_overwritten_pack_is_found_without_read_data_subset(workspace: Workspace) -> None:
    src = workspace.root / "src" / "ow"
    fill(src)
    workspace.job("ow", source=src, verify={"sample": 1, "always": [str(src / "big.bin")]})
    backup(workspace, "ow")
    pack = packs(workspace.root / "repos" / "ow")[0]
    pack.chmod(0o600)
    pack.write_bytes(os.urandom(pack.stat().st_size))

    code, result, stderr = run_json(workspace, "verify", "ow")

    assert code == 3, (result, stderr)
    assert str(src / "big.bin") in {m["path"] for m in result["mismatches"]}
    assert "read-data" not in result["check_output"]
    assert leftovers(workspace) == []


def test_live_file_changed_after_backup_is_not_a_failure(workspace: Workspace) -> None:
    src = workspace.root / "src" / "live"
    fill(src)
    live = src / "live.db"
    live.write_bytes(b"before\n" * 1000)
    # The after-hook runs between restic's snapshot and the source manifest, like a
    # database that keeps writing while the backup finishes.
    data = workspace.job("live", source=src, verify={"sample": "all"})
    data["source"]["after"] = [f"printf 'written later' >> {shlex.quote(str(live))}"]
    (workspace.jobs_dir / "live.yaml").write_text(yaml_helpers.dump(data))
    job = backup(workspace, "live")
    assert job["manifest"]["changed_since_snapshot"] == [str(live)]

    for mode in MODES:
        code, result, stderr = run_json(workspace, "verify", "live", "--mode", mode)
        assert code == 0, (result, stderr)
        assert result["changed_since_snapshot"] == [str(live)]
        assert result["files_checked"] == job["manifest"]["files_total"] - 1
    assert leftovers(workspace) == []


def _sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE karte (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO karte (body) VALUES (?)", [("患者" * 50,)] * 2000)
    conn.commit()
    conn.close()


def test_check_commands_run_on_the_restored_tree(workspace: Workspace) -> None:
    src = workspace.root / "src" / "db dir $(x)"
    src.mkdir(parents=True)
    _sqlite(src / "good.sqlite")
    bad = src / "bad.sqlite"
    _sqlite(bad)
    data = bytearray(bad.read_bytes())
    data[4096 + 100:4096 + 3000] = os.urandom(2900)  # a corrupted page, as backed up
    bad.write_bytes(bytes(data))
    ok = f"sqlite3 {{restored}}'{src}/good.sqlite' 'PRAGMA integrity_check' | grep -qx ok"
    broken = f"sqlite3 {{restored}}'{src}/bad.sqlite' 'PRAGMA integrity_check' | grep -qx ok"
    workspace.job("db", source=src, verify={"sample": "all", "commands": [ok]})
    backup(workspace, "db")

    code, result, stderr = run_json(workspace, "verify", "db", "--mode", "full")
    assert code == 0, (result, stderr)
    assert result["commands"][0]["exit_code"] == 0

    workspace.job("db", source=src, repo=workspace.root / "repos" / "db",
                  verify={"sample": "all", "commands": [ok, broken]})
    code, result, stderr = run_json(workspace, "verify", "db", "--mode", "full")
    assert code == 3, (result, stderr)
    assert result["mismatches"] == []  # the bytes are right; the application check is not
    assert "bad.sqlite" in result["error"] and result["commands"][1]["exit_code"] != 0
    assert leftovers(workspace) == []


def test_restore_slower_than_rto_is_bad_data(workspace: Workspace, tmp_path: Path) -> None:
    src = workspace.root / "src" / "slow"
    fill(src, big=3 * 1024 * 1024)
    workspace.job("slow", source=src, verify={"sample": 2, "rto": "1s"})
    backup(workspace, "slow")
    # A slow link to the repository: the real restic, its restores limited to 1 MiB/s.
    real = shutil.which("restic")
    wrapper = tmp_path / "bin" / "restic"
    wrapper.parent.mkdir()
    wrapper.write_text("#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = restore ] && exec "
                       f"{real} --limit-download 1024 \"$@\"; done\nexec {real} \"$@\"\n")
    wrapper.chmod(0o755)
    env = {"PATH": f"{wrapper.parent}:{os.environ['PATH']}"}

    proc = workspace.run("verify", "slow", "--mode", "full", "--json", env=env)

    result = json.loads(proc.stdout)["jobs"][0]
    assert proc.returncode == 3, (result, proc.stderr)
    assert result["restore_ms"] > 1000 and result["rto_seconds"] == 1
    assert "RTO" in result["error"] and result["mismatches"] == []
    assert leftovers(workspace) == []


def _session_pids(sid: int) -> list[int]:
    """Processes of a session (backupctl and the restic it started)."""
    pids = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid:  # fields after the name: state ppid pgrp session …
            pids.append(int(stat_file.parent.name))
    return pids


def _wait_reaped(pids: list[int]) -> None:
    """Wait until the killed processes are gone, zombies included (restic treats a lock
    whose PID still exists as live)."""
    deadline = time.monotonic() + 60
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        assert time.monotonic() < deadline, f"processes {pids} were not reaped"
        time.sleep(0.05)


@pytest.mark.slow
def test_killed_full_verify_is_wiped_and_recorded_on_the_next_run(
        workspace: Workspace, big_source: Path) -> None:
    workspace.job("kill", source=big_source, verify={"sample": 2})
    backup(workspace, "kill")
    proc = subprocess.Popen([*BACKUPCTL, "-c", str(workspace.config), "verify", "kill",
                             "--mode", "full"], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
            p.is_file() and p.stat().st_size > 0 for p in leftovers(workspace)):
        time.sleep(0.05)
    victims = _session_pids(proc.pid)
    assert len(victims) >= 2, "restic was not running"
    os.killpg(proc.pid, signal.SIGKILL)  # backupctl and its restic, like a power cut
    proc.wait()
    _wait_reaped(victims)
    assert any(p.is_file() for p in leftovers(workspace)), "nothing was being restored"

    code, result, stderr = run_json(workspace, "verify", "kill")

    assert code == 0, (result, stderr)
    assert leftovers(workspace) == []
    db = sqlite3.connect(workspace.state_dir / "state.db")
    rows = db.execute("SELECT status, error FROM runs WHERE kind='verify' ORDER BY id").fetchall()
    assert rows[0][0] == "interrupted" and "killed" in rows[0][1]
    assert rows[1][0] == "success"
    # restic 0.14 keeps the killed restore's lock; the next run removed it as stale
    assert any("unlock" in step for step in result["steps"])
    assert not list((workspace.root / "repos" / "kill" / "locks").iterdir())


def test_verify_a_copy_by_its_original_snapshot(workspace: Workspace) -> None:
    src = workspace.root / "src" / "cp"
    fill(src)
    copy_repo = workspace.new_repo("cp-offline")
    workspace.job("cp", source=src, verify={"sample": "all"}, copies=[{
        "name": "usb", "kind": "offline", "url": str(copy_repo),
        "password_file": str(workspace.password_file()), "max_age": "7d"}])
    job = backup(workspace, "cp")
    pw = workspace.password_file()
    subprocess.run(["restic", "--repo", str(copy_repo), "--password-file", str(pw), "copy",
                    "--from-repo", str(workspace.root / "repos" / "cp"),
                    "--from-password-file", str(pw)], check=True, capture_output=True)

    code, result, stderr = run_json(workspace, "verify", "cp", "--from", "usb")

    assert code == 0, (result, stderr)
    assert result["repository"] == "usb"
    assert result["files_checked"] == job["manifest"]["files_total"]
    assert not result["snapshot_id"].startswith(job["snapshot_id"])  # a copy's own id


def test_verify_an_older_snapshot_by_id(workspace: Workspace) -> None:
    src = workspace.root / "src" / "old"
    fill(src)
    workspace.job("old", source=src, verify={"sample": "all"})
    first = backup(workspace, "old")
    (src / "big.bin").write_bytes(os.urandom(1000))
    backup(workspace, "old")

    code, result, stderr = run_json(workspace, "verify", "old", "--snapshot",
                                    first["snapshot_id"], "--mode", "full")

    assert code == 0, (result, stderr)
    assert result["snapshot_id"].startswith(first["snapshot_id"])
    assert result["bytes_restored"] > 2 * 1024 * 1024


def test_verify_is_recorded_with_evidence(workspace: Workspace) -> None:
    fill(workspace.root / "src" / "ev")
    workspace.job("ev")
    backup(workspace, "ev")
    code, result, _ = run_json(workspace, "verify", "ev")
    assert code == 0
    db = sqlite3.connect(workspace.state_dir / "state.db")
    run = db.execute(
        "SELECT status, repository, details FROM runs WHERE kind='verify'").fetchone()
    assert run[0] == "success" and run[1] == "primary"
    details = json.loads(run[2])
    for key in ("files_checked", "mismatches", "restore_ms", "rto_seconds", "coverage",
                "mode"):
        assert key in details
    evidence = db.execute("SELECT kind, result, details, restic_version FROM evidence "
                          "WHERE kind='verify'").fetchone()
    assert evidence[0] == "verify" and evidence[1] == "pass"
    assert json.loads(evidence[2])["files_checked"] == result["files_checked"]
    assert evidence[3] != "unknown"


def test_always_path_missing_from_snapshot_fails_the_backup(workspace: Workspace) -> None:
    src = workspace.root / "src" / "miss"
    fill(src)
    workspace.job("miss", verify={"always": [str(src / "emr.dump")]})
    code, result, _ = run_json(workspace, "backup", "miss")
    assert code == 1
    assert str(src / "emr.dump") in result["error"] and "verify.always" in result["error"]


def test_rotation_covers_the_whole_snapshot(workspace: Workspace) -> None:
    src = workspace.root / "src" / "rot"
    src.mkdir(parents=True)
    for i in range(40):
        (src / f"f{i}").write_text(str(i))
    workspace.job("rot", source=src, verify={"sample": "25%"})
    ratios = [float(backup(workspace, "rot")["manifest"]["coverage"]) for _ in range(4)]
    assert ratios == [0.25, 0.5, 0.75, 1.0]


def test_not_enough_scratch_space_refuses_a_full_verify(workspace: Workspace,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    fill(workspace.root / "src" / "space")
    workspace.job("space")
    backup(workspace, "space")
    from collections import namedtuple

    from backupctl.actions import verify as verify_action
    from backupctl.actions.context import Context
    from backupctl.config.validate import load_config
    from backupctl.state.db import Store
    from backupctl.status import ExitStatus

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10, 9, 1))
    config = load_config(workspace.config)
    ctx = Context(config=config, store=Store(config.settings.effective_database_url))
    result = verify_action.verify(ctx, config.job("space"), mode="full")
    assert result.status is ExitStatus.FAILED
    assert "not enough free space" in (result.error or "")
    assert "nothing was restored" in (result.error or "")
    assert leftovers(workspace) == []


def test_dry_run_runs_nothing(workspace: Workspace) -> None:
    workspace.job("dry", verify={"commands": ["true {restored}"]})
    proc = workspace.run("verify", "dry", "--mode", "full", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "restore" in proc.stdout and PASSWORD not in proc.stdout
    assert not (workspace.state_dir / "state.db").exists()


def test_unknown_repository_is_a_usage_error(workspace: Workspace) -> None:
    workspace.job("usage")
    proc = workspace.run("verify", "usage", "--from", "nope")
    assert proc.returncode == 2 and "nope" in proc.stderr


def test_restored_files_match_byte_for_byte_reference_hashes(workspace: Workspace) -> None:
    """The manifest's hashes are the source's real SHA-256 (not restic's own idea)."""
    src = workspace.root / "src" / "ref"
    fill(src)
    workspace.job("ref", source=src, verify={"sample": "all"})
    backup(workspace, "ref")
    db = sqlite3.connect(workspace.state_dir / "state.db")
    rows = dict(db.execute("SELECT path, sha256 FROM manifest WHERE job='ref'").fetchall())
    assert rows == {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
                    for p in src.rglob("*") if p.is_file()}
    assert restic(workspace.root / "repos" / "ref", "snapshots").returncode == 0


@pytest.mark.parametrize("mode", MODES)
def test_latest_snapshot_without_manifest_is_not_proven(workspace: Workspace,
                                                        mode: str) -> None:
    """A newer snapshot made outside backupctl must not be passed with an older manifest."""
    src = workspace.root / "src" / "foreign"
    fill(src)
    workspace.job("foreign", source=src, verify={"sample": "all"})
    backup(workspace, "foreign")
    (src / "big.bin").write_bytes(os.urandom(4096))
    restic(workspace.root / "repos" / "foreign", "backup", "--host", "foreign", str(src))

    code, result, stderr = run_json(workspace, "verify", "foreign", "--mode", mode)

    assert code == 1, (result, stderr)
    assert "no source manifest" in result["error"]
    assert leftovers(workspace) == []


def test_full_verify_counts_by_the_backups_digest_around_links_and_special_files(
        workspace: Workspace) -> None:
    """Links, a hard link, a fifo, empty files and directories, a read-only directory: the
    restored tree gives the digest the backup recorded, so no `restic ls` runs."""
    src = workspace.root / "src" / "shapes"
    fill(src, big=64 * 1024)
    (src / "empty.txt").write_bytes(b"")
    (src / "empty dir").mkdir()
    (src / "link to file").symlink_to(src / "small-00.dat")
    (src / "link to dir").symlink_to(src / "empty dir")
    (src / "dangling").symlink_to(src / "nowhere")
    os.link(src / "small-01.dat", src / "hard link.dat")
    os.mkfifo(src / "fifo")
    (src / "locked").mkdir()
    (src / "locked" / "inside.txt").write_text("患者\n")
    (src / "locked").chmod(0o500)
    workspace.job("shapes", source=src, verify={"sample": "all"})
    backup(workspace, "shapes")

    code, result, stderr = run_json(workspace, "verify", "shapes", "--mode", "full")

    assert code == 0, (result, stderr)
    files = [p for p in src.rglob("*") if p.is_file() and not p.is_symlink()
             and p.name != "fifo"]
    assert result["files_restored"] == len(files) == result["files_checked"]
    assert result["restic_invocations"] == 2, "restore and check only"
    assert leftovers(workspace) == []


def test_full_verify_whose_tree_differs_from_the_digest_asks_restic_ls(
        workspace: Workspace) -> None:
    """A recorded digest the tree does not give (here: altered in the state database) is
    not a finding by itself: `restic ls` of the restored snapshot decides, and names
    nothing missing."""
    src = workspace.root / "src" / "altered"
    fill(src, big=64 * 1024)
    workspace.job("altered", source=src, verify={"sample": "all"})
    backup(workspace, "altered")
    db = sqlite3.connect(workspace.state_dir / "state.db")
    with db:
        changed = db.execute(
            "UPDATE runs SET details = json_set(details, '$.manifest.files_digest', ?) "
            "WHERE job = 'altered' AND kind = 'backup'", ("0" * 64,)).rowcount
    db.close()
    assert changed == 1

    code, result, stderr = run_json(workspace, "verify", "altered", "--mode", "full")

    assert code == 0, (result, stderr)
    assert result["mismatches"] == []
    assert result["files_restored"] == sum(1 for p in src.rglob("*") if p.is_file())
    assert result["restic_invocations"] == 3, "restore, check, and the listing"
