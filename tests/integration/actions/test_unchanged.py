"""An unchanged backup without `restic ls`, against real restic (issue #25): the kept
listing stands for the new snapshot only when restic found nothing new, changed or removed,
and what is recorded is exactly what `restic ls` would have given."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from backupctl.restic.parse import parse_time
from backupctl.verify.listing import Listing
from tests import cli_fork, yaml_helpers
from tests.conftest import Postgres, Sshd, Workspace, restic
from tests.integration.verify.conftest import backup, run_json

JOB = "kept"


@pytest.fixture
def ws(workspace: Workspace, tmp_path: Path) -> Workspace:
    """A local job whose restic logs each subcommand it runs (no secret is in argv)."""
    real = shutil.which("restic")
    shim = tmp_path / "bin" / "restic"
    shim.parent.mkdir()
    shim.write_text("#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in backup|cat|check|copy|dump"
                    f"|forget|init|ls|restore|snapshots|unlock|version) echo \"$a\" >> "
                    f"{tmp_path / 'restic.log'}; break;; esac; done\nexec {real} \"$@\"\n")
    shim.chmod(0o755)
    workspace.write_config(restic=str(shim))
    src = workspace.root / "src" / JOB
    (src / "カルテ").mkdir(parents=True)
    for i in range(20):
        (src / "カルテ" / f"{i:03d}.txt").write_text(f"患者 {i}\n" * (i + 1))
    (src / "scan.bin").write_bytes(os.urandom(300_000))
    (src / os.fsdecode(b"latin1-\xe9.txt")).write_bytes(b"not UTF-8 in its name\n")
    workspace.job(JOB, source=src, verify={"sample": "all"})
    return workspace


def _started(tmp_path: Path) -> list[str]:
    """The restic subcommands started since the last call (the log is emptied)."""
    log = tmp_path / "restic.log"
    found = log.read_text().split() if log.exists() else []
    log.write_text("")
    return [c for c in found if c != "version"]


def _listing(ws: Workspace, snapshot: str) -> Listing:
    out = Listing()
    out.feed(restic(ws.root / "repos" / JOB, "ls", "--json", snapshot).stdout)
    return out.close()


def _recorded(ws: Workspace, snapshot: str) -> tuple[str, dict[str, Any]]:
    with sqlite3.connect(ws.state_dir / "state.db") as conn:
        stamp, details = conn.execute(
            "SELECT snapshot_time, details FROM runs WHERE kind = 'backup' AND "
            "snapshot_id = ? ORDER BY id DESC LIMIT 1", (snapshot[:8],)).fetchone()
    return stamp, json.loads(details)


def _restic_time(ws: Workspace, snapshot: str) -> str:
    snaps = json.loads(restic(ws.root / "repos" / JOB, "snapshots", "--json").stdout)
    [found] = [s for s in snaps if s["id"].startswith(snapshot[:8])]
    return str(found["time"])


def _later(ws: Workspace) -> dict[str, Any]:
    """A backup a second after the last: restic 0.14 is given the time to the second, and
    a snapshot in the parent's second is listed by restic (unchanged.parent)."""
    time.sleep(1.0)
    return backup(ws, JOB)


def _kept_step(job: dict[str, Any]) -> bool:
    return any(s.startswith("listing: the kept one") for s in job["steps"])


def test_an_unchanged_backup_records_what_restic_ls_would_without_running_it(
        ws: Workspace, tmp_path: Path) -> None:
    first = backup(ws, JOB)
    assert _started(tmp_path) == ["backup", "ls", "forget"] and not _kept_step(first)

    second = _later(ws)
    assert _started(tmp_path) == ["backup", "forget"], "no restic ls"
    assert _kept_step(second), second["steps"]
    snapshot = second["snapshot_id"]
    assert snapshot[:8] != first["snapshot_id"][:8]
    real = _listing(ws, snapshot)
    stamp, details = _recorded(ws, snapshot)
    manifest = details["manifest"]
    assert manifest["snapshot_id"] == real.snapshot_id  # the whole id, as ls gives it
    assert manifest["files_digest"] == real.digest
    assert (manifest["files_total"], manifest["bytes_total"]) == (len(real.files),
                                                                 real.total_bytes)
    assert parse_time(stamp) == parse_time(_restic_time(ws, snapshot))

    for mode in ("quick", "full"):  # the manifest taken from the kept listing proves it
        code, job, stderr = run_json(ws, "verify", JOB, "--mode", mode)
        assert code == 0 and job["status"] == "ok", (job, stderr)
        assert job["snapshot_id"].startswith(snapshot[:8])


def _change(src: Path, how: str) -> None:
    target = src / "カルテ" / "007.txt"
    if how == "rewritten, size and mtime kept":
        before = target.stat()
        target.write_text(target.read_text().replace("患者", "偽物"))
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert target.stat().st_size == before.st_size
    elif how == "removed":
        target.unlink()
    elif how == "renamed":
        target.rename(target.with_name("007 renamed.txt"))
    elif how == "added":
        (src / "カルテ" / "new.txt").write_text("新規\n")
    elif how == "empty directory added":
        (src / "空").mkdir()
    else:  # a whole source directory emptied: no file, the same directory count
        for path in (src / "カルテ").iterdir():
            path.unlink()


@pytest.mark.parametrize("how", ["rewritten, size and mtime kept", "removed", "renamed",
                                 "added", "empty directory added", "emptied"])
def test_any_change_to_the_files_lists_the_new_snapshot_with_restic(
        ws: Workspace, tmp_path: Path, how: str) -> None:
    backup(ws, JOB)
    _change(ws.root / "src" / JOB, how)
    _started(tmp_path)
    done = _later(ws)
    assert "ls" in _started(tmp_path) and not _kept_step(done), how
    real = _listing(ws, done["snapshot_id"])
    assert _recorded(ws, done["snapshot_id"])[1]["manifest"]["files_digest"] == real.digest
    code, job, stderr = run_json(ws, "verify", JOB, "--mode", "full")
    assert code == 0 and job["status"] == "ok", (how, job, stderr)


def test_a_parent_removed_since_is_named_and_the_backup_goes_on_without_it(
        ws: Workspace, tmp_path: Path) -> None:
    first = backup(ws, JOB)
    restic(ws.root / "repos" / JOB, "forget", first["snapshot_id"])
    _started(tmp_path)
    done = _later(ws)
    assert _started(tmp_path) == ["backup", "backup", "ls", "forget"]
    assert any("is gone, backed up without it" in s for s in done["steps"]), done["steps"]
    assert not _kept_step(done)
    code, job, stderr = run_json(ws, "verify", JOB, "--mode", "quick")
    assert code == 0 and job["status"] == "ok", (job, stderr)


def test_a_tampered_kept_listing_is_not_used(ws: Workspace, tmp_path: Path) -> None:
    backup(ws, JOB)
    with sqlite3.connect(ws.state_dir / "state.db") as conn:
        (body,) = conn.execute("SELECT body FROM listings WHERE job = ?", (JOB,)).fetchone()
        conn.execute("UPDATE listings SET body = ?", (body[:-8] + b"\0" * 8,))
    _started(tmp_path)
    done = _later(ws)
    assert "ls" in _started(tmp_path) and not _kept_step(done)
    assert _later(ws) and _started(tmp_path) == ["backup", "forget"], "kept again"


def test_another_orchestrator_sharing_the_state_takes_the_kept_listing(
        ws: Workspace, tmp_path: Path, postgres: Postgres) -> None:
    """The listing is kept in the state database: with several orchestrators on one
    PostgreSQL, whichever backs the job up next finds it."""
    shared = {"database_url": postgres.url, "restic": str(tmp_path / "bin" / "restic")}

    def orchestrator(name: str) -> Path:
        home = ws.root / "orchestrators" / name
        home.mkdir(parents=True)
        config = home / "backupctl.yaml"
        config.write_text(yaml_helpers.dump({
            "jobs_dir": str(ws.jobs_dir), "state_dir": str(home / "state"),
            "scratch_dir": str(home / "scratch"), "known_hosts": str(ws.known_hosts),
            "orchestrator": name, **shared}))
        return config

    first, second = orchestrator("backup01"), orchestrator("backup02")

    def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return cli_fork.run(["-c", str(config), *args, "--json"], timeout=300,
                            env=dict(os.environ))

    done = run(first, "backup", JOB)
    assert done.returncode == 0, done.stdout + done.stderr
    _started(tmp_path)
    time.sleep(1.0)  # restic 0.14 is given the time to the second
    again = run(second, "backup", JOB)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _started(tmp_path) == ["backup", "forget"]
    [job] = json.loads(again.stdout)["jobs"]
    assert _kept_step(job), job["steps"]
    verified = run(first, "verify", JOB, "--mode", "quick")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["jobs"][0]["snapshot_id"][:8] == job["snapshot_id"][:8]


def test_over_ssh_the_hosts_restic_0_14_is_given_the_time_in_utc(
        ws: Workspace, sshd: Sshd, tmp_path: Path) -> None:
    """The host's sessions run in Japan's time zone: restic would read `--time` 9 hours off
    without `env TZ=UTC0`."""
    sshd.stop()
    sshd.config.write_text(sshd.config.read_text().replace("SetEnv ", "SetEnv TZ=Asia/Tokyo ", 1))
    sshd.start()
    shutil.copy(sshd.known_hosts, ws.known_hosts)
    ws.job(JOB, source=ws.root / "src" / JOB, sshd=sshd, verify={"sample": "all"},
           repo=ws.root / "repos" / JOB,
           host={"restic": str(tmp_path / "bin" / "restic")})
    backup(ws, JOB)
    _started(tmp_path)
    done = _later(ws)
    assert _started(tmp_path) == ["backup", "forget"] and _kept_step(done), done["steps"]
    stamp, _ = _recorded(ws, done["snapshot_id"])
    assert parse_time(stamp) == parse_time(_restic_time(ws, done["snapshot_id"]))
    code, job, stderr = run_json(ws, "verify", JOB, "--mode", "quick")
    assert code == 0 and job["status"] == "ok", (job, stderr)
