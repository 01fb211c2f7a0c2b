"""Hostile path names backed up and verified over SSH (nothing executed), evidence tampering
including truncation, and a self-test of the leak watcher (issue #9, SPEC §6, §7).

Edit, delete and reorder of evidence records are covered by
tests/integration/evidence/test_chain_cli.py; truncation is added here.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Sshd, restic
from tests.leaks import LeakWatch

from .conftest import SECRET, FaultWorkspace, assert_recorded, json_job, rows

NASTY = ["spa ce.txt", "quo'te\"s.txt", "semi;colon.txt", "$(touch PWNED1).txt",
         "`touch PWNED2`.txt", "back\\slash.txt", "new\nline.txt", "-rf", "--help",
         "カルテ 001.pdf", "star*?[x].txt", "tab\there.txt"]


def _hostile_tree(root: Path) -> dict[str, str]:
    root.mkdir(parents=True)
    for i, name in enumerate(NASTY):
        (root / name).write_bytes(f"{i} {name}\n".encode() * (i + 1))
    sub = root / "-d; $(touch PWNED3) 日本語"
    sub.mkdir()
    (sub / "患者.txt").write_text("患者データ\n")
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file()}


def _pwned(*roots: Path) -> list[Path]:
    """Files named PWNED* under the roots; os.walk skips what other tests delete meanwhile."""
    return [Path(top, name) for root in roots for top, dirs, files in os.walk(root)
            for name in dirs + files if name.startswith("PWNED")]


@pytest.mark.parametrize("mode", ["quick", "full"])
def test_hostile_path_names_over_ssh_are_backed_up_and_verified(
        fssh: FaultWorkspace, fsshd: Sshd, tmp_path: Path, mode: str) -> None:
    src = tmp_path / "-src $(touch PWNED0) ' 日本"
    expected = _hostile_tree(src)
    fssh.job("nasty", sshd=fsshd, source=src, verify={"sample": "all",
                                                      "always": [str(src / "-rf")]})
    before = {p.name for p in Path.cwd().iterdir()}

    backup = json_job(fssh.run("backup", "nasty", "--json"))
    verify = fssh.run("verify", "nasty", "--mode", mode, "--json")

    assert backup["status"] == "ok", backup
    result = json_job(verify)
    assert verify.returncode == 0, result
    assert result["files_checked"] == len(expected) and result["mismatches"] == []
    restored = tmp_path / "restored"
    restic(fssh.repo("nasty"), "restore", str(backup["snapshot_id"]), "--target",
           str(restored), password=SECRET)
    base = restored / src.relative_to("/")
    assert {str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in base.rglob("*") if p.is_file()} == expected
    # every process's working and temporary directory is under tmp_path (`contained`)
    assert _pwned(tmp_path, Path.home()) == [], "a name was executed"
    assert {p.name for p in Path.cwd().iterdir()} == before


# -- evidence -------------------------------------------------------------------------------

@pytest.fixture
def with_history(fws: FaultWorkspace) -> FaultWorkspace:
    fws.job("ev")
    (fws.src("ev") / "a.txt").write_text("患者\n")
    for command in (("backup", "ev"), ("verify", "ev"), ("backup", "ev"), ("verify", "ev")):
        assert fws.run(*command).returncode == 0
    assert_recorded(fws, kind="backup", statuses=["success", "success"])
    return fws


@pytest.mark.slow
def test_truncated_chain_is_caught_by_the_anchor(with_history: FaultWorkspace) -> None:
    ws = with_history
    anchors = ws.root / "anchors.txt"
    assert ws.run("evidence", "head", "--anchor", str(anchors)).returncode == 0
    records = rows(ws, "evidence")
    cut = records[len(records) // 2]["seq"]
    with sqlite3.connect(ws.state_dir / "state.db") as conn:
        conn.execute("DELETE FROM evidence WHERE seq >= ?", (cut,))

    result = ws.run("evidence", "verify", "--db", "--anchor", str(anchors))

    assert result.returncode == 3, result.stdout + result.stderr
    assert f"seq {records[-1]['seq']}" in result.stdout + result.stderr


@pytest.mark.slow
def test_truncated_database_file_never_verifies(with_history: FaultWorkspace) -> None:
    ws = with_history
    db = ws.state_dir / "state.db"
    with db.open("r+b") as f:
        f.truncate(db.stat().st_size // 2)

    result = ws.run("evidence", "verify", "--db", "--json")

    assert result.returncode in (1, 3), result.stdout + result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_truncated_record_text_is_named(with_history: FaultWorkspace) -> None:
    ws = with_history
    victim = rows(ws, "evidence")[1]
    with sqlite3.connect(ws.state_dir / "state.db") as conn:
        conn.execute("UPDATE evidence SET details = substr(details, 1, 10) WHERE seq = ?",
                     (victim["seq"],))

    result = ws.run("evidence", "verify", "--db")

    assert result.returncode == 3, result.stdout + result.stderr
    assert f"seq {victim['seq']}" in result.stderr


# -- the watcher itself -----------------------------------------------------------------------

def test_leak_watcher_catches_argv_environment_output_and_files(tmp_path: Path) -> None:
    """The watcher used by every fault test can fail: it sees each kind of leak."""
    needle = f"self-test-{os.urandom(8).hex()}"
    watch = LeakWatch(needle.encode())
    watch.start()
    in_argv = subprocess.Popen(["sh", "-c", "sleep 2", needle])  # needle is $0
    in_env = subprocess.Popen(["sleep", "2"], env={"X": needle})
    time.sleep(0.5)
    (tmp_path / "log.txt").write_text(f"password is {needle}\n")
    watch.text("stdout of backupctl", f'{{"error": "{needle}"}}')
    in_argv.wait()
    in_env.wait()
    watch.stop()

    hits = watch.scan([tmp_path])

    assert any("cmdline" in h for h in hits) and any("environ" in h for h in hits)
    assert any("stdout of backupctl" in h for h in hits)
    assert any("log.txt" in h for h in hits)
