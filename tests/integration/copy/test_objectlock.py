"""S3 Object Lock copies (SPEC §14) against moto's S3 server and real restic.

What moto proves and what it cannot (docs/copies.md lists it too): it refuses deleting a
locked version under COMPLIANCE and under GOVERNANCE without the bypass header, and serves
versioning, Object Lock configuration and per-object retention (HeadObject). It does NOT
refuse the governance bypass to anyone (no IAM): the governance *pass* path cannot be shown
on it, only the failure; and it accepts shortening a COMPLIANCE retention, which these tests
use to make an "old" pack whose lock is running out.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import PASSWORD, Workspace
from tests.leaks import LeakWatch
from tests.s3_server import SECRET, S3Server, credentials_file, s3_server

from .helpers import copy_of, run_json, touch_source

__all__ = ["s3_server"]


def s3_copy(ws: Workspace, server: S3Server, name: str, bucket: str, *, mode: str,
            min_days: int) -> dict[str, Any]:
    return {"name": name, "kind": "immutable", "url": server.url(bucket, "emr"),
            "password_file": str(ws.password_file()), "max_age": "2d",
            "s3_credentials_file": str(credentials_file(ws.root / "secrets" / f"s3-{name}")),
            "object_lock": {"mode": mode, "min_days": min_days, "extend_margin_days": 1}}


def checks_of(result: dict[str, Any], name: str) -> dict[str, bool]:
    probe = copy_of(result, name)["probe"]
    return {c["name"]: c["ok"] for c in probe["checks"]}


def retention(server: S3Server, bucket: str, key: str) -> datetime:
    until: datetime = server.client().head_object(Bucket=bucket,
                                                  Key=key)["ObjectLockRetainUntilDate"]
    return until


def oldest_pack(server: S3Server, bucket: str) -> str:
    listed = server.client().list_objects_v2(Bucket=bucket, Prefix="emr/data/")["Contents"]
    return str(min(listed, key=lambda o: o["LastModified"])["Key"])


def test_compliance_bucket_passes_every_check_extends_old_locks_and_never_shows_the_secret(
        workspace: Workspace, s3_server: S3Server) -> None:
    ws, server = workspace, s3_server
    server.bucket("worm-ok", mode="COMPLIANCE", days=4)
    ws.job("cloud", copies=[s3_copy(ws, server, "cloud", "worm-ok", mode="compliance",
                                    min_days=2)])
    watch = LeakWatch(SECRET.encode())
    watch.start()
    try:
        outputs = [ws.run("-v", "init", "cloud", "--copies")]
        assert outputs[-1].returncode == 0, outputs[-1].stderr
        touch_source(ws, "cloud")
        outputs.append(ws.run("backup", "cloud"))
        assert outputs[-1].returncode == 0, outputs[-1].stderr
        code, result, stderr = run_json(ws, "-v", "copy", "cloud")
        outputs.append(ws.run("status", "--json"))
        assert code == 0, stderr
        assert copy_of(result, "cloud")["probe"]["ok"] is True
        assert checks_of(result, "cloud") == {
            "versioning": True, "object-lock": True, "default-retention-mode": True,
            "default-retention-days": True, "newest-object-retention": True,
            "needed-objects-retention": True, "version-delete": True}

        # an old pack whose lock runs out tomorrow (moto lets us shorten it; AWS would not)
        pack = oldest_pack(server, "worm-ok")
        head = server.client().head_object(Bucket="worm-ok", Key=pack)
        soon = datetime.now(UTC) + timedelta(hours=20)
        server.client().put_object_retention(
            Bucket="worm-ok", Key=pack, VersionId=head["VersionId"],
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": soon})
        assert retention(server, "worm-ok", pack) < datetime.now(UTC) + timedelta(days=1)
        # The copy trusts the locks the previous copy saw (a retention only grows on a real
        # S3) until they come within the horizon: raising min_days does what time would.
        ws.job("cloud", repo=ws.root / "repos" / "cloud", copies=[
            s3_copy(ws, server, "cloud", "worm-ok", mode="compliance", min_days=4)])
        touch_source(ws, "cloud", "more.bin")
        outputs.append(ws.run("backup", "cloud"))
        code, result, stderr = run_json(ws, "copy", "cloud")
        assert code == 0, stderr
        # extended to now + min_days (4) + margin (1)
        assert retention(server, "worm-ok", pack) > datetime.now(UTC) + timedelta(days=4.9)
        locks = copy_of(result, "cloud")["locks"]
        assert locks["extended"] >= 1 and locks["short"] == []
        assert locks["asked"] == locks["objects"]

        # verify reads from the bucket
        code, verified, stderr = run_json(ws, "verify", "cloud", "--from", "cloud")
        assert code == 0, stderr
        outputs.append(ws.run("runbook", "cloud"))
        outputs.append(ws.run("report", "--from", "2000-01-01", "--to", "2100-01-01",
                              "--format", "json"))
        runbook = outputs[-2].stdout
        assert "worm-ok" in runbook and "s3-cloud" in runbook
    finally:
        watch.stop()
    # the secret: never in argv (restic's environment holds it by design), outputs, files
    assert not [h for h in watch.hits if "/cmdline" in h]
    for proc in outputs:
        assert SECRET not in proc.stdout + proc.stderr
    assert SECRET not in json.dumps(result) + json.dumps(verified)
    allowed = {ws.root / "secrets" / "s3-cloud"}
    found = [p for p in ws.root.rglob("*") if p.is_file() and p not in allowed
             and SECRET.encode() in p.read_bytes()]
    assert found == []
    with sqlite3.connect(ws.state_dir / "state.db") as db:
        rows = db.execute("SELECT details FROM runs").fetchall()
    assert rows and all(SECRET not in (r[0] or "") for r in rows)
    assert server.log is not None and SECRET not in server.log.read_text(errors="replace")
    assert PASSWORD not in runbook


def test_init_refuses_a_bucket_without_object_lock(workspace: Workspace,
                                                    s3_server: S3Server) -> None:
    ws, server = workspace, s3_server
    server.bucket("no-lock", lock=False)
    ws.job("plain", copies=[s3_copy(ws, server, "cloud", "no-lock", mode="compliance",
                                    min_days=2)])
    proc = ws.run("init", "plain", "--copies")
    assert proc.returncode == 2, proc.stderr
    assert "no-lock" in proc.stderr and "Object Lock" in proc.stderr
    assert "Contents" not in server.client().list_objects_v2(Bucket="no-lock")


def test_misconfigured_buckets_each_fail_the_probe_naming_the_check(
        workspace: Workspace, s3_server: S3Server) -> None:
    """Three copies of one job: no Object Lock, a default retention shorter than min_days,
    and GOVERNANCE whose bypass the copy's credentials may use (moto lets anyone bypass,
    so on moto a governance copy always fails this check: the pass path needs a real S3
    with an IAM policy denying s3:BypassGovernanceRetention)."""
    ws, server = workspace, s3_server
    server.bucket("bare", lock=False)
    server.bucket("short", mode="COMPLIANCE", days=1)
    server.bucket("gov", mode="GOVERNANCE", days=3)
    for bucket in ("bare", "short", "gov"):
        server.upload_repo(ws.repo_template, bucket, "emr")
    ws.job("bad", copies=[
        s3_copy(ws, server, "bare", "bare", mode="compliance", min_days=2),
        s3_copy(ws, server, "short", "short", mode="compliance", min_days=5),
        s3_copy(ws, server, "gov", "gov", mode="governance", min_days=3)])
    touch_source(ws, "bad")
    assert ws.run("backup", "bad").returncode == 0

    code, result, stderr = run_json(ws, "copy", "bad")

    assert code == 3, stderr
    assert checks_of(result, "bare")["object-lock"] is False
    assert checks_of(result, "bare")["versioning"] is False
    short = checks_of(result, "short")
    assert short["default-retention-days"] is False and short["version-delete"] is True
    assert short["default-retention-mode"] is True
    assert checks_of(result, "gov") == {
        "versioning": True, "object-lock": True, "default-retention-mode": True,
        "default-retention-days": True, "newest-object-retention": True,
        "needed-objects-retention": True, "version-delete": True, "governance-bypass": False}
    for name, check in (("bare", "object-lock"), ("short", "default-retention-days"),
                        ("gov", "governance-bypass")):
        error = copy_of(result, name)["probe"]["error"]
        assert check in error and "NOT immutable" in error
    metrics = ws.run("metrics").stdout
    assert 'backupctl_immutable_probe_ok{backup_job="bad",repository="gov"} 0' in metrics
    assert SECRET not in json.dumps(result) + stderr
    # the copies themselves are intact: restic reads the governance bucket
    listed = subprocess.run(["restic", "-r", server.url("gov", "emr"), "--password-file",
                             "/dev/stdin", "--no-cache", "snapshots", "--json"],
                            input=(PASSWORD + "\n").encode(), capture_output=True,
                            env={**os.environ, **server.env()}, timeout=300)
    assert listed.returncode == 0, listed.stderr
