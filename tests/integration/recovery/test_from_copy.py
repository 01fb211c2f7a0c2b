"""`restore --from COPY` (SPEC §11, §14): the primary is gone; the recovery reads the job's
append-only REST copy, or its S3 Object Lock copy served through the SSH tunnel by the
orchestrator's rclone (the S3 keys never leave the orchestrator). Real sshd, restic, rclone,
moto's S3 server."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from tests.conftest import PASSWORD, RestServer, Sshd, Workspace
from tests.integration.recovery.conftest import (
    hostile_tree,
    recovery_evidence,
    ssh_target,
    tree_of,
)
from tests.leaks import LeakWatch
from tests.s3_server import SECRET, S3Server, credentials_file, s3_server

__all__ = ["s3_server"]


def copy_entry(ws: Workspace, name: str, url: str, **extra: object) -> dict[str, object]:
    return {"name": name, "kind": "immutable", "url": url,
            "password_file": str(ws.password_file()), "max_age": "2d", **extra}


def ok(proc: object) -> None:
    assert getattr(proc, "returncode", None) == 0, (getattr(proc, "stdout", ""),
                                                    getattr(proc, "stderr", ""))


def test_restore_from_an_append_only_rest_copy_when_the_primary_is_gone(
        workspace: Workspace, replacement: Sshd, tmp_path: Path,
        rest_server: Callable[..., RestServer]) -> None:
    ws = workspace
    src = hostile_tree(ws.root / "src" / "emr")
    worm_root = ws.root / "worm"
    shutil.copytree(ws.repo_template, worm_root)
    worm = rest_server(worm_root, append_only=True)
    primary = Path(ws.job("emr", source=src, verify={"sample": "all"},
                          copies=[copy_entry(ws, "worm", worm.url)])["repository"]["url"])
    for args in (("backup", "emr"), ("copy", "emr")):
        ok(ws.run(*args))
    target = tmp_path / "new"
    onto = ("--to", ssh_target(replacement, target), "--identity", str(replacement.identity))

    # an unknown copy: exit 2 naming the job's repositories, nothing run
    unknown = ws.run("restore", "emr", "--from", "nope", *onto)
    assert unknown.returncode == 2, unknown.stderr
    assert "'nope'" in unknown.stderr and "primary, worm" in unknown.stderr
    # nothing of the copy proven yet (a verify of the primary proves none of its snapshots)
    ok(ws.run("verify", "emr", "--mode", "full"))
    unproven = ws.run("restore", "emr", "--from", "worm", *onto)
    assert unproven.returncode == 2, unproven.stderr
    assert "verify emr --from worm --mode full" in unproven.stderr
    assert not target.exists()

    ok(ws.run("verify", "emr", "--from", "worm", "--mode", "full"))
    shutil.rmtree(primary)  # the worst day: the primary repository is gone
    proc = ws.run("-v", "restore", "emr", "--from", "worm", *onto, "--json")
    ok(proc)
    [job] = json.loads(proc.stdout)["jobs"]
    assert job["result"] == "pass" and job["served"] is True
    assert tree_of(target / str(src).lstrip("/")) == tree_of(src)
    [evidence] = recovery_evidence(ws)
    assert evidence["repository"] == "worm"

    # the rehearsal of the same worst day on a spare server, from the copy
    spare = tmp_path / "spare"
    drill = ws.run("drill", "emr", "--from", "worm", "--to", ssh_target(replacement, spare),
                   "--identity", str(replacement.identity), "--yes", "--json")
    ok(drill)
    [rehearsed] = json.loads(drill.stdout)["jobs"]
    assert (rehearsed["kind"], rehearsed["result"], rehearsed["target_kind"]) == (
        "drill", "pass", "replacement")
    assert rehearsed["repository"] == "worm" and rehearsed["mismatches"] == []
    assert tree_of(spare / str(src).lstrip("/")) == tree_of(src)


def test_restore_from_an_s3_object_lock_copy_never_sends_its_keys_to_the_target(
        workspace: Workspace, replacement: Sshd, tmp_path: Path,
        s3_server: S3Server) -> None:
    ws, server = workspace, s3_server
    server.bucket("worm-restore", mode="COMPLIANCE", days=2)
    server.upload_repo(ws.repo_template, "worm-restore", "emr")
    src = hostile_tree(ws.root / "src" / "emr")
    keys = credentials_file(ws.root / "secrets" / "s3-cloud")
    primary = ws.job("emr", source=src, verify={"sample": "all"}, copies=[copy_entry(
        ws, "cloud", server.url("worm-restore", "emr"), s3_credentials_file=str(keys),
        object_lock={"mode": "compliance", "min_days": 1, "extend_margin_days": 1})],
    )["repository"]["url"]
    target = tmp_path / "new"
    watch = LeakWatch(SECRET.encode(), interval=0.005, allowed={keys})
    outputs = []
    watch.start()
    try:
        for args in (("backup", "emr"), ("copy", "emr"),
                     ("verify", "emr", "--from", "cloud", "--mode", "full")):
            outputs.append(ws.run(*args))
            ok(outputs[-1])
        shutil.rmtree(primary)  # the primary is gone (encrypted, wiped)
        outputs.append(ws.run("-v", "restore", "emr", "--from", "cloud", "--to",
                              ssh_target(replacement, target), "--identity",
                              str(replacement.identity), "--json"))
        # onto the orchestrator itself: restic here reads the bucket with the keys in its
        # environment (no tunnel)
        outputs.append(ws.run("restore", "emr", "--from", "cloud", "--to",
                              f"local:{tmp_path / 'here'}", "--json"))
    finally:
        watch.stop()
    proc, here = outputs[-2:]
    ok(proc)
    [job] = json.loads(proc.stdout)["jobs"]
    assert job["result"] == "pass" and job["served"] is True
    assert tree_of(target / str(src).lstrip("/")) == tree_of(src)
    ok(here)
    [local] = json.loads(here.stdout)["jobs"]
    assert local["result"] == "pass" and local["served"] is False
    assert tree_of(tmp_path / "here" / str(src).lstrip("/")) == tree_of(src)
    assert [e["repository"] for e in recovery_evidence(ws)] == ["cloud", "cloud"]
    # the keys: never in any argv (rclone's and restic's environment on the orchestrator
    # hold them by design), outputs, the sshd's log, files, the target's disk, the records
    assert not [h for h in watch.hits if "/cmdline" in h], watch.hits
    for number, out in enumerate(outputs):
        watch.text(f"output {number}", out.stdout + out.stderr)
    watch.text("sshd log", replacement.log.read_text())
    watch.hits.clear()
    assert watch.scan([ws.root, tmp_path]) == []
    with sqlite3.connect(ws.state_dir / "state.db") as db:
        details = db.execute("SELECT details FROM runs").fetchall()
    assert details and all(SECRET not in (r[0] or "") for r in details)
    assert PASSWORD not in proc.stdout + proc.stderr
