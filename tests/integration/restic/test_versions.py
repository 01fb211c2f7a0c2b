"""backupctl with restic 0.14 (Debian 12) and 0.18 (Debian 13), on the orchestrator and on
the job's host independently (issue 30): both old, both new, and mixed both ways.

One job over real SSH with a PostgreSQL database and an append-only copy goes through
everything that runs restic: backup (files and the dump), copy with its evidence anchor,
quick and full verify (the database restored in a throwaway server), the recovery, the
metrics; then a repository whose server is dead fails in bounded time as "repository
unreachable" on the host and on the orchestrator. Both restic versions come from
tests/restic_versions.py (Debian's packages through apt when the system lacks one).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backupctl.databases import DumpManifest, prove_quick
from backupctl.execute import Programs, Secret
from backupctl.execute.local import LocalRunner
from tests.conftest import PASSWORD, PG_BIN, RestServer, Sshd, Workspace, free_port, restic
from tests.integration.databases.conftest import JOB, SourceDb
from tests.integration.verify.conftest import run_json
from tests.restic_versions import version_of

PAIRS = [("0.14", "0.14"), ("0.18", "0.18"), ("0.14", "0.18"), ("0.18", "0.14")]
DEAD_WITHIN = 60.0  # restic 0.18 alone would retry a dead server for 15 minutes


@pytest.fixture(params=PAIRS, ids=[f"orchestrator-{o}-host-{h}" for o, h in PAIRS])
def pair(request: pytest.FixtureRequest, restic_014: Path, restic_018: Path,
         ) -> tuple[Path, Path]:
    """(the orchestrator's restic, the host's restic)."""
    by_version = {"0.14": restic_014, "0.18": restic_018}
    orchestrator, host = request.param
    return by_version[orchestrator], by_version[host]


def _ok(ws: Workspace, *args: str) -> dict[str, Any]:
    code, job, stderr = run_json(ws, *args)
    assert code == 0, (args, job, stderr)
    assert PASSWORD not in json.dumps(job) + stderr
    return job


def _evidence(ws: Workspace, kind: str) -> tuple[str, dict[str, Any]]:
    """The newest evidence record of `kind`: its restic_version and details."""
    with sqlite3.connect(ws.state_dir / "state.db") as conn:
        version, details = conn.execute(
            "SELECT restic_version, details FROM evidence WHERE kind = ? ORDER BY seq DESC "
            "LIMIT 1", (kind,)).fetchone()
    found: dict[str, Any] = json.loads(details)
    return version, found


def _source(ws: Workspace) -> Path:
    src = ws.root / "src" / JOB
    (src / "カルテ 日本語").mkdir(parents=True)
    (src / "カルテ 日本語" / "001.txt").write_text("患者データ\n" * 200)
    (src / "scan.bin").write_bytes(os.urandom(200_000))
    (src / os.fsdecode(b"latin1-\xe9.txt")).write_bytes(b"not UTF-8 in its name\n")
    return src


def test_backup_copy_verify_and_recovery_work_with_this_pair_of_restic_versions(
        ssh_workspace: Workspace, sshd: Sshd, scratch: Path, small_db: SourceDb,
        rest_server: Callable[..., RestServer], pair: tuple[Path, Path],
        tmp_path: Path) -> None:
    ws, (orchestrator, host) = ssh_workspace, pair
    ws.write_config(scratch_dir=str(scratch), restic=str(orchestrator))
    ws.jobs_dir.mkdir()
    assert ws.run("evidence", "init-key").returncode == 0
    worm = rest_server(ws.new_repo(f"{JOB}-worm"))
    ws.job(JOB, source=_source(ws), sshd=sshd, host={"restic": str(host)},
           verify={"sample": "all"},
           databases=[{"name": "emr", "kind": "postgresql", "dsn": small_db.dsn}],
           copies=[{"name": "worm", "kind": "immutable", "url": worm.url,
                    "password_file": str(ws.password_file()), "max_age": "2d"}])

    done = _ok(ws, "backup", JOB)
    [dumped] = done["databases"]
    assert dumped["path"] == f"/{JOB}.emr.pgdump" and dumped["error"] is None
    version, details = _evidence(ws, "backup")
    assert version == version_of(orchestrator)
    assert details["host_restic_version"] == version_of(host)
    # Unchanged: its listing is the kept one, no `restic ls` (issue #25): 0.17+ gives the
    # snapshot's whole id and time, 0.14 is given the time (`env TZ=UTC0 restic … --time`)
    # and the id is found in the repository's directory. Everything below then proves the
    # snapshot of this second backup.
    done = _ok(ws, "backup", JOB)
    assert any(s.startswith("listing: the kept one") for s in done["steps"]), done["steps"]

    _ok(ws, "copy", JOB)
    anchors = json.loads(restic(worm.root, "snapshots", "--json", "--tag",
                                "backupctl-evidence").stdout)
    assert anchors and anchors[-1]["paths"][0].startswith("/backupctl-evidence.seq-")
    against = ws.run("evidence", "verify", "--db", "--against", "worm")
    assert against.returncode == 0, against.stdout + against.stderr

    for mode in ("quick", "full"):
        result = _ok(ws, "verify", JOB, "--mode", mode)
        assert result["snapshot_id"].startswith(done["snapshot_id"][:8])
        assert [d["result"] for d in result["databases"]] == ["proven"], result["databases"]
        assert result["unverifiable"] == [] and result["mismatches"] == [], "latin1 name too"
    # the full restore test counted by the backup's listing digest: no `restic ls`, on
    # every version (restore, check, snapshots for the dump, its dump: 4)
    assert result["restic_invocations"] == 4, result["steps"]

    target = tmp_path / "replacement"
    recovered = ws.run("restore", JOB, "--to", f"local:{target}", "--json")
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    [job] = json.loads(recovered.stdout)["jobs"]
    assert job["result"] == "pass" and job["mismatches"] == []
    # the target's restic (here the orchestrator's, a local target) is in the evidence
    assert _evidence(ws, "recovery")[1]["target_restic_version"] == version_of(orchestrator)

    metrics = ws.run("metrics").stdout
    assert f'restic_version="{version_of(orchestrator)}"' in metrics


def test_a_dead_repository_is_unreachable_within_a_minute_on_the_host_and_here(
        ssh_workspace: Workspace, sshd: Sshd, pair: tuple[Path, Path]) -> None:
    ws, (orchestrator, host) = ssh_workspace, pair
    ws.write_config(restic=str(orchestrator))
    dead = f"rest:http://127.0.0.1:{free_port()}/{JOB}/"
    ws.job(JOB, sshd=sshd, host={"restic": str(host)}, repository={"url": dead})

    for args in (("backup", JOB), ("verify", JOB)):  # restic on the host, then here
        started = time.monotonic()
        code, result, stderr = run_json(ws, *args, timeout=300)
        assert code == 1, (args, result, stderr)
        assert time.monotonic() - started < DEAD_WITHIN, (args, result)
        assert "repository unreachable" in (result["error"] or ""), result
        assert result["failure_reason"] == "unreachable"
        assert "backupctl init" not in result["error"]


def test_a_dump_stored_under_the_old_path_form_is_read_by_every_version(
        small_db: SourceDb, tmp_path: Path, restic_template: Path, restic_014: Path,
        restic_018: Path) -> None:
    """backupctl before issue 30 stored `/JOB/NAME.pgdump` (only restic up to 0.17 takes
    that name); its manifests keep that path, and both versions read the dump by it."""
    repo = tmp_path / "repo"
    subprocess.run(["cp", "-a", str(restic_template), str(repo)], check=True)
    dump = subprocess.run([str(PG_BIN / "pg_dump"), "--format=custom", "-d", small_db.dsn],
                          check=True, capture_output=True).stdout
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    made = subprocess.run([str(restic_014), "-r", str(repo), "--password-file", str(pw),
                           "backup", "--stdin", "--stdin-filename", f"{JOB}/emr.pgdump",
                           "--host", JOB, "--tag", "backupctl-db", "--json"], input=dump,
                          check=True, capture_output=True).stdout
    snapshot = json.loads(made.splitlines()[-1])["snapshot_id"]
    manifest = DumpManifest(job=JOB, database="emr", kind="postgresql", snapshot_id=snapshot,
                            path=f"/{JOB}/emr.pgdump", sha256=hashlib.sha256(dump).hexdigest(),
                            size=len(dump), tables={}, server_version=None,
                            dump_version=None)
    for binary in (restic_014, restic_018):
        runner = Programs(LocalRunner(), {"restic": str(binary)})
        proof = prove_quick(runner, manifest, repo_url=str(repo), password=Secret(PASSWORD),
                            timeout=300)
        assert proof.sha256_match is True and proof.result == "proven", (binary, proof)
