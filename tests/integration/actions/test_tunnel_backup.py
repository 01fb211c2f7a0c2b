"""`backupctl backup` of an SSH job that gives only `repository.local_url` (SPEC §15): the real
CLI, sshd, restic and rclone; the repository is served over the job's own connection."""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests import restic_kdf, yaml_helpers
from tests.conftest import Sshd, Workspace
from tests.integration.faults.conftest import processes_mentioning, wait_gone
from tests.leaks import LeakWatch

# The CLI with the one-time credential read from a file named on its command line (never the
# credential itself), so the leak watcher knows what to look for. Only new_token is swapped.
SHIM = ("import sys; from pathlib import Path; import backupctl.actions.tunnel as t; "
        "f = sys.argv.pop(1); t.new_token = lambda: Path(f).read_text().strip(); "
        "from backupctl.cli import main; main()")
# A credential in the form backupctl puts into a served URL, shown unmasked.
UNMASKED = re.compile(r"backupctl:(?!\*\*\*@)[^@\s'\"]{8,}@127\.0\.0\.1")


def served_job(ws: Workspace, sshd: Sshd, name: str, *, password: str,
               source: Path | None = None, **overrides: Any) -> Path:
    """jobs/NAME.yaml over `sshd` whose repository (a new one, with `password`) is given only
    as local_url; returns the repository."""
    repo = ws.root / "repos" / name
    subprocess.run(["restic", "init", "-q", "--repo", str(repo), "--password-file",
                    "/dev/stdin"], input=password.encode(), check=True, capture_output=True)
    restic_kdf.cheapen(repo, password)
    ws.job(name, sshd=sshd, repo=repo, source=source, **overrides)
    path = ws.jobs_dir / f"{name}.yaml"
    data = YAML(typ="safe").load(path.read_text())
    data["repository"] = {"local_url": str(repo),
                          "password_file": str(ws.password_file(name, password))}
    path.write_text(yaml_helpers.dump(data))
    return repo


def test_an_ssh_job_with_only_local_url_backs_up_its_files_and_a_database_and_verifies(
        ssh_workspace: Workspace, sshd: Sshd, tmp_path: Path, contained: Path) -> None:
    ws = ssh_workspace
    password, credential = (f"served-{secrets.token_hex(16)}",
                            f"served-token-{secrets.token_hex(16)}")
    src = ws.root / "src" / "served"
    src.mkdir(parents=True)
    (src / "カルテ.txt").write_text("患者データ\n")
    (src / "scan.bin").write_bytes(os.urandom(1 << 20))
    database = tmp_path / "app.sqlite3"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE 患者 (id integer primary key, name text)")
        conn.executemany("INSERT INTO 患者 (name) VALUES (?)", [(f"p{i}",) for i in range(50)])
    repo = served_job(ws, sshd, "served", password=password, source=src,
                      databases=[{"name": "app", "kind": "sqlite", "dsn": str(database)}])
    token_file = tmp_path / "token"
    token_file.write_text(credential)
    watch = LeakWatch(password.encode(), also=(credential.encode(),), interval=0.002,
                      allowed={token_file, ws.root / "secrets" / "served"})

    watch.start()
    try:
        proc = subprocess.Popen([sys.executable, "-c", SHIM, str(token_file), "-c",
                                 str(ws.config), "-v", "backup", "served", "--json"],
                                text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = proc.communicate(timeout=300)
        verify = ws.run("-v", "verify", "served", "--json")
    finally:
        watch.stop()

    assert proc.returncode == 0, out + err
    [job] = json.loads(out)["jobs"]
    assert job["snapshot_id"]
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "backupctl:***@127.0.0.1" in err  # -v logged the host's restic, credential masked
    assert not UNMASKED.search(out + err + verify.stdout + verify.stderr)
    snapshots = json.loads(subprocess.run(
        ["restic", "--repo", str(repo), "--password-file", "/dev/stdin", "snapshots", "--json"],
        input=password, text=True, capture_output=True, check=True).stdout)
    assert sorted(tuple(s["tags"]) for s in snapshots) == [
        ("backupctl",), ("backupctl-db", "backupctl-db:app")]
    # Every restic of the run (here, and on the host under the test's sshd) reached the
    # repository by a file, never by a URL in its argv.
    assert sshd.proc is not None
    ours = watch.restic_argvs_under(proc.pid, sshd.proc.pid)
    assert {"backup", "forget"} <= {w for argv in ours for w in argv}, ours
    assert not [argv for argv in ours if any(w.startswith("rest:") for w in argv)], ours
    wait_gone(f"{repo}", timeout=30)  # no rclone (or restic) of this run is left
    for what, text in (("stdout", out), ("stderr", err), ("verify", verify.stdout),
                       ("verify stderr", verify.stderr), ("sshd log", sshd.log.read_text())):
        watch.text(what, text)
    assert watch.scan([ws.root, tmp_path]) == []  # with every process's temp and cache
    assert watch.sweeps > 20


def test_dry_run_shows_the_tunnel_plan_with_secrets_masked(
        ssh_workspace: Workspace, sshd: Sshd) -> None:
    password = f"served-{secrets.token_hex(16)}"
    repo = served_job(ssh_workspace, sshd, "plan", password=password)

    result = ssh_workspace.run("backup", "plan", "--dry-run")

    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "rclone serve restic --append-only --addr 127.0.0.1:<port>" in text
    assert "<pipe: one-time credential>" in text and str(repo) in text
    assert "remote port forward" in text
    assert "--repository-file '<rest:http://backupctl:***@127.0.0.1:<port>/>'" in text
    assert password not in text
    assert processes_mentioning(str(repo)) == []  # a dry run starts nothing


def test_a_local_job_with_only_local_url_uses_it_directly(workspace: Workspace) -> None:
    workspace.job("here")
    path = workspace.jobs_dir / "here.yaml"
    data = YAML(typ="safe").load(path.read_text())
    data["repository"]["local_url"] = data["repository"].pop("url")
    path.write_text(yaml_helpers.dump(data))

    plan = workspace.run("backup", "here", "--dry-run")
    result = workspace.run("backup", "here", "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "rclone" not in plan.stdout
    assert f"--repo {workspace.root / 'repos' / 'here'} " in plan.stdout
